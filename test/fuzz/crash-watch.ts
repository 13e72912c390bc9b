/**
 * Watches the process for what a fuzz target must never cause: an uncaught exception or an unhandled rejection.
 * While armed, they are recorded instead of ending the process, so a run reports every crash with its input.
 */

/** A recorded crash. */
export interface Crash {
  target: string;
  kind: 'uncaught' | 'unhandled-rejection' | 'thrown' | 'invariant';
  message: string;
  /** The input that caused it, hex (truncated), when known. */
  input?: string;
}

/** Records crashes until `disarm()`. */
export class CrashWatch {
  readonly crashes: Crash[] = [];
  private readonly onUncaught = (err: Error) => this.record('uncaught', err);
  private readonly onRejection = (reason: unknown) => this.record('unhandled-rejection', reason);

  constructor(private readonly target: string) {
    process.on('uncaughtException', this.onUncaught);
    process.on('unhandledRejection', this.onRejection);
  }

  /** Input being tried now, attached to crashes seen while it is current. */
  current: Buffer | undefined;

  /** Records a crash; `input` null when it is not known which input caused it. */
  record(kind: Crash['kind'], err: unknown, input: Buffer | null | undefined = this.current): void {
    const message = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack?.split('\n').slice(1, 4).join('\n')}` : String(err);
    this.crashes.push({ target: this.target, kind, message, input: input?.subarray(0, 256).toString('hex') });
  }

  disarm(): void {
    process.off('uncaughtException', this.onUncaught);
    process.off('unhandledRejection', this.onRejection);
  }
}
