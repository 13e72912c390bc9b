/**
 * Takes in a UDP socket's datagrams once per event-loop turn, all that the socket holds, so one group commit
 * covers them. libuv reads at most 32 datagrams from a socket per turn (uv__udp_recvmsg, `count = 32`), and core
 * commits the telemetry submitted before its own setImmediate: without this every commit would hold at most 32
 * requests however many wait in the socket.
 */
import type { AddressInfo } from 'node:net';

/** libuv's reads per socket per turn. */
const LIBUV_READS_PER_TURN = 32;
/** Most datagrams kept back while the socket has more: a few milliseconds of requests at most. */
const MAX_HELD = 1024;

/** Holds datagrams while a turn reads a full 32 (more are probably waiting), then hands them all over in order. */
export class DatagramDrain {
  /** Datagrams read but not yet taken in, as msg, rinfo pairs. */
  private held: (Buffer | AddressInfo)[] = [];
  private readThisTurn = 0;
  private scheduled = false;

  constructor(private readonly take: (msg: Buffer, rinfo: AddressInfo) => void) {}

  /** The socket's `message` listener. */
  readonly onDatagram = (msg: Buffer, rinfo: AddressInfo): void => {
    this.held.push(msg, rinfo);
    this.readThisTurn++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drain);
    }
  };

  /** Runs after the turn's reads (check phase). */
  private readonly drain = (): void => {
    this.scheduled = false;
    const read = this.readThisTurn;
    this.readThisTurn = 0;
    if (read >= LIBUV_READS_PER_TURN && this.held.length < 2 * MAX_HELD) {
      this.scheduled = true;
      setImmediate(this.drain);
      return;
    }
    const held = this.held;
    this.held = [];
    for (let i = 0; i < held.length; i += 2) this.take(held[i] as Buffer, held[i + 1] as AddressInfo);
  };
}
