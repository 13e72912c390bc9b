/**
 * The source of the SQLite writer thread (sqlite-writer-thread.ts starts it). It is plain CommonJS evaluated by the
 * Worker, so it runs the same from the TypeScript sources (tsx) and from the compiled build.
 *
 * The thread owns the one writing connection, opened as the main thread used to open it (WAL, synchronous, cache,
 * foreign keys, BigInt integers, busy timeout, size limit). Each message is a list of statements run in order; the
 * answer carries each statement's rows or changes, or the first error (code and message, so the main thread can
 * rebuild the SqliteError and translate it). A rollback or release when SQLite already rolled the transaction back
 * (SQLITE_FULL, IOERR, NOMEM do) does nothing, as on the in-process path (sqlite.ts).
 *
 * The connection has the SQL function `chunk_has_ts` (kysely/sqlite-chunk-writes.ts), the very function of
 * ts-kv-chunk-format.ts embedded as source (plain JavaScript without imports, so its text runs here unchanged).
 */
import { chunkHasTs } from './kysely/ts-kv-chunk-format.ts';

export const WRITER_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { path, synchronous, maxSizeMb, autocheckpoint, journalsInMemory } = workerData;
const ENDS_TRANSACTION = /^\\s*(rollback|release)\\b/i;
const CACHE_SIZE = 1000;
// Parameters go to better-sqlite3 as separate arguments, not as one array: it reads an array element by element
// through V8's property lookup API, which cost 0.65 µs per 8-parameter telemetry row against 0.47 as arguments
// (measured, Node 20); a longer list than this stays an array (stack room for the call's arguments).
const MAX_SPREAD = 16384;
let db;
const cache = new Map();
const chunkHasTs = (${chunkHasTs.toString()});

function open() {
  db = new Database(path);
  // First: the main thread may be migrating on its own connection while this one opens.
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = ' + synchronous.toUpperCase());
  db.pragma('wal_autocheckpoint = ' + autocheckpoint);
  db.pragma('cache_size = -65536');
  db.pragma('foreign_keys = ON');
  if (journalsInMemory) db.pragma('temp_store = MEMORY');
  db.defaultSafeIntegers(true);
  db.function('chunk_has_ts', { deterministic: true, varargs: false }, chunkHasTs);
  if (maxSizeMb) {
    const pageSize = Number(db.pragma('page_size', { simple: true }));
    db.pragma('max_page_count = ' + Math.max(1, Math.floor((maxSizeMb * 1024 * 1024) / pageSize)));
  }
}

function prepare(text) {
  let statement = cache.get(text);
  if (!statement) {
    statement = db.prepare(text);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value);
    cache.set(text, statement);
  }
  return statement;
}

/** True when a row holds a blob (a Buffer, which arrives in the main thread as a Uint8Array). */
function hasBlob(rows) {
  for (const row of rows) for (const k in row) if (Buffer.isBuffer(row[k])) return true;
  return false;
}

// SQL texts by number (sqlite-writer-codec.ts).
let texts = [];

/** Bytes parameter b of a message: a view of its one buffer of bytes (better-sqlite3 copies what it binds). */
function blob(m, b) {
  const start = b === 0 ? 0 : m.blobEnds[b - 1];
  return Buffer.from(m.blobs.buffer, m.blobs.byteOffset + start, m.blobEnds[b] - start);
}

/** The statements of a message (encoded by sqlite-writer-codec.ts) as { sql, params, ifChanged }. */
function decode(m) {
  if (m.resetTexts) texts = [];
  const ops = [];
  let at = 0;
  for (let o = 0; o < m.textIds.length; o++) {
    if (m.texts[o] !== null) texts[m.textIds[o]] = m.texts[o];
    const params = new Array(m.counts[o]);
    for (let i = 0; i < params.length; i++, at++) {
      const tag = m.tags[at];
      params[i] = tag === 0 ? null : tag === 1 ? m.nums[at] : tag === 2 ? m.strings[m.nums[at]] : tag === 4 ? blob(m, m.nums[at]) : m.extra[m.nums[at]];
    }
    ops.push({ sql: texts[m.textIds[o]], params, ifChanged: m.ifChanged[o] === 1 });
  }
  return ops;
}

function run(encoded) {
  const ops = decode(encoded);
  const results = [];
  let blobs = false;
  let previousChanges = 1;
  for (const op of ops) {
    if (op.ifChanged && previousChanges === 0) {
      results.push({ changes: 0 });
      continue;
    }
    if (!db.inTransaction && ENDS_TRANSACTION.test(op.sql)) {
      results.push({ changes: 0 });
      previousChanges = 0;
      continue;
    }
    const statement = prepare(op.sql);
    if (statement.reader) {
      const rows = op.params.length <= MAX_SPREAD ? statement.all(...op.params) : statement.all(op.params);
      if (!blobs && rows.length > 0 && hasBlob(rows)) blobs = true;
      results.push({ rows });
      previousChanges = rows.length;
    } else {
      const r = op.params.length <= MAX_SPREAD ? statement.run(...op.params) : statement.run(op.params);
      results.push({ changes: r.changes, insertId: r.lastInsertRowid });
      previousChanges = r.changes;
    }
  }
  return { results, blobs };
}

try {
  open();
  parentPort.postMessage({ ready: true });
} catch (err) {
  parentPort.postMessage({ ready: false, error: { message: String(err && err.message || err), code: err && err.code } });
}

parentPort.on('message', (message) => {
  if (message.close) {
    try { db.close(); } catch {}
    parentPort.postMessage({ id: message.id, closed: true });
    parentPort.close();
    return;
  }
  if (message.cpu) {
    // This thread's CPU time (user + system, in clock ticks of 10 ms) for benchmarks: /proc/thread-self/stat on Linux.
    let ticks = -1;
    try {
      const fields = require('node:fs').readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1].split(' ');
      ticks = Number(fields[11]) + Number(fields[12]);
    } catch {}
    parentPort.postMessage({ id: message.id, results: [{ changes: ticks }] });
    return;
  }
  if (message.autocheckpoint !== undefined) {
    try { db.pragma('wal_autocheckpoint = ' + message.autocheckpoint); } catch {}
    return;
  }
  if (message.journalsInMemory) {
    // Fails only inside a transaction (none runs when the store sends it, after its migrations): then on file.
    try { db.pragma('temp_store = MEMORY'); } catch {}
    return;
  }
  try {
    const { results, blobs } = run(message.ops);
    parentPort.postMessage({ id: message.id, results, blobs });
  } catch (err) {
    parentPort.postMessage({ id: message.id, error: { message: String(err && err.message || err), code: err && err.code } });
  }
});
`;
