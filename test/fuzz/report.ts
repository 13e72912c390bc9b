/** What one fuzz target run reports (bench/RESULTS.md "Fuzzing" records these). */
import type { Crash } from './crash-watch.ts';

export interface FuzzReport {
  target: string;
  seed: number;
  /** Inputs tried: values for the parsers, MQTT sessions (each several packets), CoAP datagrams. */
  inputs: number;
  /** MQTT: chunks written; CoAP: answers received from the server. */
  units?: number;
  crashes: Crash[];
  /** Valid requests made between and after the fuzz inputs, and how many of them worked (all must). */
  checks: number;
  checksPassed: number;
  /** Heap growth over the run, MB (after a GC when --expose-gc is on). */
  heapGrowthMb: number;
}

/** Options every target takes. */
export interface FuzzOptions {
  seed: number;
  inputs: number;
}

/** Heap in use, MB, after a GC when available. */
export function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1048576;
}
