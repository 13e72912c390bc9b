/**
 * `fleetgate device import FILE.csv --profile P` and `fleetgate device export`. The CSV is streamed, never read whole
 * (the same column rules as the server's text/csv import, src/admin/device-csv.ts): first checked to the end, so a
 * file that cannot be imported (header, quoting) imports nothing; then read again and sent as JSON rows in chunks,
 * the next chunk read while the server inserts the last one (one request at a time, so the first of two rows with
 * the same name is the one created). The server inserts each chunk in batches, one transaction per batch. An
 * interrupted import can be run again: devices already created are skipped as duplicates.
 */
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { DeviceImportResult, DeviceImportRow } from '../core/api.ts';
import { ImportFileError, importRowChunks } from '../admin/device-csv.ts';
import { AdminClient, withConnection, type ConnectionOptions } from './api-client.ts';
import { CliError, EXIT, positiveInt, usageError } from './errors.ts';
import { findProfile } from './lookup.ts';
import { print, printJson } from './output.ts';

/** Most rows listed per category in the human summary (all of them with --json). */
const LISTED = 20;

type ImportOptions = ConnectionOptions & { profile: string; chunk: number };

interface ImportAnswer {
  created: number;
  duplicates: DeviceImportResult['duplicates'];
  errors: DeviceImportResult['rejected'];
}

/** The file's chunks of rows; a file that cannot be read or imported is a usage error (exit 2). */
async function* chunksOf(file: string, chunkSize: number): AsyncGenerator<{ rows: DeviceImportRow[]; rejected: DeviceImportResult['rejected'] }> {
  try {
    yield* importRowChunks(createReadStream(file), chunkSize);
  } catch (err) {
    if (err instanceof ImportFileError) throw usageError(`${file}: ${err.message}`);
    if ((err as NodeJS.ErrnoException).syscall) throw usageError(`cannot read ${file}: ${(err as Error).message}`);
    throw err;
  }
}

/** Reads the whole file once without keeping it: the number of data rows, or a usage error. */
async function checkFile(file: string): Promise<number> {
  try {
    if (statSync(file).isDirectory()) throw usageError(`cannot read ${file}: it is a directory`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw usageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let rows = 0;
  for await (const chunk of chunksOf(file, 10_000)) rows += chunk.rows.length + chunk.rejected.length;
  return rows;
}

function summary(result: DeviceImportResult): string {
  const lines = [`created ${result.created}, skipped ${result.duplicates.length} as duplicates, rejected ${result.rejected.length}`];
  const list = (title: string, items: string[]) => {
    if (items.length === 0) return;
    lines.push(`${title}:`, ...items.slice(0, LISTED).map((s) => `  ${s}`));
    if (items.length > LISTED) lines.push(`  ... and ${items.length - LISTED} more (--json lists all)`);
  };
  list('skipped (a device with this name exists)', result.duplicates.map((d) => `line ${d.line}: ${d.name}`));
  list('rejected', result.rejected.map((r) => `line ${r.line}${r.name ? ` (${r.name})` : ''}: ${r.error}`));
  return lines.join('\n') + '\n';
}

async function importFile(file: string, opts: ImportOptions): Promise<void> {
  const total = await checkFile(file);
  const client = new AdminClient(opts);
  const profile = await findProfile(client, opts.profile);
  const result: DeviceImportResult = { created: 0, duplicates: [], rejected: [] };
  const progress = process.stderr.isTTY === true && !opts.json;
  let done = 0;
  const send = async (rows: DeviceImportRow[], count: number) => {
    const answer = await client.call<ImportAnswer>('POST', '/api/devices/import', { query: { deviceProfileId: profile.id.id }, body: { rows } });
    result.created += answer.created;
    for (const d of answer.duplicates) result.duplicates.push(d);
    for (const r of answer.errors) result.rejected.push(r);
    done += count;
    if (progress) process.stderr.write(`\rimporting ${done}/${total} rows (${Math.floor((done / total) * 100)}%)`);
  };
  let pending: Promise<void> | undefined;
  try {
    for await (const chunk of chunksOf(file, opts.chunk)) {
      // This chunk was read while the previous one was being inserted.
      for (const r of chunk.rejected) result.rejected.push(r);
      if (pending) await pending;
      pending = send(chunk.rows, chunk.rows.length + chunk.rejected.length);
      pending.catch(() => {}); // awaited above or below; never left unobserved if reading fails meanwhile
    }
    await pending;
  } finally {
    if (progress && total > 0) process.stderr.write('\n');
  }
  result.duplicates.sort((a, b) => a.line - b.line);
  result.rejected.sort((a, b) => a.line - b.line);
  if (opts.json) printJson({ created: result.created, skipped: result.duplicates.length, rejected: result.rejected.length, duplicates: result.duplicates, errors: result.rejected });
  else print(summary(result));
  if (result.rejected.length > 0) process.exitCode = EXIT.ROWS_REJECTED;
}

type ExportOptions = ConnectionOptions & { profile?: string; output?: string };

async function exportDevices(opts: ExportOptions): Promise<void> {
  const client = new AdminClient(opts);
  const deviceProfileId = opts.profile ? (await findProfile(client, opts.profile)).id.id : undefined;
  const res = await client.raw('GET', '/api/devices/export', { query: { deviceProfileId }, accept: opts.json ? 'application/json' : 'text/csv' });
  const text = await res.text();
  if (!opts.output) return print(text);
  try {
    writeFileSync(opts.output, text, { mode: 0o600 }); // it holds credentials
  } catch (err) {
    throw new CliError(`cannot write ${opts.output}: ${(err as Error).message}`, EXIT.USAGE);
  }
}

/** Registers `device import` and `device export` on the `device` command. */
export function registerImportExportCommands(device: Command): void {
  withConnection(
    device
      .command('import <file>')
      .description('pre-provision devices from a CSV file (header: name, and optionally type, label, accessToken | clientId, username, password | certificate)')
      .requiredOption('--profile <profile>', 'CHECK_PRE_PROVISIONED_DEVICES profile to import into (name or id)')
      .option('--chunk <rows>', 'rows per request', positiveInt, 5000),
  ).action(importFile);
  withConnection(
    device
      .command('export')
      .description('write device names and credentials as CSV (the import columns), for the factory')
      .option('--profile <profile>', 'only devices of this profile (name or id)')
      .option('-o, --output <file>', 'write to this file (mode 600) instead of stdout'),
  ).action(exportDevices);
}
