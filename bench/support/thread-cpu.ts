/**
 * CPU time by thread for the store benchmarks: the main thread (the event loop) and the SQLite writer thread(s)
 * (src/store/sqlite-writer-thread.ts). process.cpuUsage() sums every thread of the process. Linux /proc, 10 ms
 * resolution: measure runs of seconds.
 */
import { readFileSync } from 'node:fs';
import { SqliteWriterThread } from '../../src/store/sqlite-writer-thread.ts';

/** The main thread's user + system CPU time in ms. */
export function mainThreadCpuMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The writer threads' CPU time in ms (0 without the thread). */
export async function writerThreadCpuMs(): Promise<number> {
  let ms = 0;
  for (const thread of SqliteWriterThread.open) ms += Math.max(0, await thread.cpuMs());
  return ms;
}

/** Whether the benchmark's store uses the writer thread: FLEETGATE_SQLITE_WRITER_THREAD=off turns it off. */
export const writerThreadWanted = process.env.FLEETGATE_SQLITE_WRITER_THREAD !== 'off';
