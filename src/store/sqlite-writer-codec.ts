/**
 * How statements travel to the SQLite writer thread (sqlite-writer-worker.ts decodes them). A structured clone of
 * the parameter arrays cost ~0.9 µs per telemetry row to send and ~2 µs to receive (measured, Node 20), about as much
 * as running the row's insert; here they go as two typed arrays (moved, not copied) and a list of the distinct
 * strings, so a batch's repeated device ids and keys cross once. SQL texts (a 512-row upsert is ~13 KB) cross once
 * too: afterwards by number.
 *
 * Per parameter, `tags`: 0 null, 1 number (in `nums`), 2 string (`nums` holds its index in `strings`), 4 bytes (a
 * Uint8Array or Buffer: `nums` holds its index in `blobEnds`), 3 anything else (`nums` holds its index in `extra`,
 * structured-cloned: BigInt). A message's bytes travel copied one after the other into one transferred buffer: a
 * structured clone cost ~0.8 µs a blob (0.5-0.75 to serialize, 0.3 to deserialize; ts_kv_chunk rows carry one each),
 * the copy ~0.1 and the thread's view of it ~0.07 (bench/RESULTS.md, issue 17, the chunk layout's write side).
 */
import type { WriterOp } from './sqlite-writer-thread.ts';

/** Strings longer than this cross once per parameter, not once per message: ids and keys repeat, long texts do not. */
const LONGEST_SHARED_STRING = 256;

/** Most SQL texts remembered by number; past it both sides forget them all and start over. */
const MAX_TEXTS = 4096;

/** One message's statements, encoded. */
export interface EncodedOps {
  /** Per statement: its text number, and its text when the thread has not seen it yet (else null). */
  textIds: number[];
  texts: (string | null)[];
  /** Per statement: parameter count, and 1 if it runs only after a statement that changed a row. */
  counts: Uint32Array;
  ifChanged: Uint8Array;
  tags: Uint8Array;
  nums: Float64Array;
  strings: string[];
  extra: unknown[];
  /** The bytes parameters, one after the other, and where each ends (blob i is blobs[blobEnds[i - 1] ?? 0, blobEnds[i])). */
  blobs: Uint8Array;
  blobEnds: Float64Array;
  /** The thread forgets the texts it knew before this message. */
  resetTexts: boolean;
}

/** The main thread's side: numbers SQL texts the thread already has. */
export class OpsEncoder {
  private texts = new Map<string, number>();

  /** The thread restarted: it knows no text. */
  forget(): void {
    this.texts = new Map();
  }

  /** Encodes `ops`; the ArrayBuffers in the second element are to be transferred with the message. */
  encode(ops: readonly WriterOp[]): [EncodedOps, ArrayBuffer[]] {
    let resetTexts = false;
    if (this.texts.size + ops.length > MAX_TEXTS) {
      this.texts = new Map();
      resetTexts = true;
    }
    let total = 0;
    for (const op of ops) total += op.params.length;
    const counts = new Uint32Array(ops.length);
    const ifChanged = new Uint8Array(ops.length);
    const tags = new Uint8Array(total);
    const nums = new Float64Array(total);
    const textIds: number[] = [];
    const texts: (string | null)[] = [];
    const strings: string[] = [];
    const stringIds = new Map<string, number>();
    const extra: unknown[] = [];
    let byteList: Uint8Array[] | undefined;
    let blobBytes = 0;
    let at = 0;
    for (let o = 0; o < ops.length; o++) {
      const op = ops[o];
      let textId = this.texts.get(op.sql);
      if (textId === undefined) {
        textId = this.texts.size;
        this.texts.set(op.sql, textId);
        texts.push(op.sql);
      } else texts.push(null);
      textIds.push(textId);
      counts[o] = op.params.length;
      ifChanged[o] = op.ifChanged ? 1 : 0;
      for (const value of op.params) {
        if (value === null || value === undefined) tags[at] = 0;
        else if (typeof value === 'number') {
          tags[at] = 1;
          nums[at] = value;
        } else if (typeof value === 'string') {
          // Long strings (export outbox payloads, 10 KB and more) are not looked up: a lookup hashes the whole text.
          let s = value.length > LONGEST_SHARED_STRING ? undefined : stringIds.get(value);
          if (s === undefined) {
            s = strings.length;
            if (value.length <= LONGEST_SHARED_STRING) stringIds.set(value, s);
            strings.push(value);
          }
          tags[at] = 2;
          nums[at] = s;
        } else if (value instanceof Uint8Array) {
          tags[at] = 4;
          nums[at] = (byteList ??= []).length;
          byteList.push(value);
          blobBytes += value.byteLength;
        } else {
          tags[at] = 3;
          nums[at] = extra.length;
          extra.push(value);
        }
        at++;
      }
    }
    const blobs = new Uint8Array(blobBytes);
    const blobEnds = new Float64Array(byteList?.length ?? 0);
    if (byteList) {
      let end = 0;
      for (let b = 0; b < byteList.length; b++) {
        blobs.set(byteList[b], end);
        end += byteList[b].byteLength;
        blobEnds[b] = end;
      }
    }
    const encoded = { textIds, texts, counts, ifChanged, tags, nums, strings, extra, blobs, blobEnds, resetTexts };
    return [encoded, [counts.buffer, ifChanged.buffer, tags.buffer, nums.buffer, blobs.buffer, blobEnds.buffer] as ArrayBuffer[]];
  }
}
