import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/**
 * `device.gateway_id`: the gateway whose sub-device a device is (issue 14). It mirrors `additionalInfo.lastConnectedGateway`
 * (ThingsBoard's key, kept in the JSON for compatibility) in a column of its own, so a gateway's sub-devices can be
 * counted (the per-gateway limit) and their pending RPCs found when the gateway connects, with an index.
 */
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('device').addColumn('gateway_id', 'text').execute();
  await db.schema.createIndex('device_gateway_idx').on('device').column('gateway_id').execute();
}
