import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';
import * as m001 from './001-initial.ts';
import * as m002 from './002-ts-kv-recent.ts';
import * as m003 from './003-api-parity.ts';
import * as m004 from './004-ota.ts';
import * as m005 from './005-device-gateway.ts';
import * as m006 from './006-credentials-grace.ts';
import * as m010 from './010-console.ts';
import * as m011 from './011-export.ts';
import * as m012 from './012-export-outbox.ts';
import * as m013 from './013-export-outbox-points.ts';
import * as m014 from './014-ts-kv-chunk.ts';
import * as m015 from './015-partial-null-indexes.ts';
import * as m016 from './016-export-rule-lanes.ts';

/** One schema migration: a stable name and an `up` step. */
export interface Migration {
  name: string;
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}

/** Every migration, in order. Append only; never edit one that has shipped. */
export const MIGRATIONS: readonly Migration[] = [
  { name: '001-initial', up: m001.up },
  { name: '002-ts-kv-recent', up: m002.up },
  { name: '003-api-parity', up: m003.up },
  { name: '004-ota', up: m004.up },
  { name: '005-device-gateway', up: m005.up },
  { name: '006-credentials-grace', up: m006.up },
  { name: '010-console', up: m010.up },
  { name: '011-export', up: m011.up },
  { name: '012-export-outbox', up: m012.up },
  { name: '013-export-outbox-points', up: m013.up },
  { name: '014-ts-kv-chunk', up: m014.up },
  { name: '015-partial-null-indexes', up: m015.up },
  { name: '016-export-rule-lanes', up: m016.up },
];
