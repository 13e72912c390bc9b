/** Conversion between typed values (KvValue) and the value columns of attribute and time-series rows. */
import type { KvValue } from '../../core/model.ts';
import type { ValueColumns } from '../schema.ts';

const EMPTY: ValueColumns = { bool_v: null, long_v: null, dbl_v: null, str_v: null, json_v: null };

export function toColumns(value: KvValue): ValueColumns {
  switch (value.type) {
    case 'BOOLEAN':
      return { ...EMPTY, bool_v: value.value ? 1 : 0 };
    case 'LONG':
      return { ...EMPTY, long_v: value.value };
    case 'DOUBLE':
      return { ...EMPTY, dbl_v: value.value };
    case 'STRING':
      return { ...EMPTY, str_v: value.value };
    case 'JSON':
      return { ...EMPTY, json_v: value.value };
  }
}

/** Writes the five value columns of `value` (bool_v, long_v, dbl_v, str_v, json_v) into `params` from index `at`. */
export function setColumns(params: unknown[], at: number, value: KvValue): void {
  const t = value.type;
  params[at] = t === 'BOOLEAN' ? (value.value ? 1 : 0) : null;
  params[at + 1] = t === 'LONG' ? value.value : null;
  params[at + 2] = t === 'DOUBLE' ? value.value : null;
  params[at + 3] = t === 'STRING' ? value.value : null;
  params[at + 4] = t === 'JSON' ? value.value : null;
}

/** A stored 64-bit integer as a LONG: a number while it is a safe integer, else the bigint (spec §8.2 long). */
export function longValue(big: bigint): KvValue {
  return { type: 'LONG', value: big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big };
}

export function fromColumns(row: ValueColumns): KvValue {
  if (row.bool_v !== null) return { type: 'BOOLEAN', value: Number(row.bool_v) === 1 };
  if (row.long_v !== null) {
    const v = row.long_v;
    if (typeof v === 'string' || typeof v === 'bigint') return longValue(BigInt(v));
    return { type: 'LONG', value: v };
  }
  if (row.dbl_v !== null) return { type: 'DOUBLE', value: Number(row.dbl_v) };
  if (row.str_v !== null) return { type: 'STRING', value: row.str_v };
  return { type: 'JSON', value: row.json_v ?? 'null' };
}

