/**
 * `fleetgate export create|list|show|delete|dead-letters|replay`: data-out rules and their dead letters, through the
 * admin API (/api/export/...). Secrets given here (a webhook signing secret, header values) are never printed back.
 */
import type { Command } from 'commander';
import { AdminClient, withConnection, type ConnectionOptions } from './api-client.ts';
import { CliError, positiveInt, usageError } from './errors.ts';
import { findProfile } from './lookup.ts';
import { formatFields, formatTable, formatTime, print, printJson } from './output.ts';

type RuleJson = {
  id: { id: string };
  name: string;
  kinds: string[];
  enabled: boolean;
  deviceProfileId: { id: string } | null;
  destination: Record<string, unknown> & { type: string; url: string; stream?: string };
  pending?: number;
  lanes: number;
  laneStates?: { partition: number; attempts: number; nextAttemptTime: number; lastError: string | null }[];
};

type CreateOptions = ConnectionOptions & {
  kinds: string;
  webhook?: string;
  secret?: string;
  header?: string[];
  redis?: string;
  stream?: string;
  maxlen?: number;
  profile?: string;
  batchSize?: number;
  timeoutMs?: number;
  lanes?: number;
};

const collect = (value: string, previous: string[] = []) => [...previous, value];

async function findRule(client: AdminClient, ref: string): Promise<RuleJson> {
  const rules = await client.call<RuleJson[]>('GET', '/api/export/rules');
  const found = rules.find((r) => r.name === ref || r.id.id === ref);
  if (!found) throw new CliError(`no export rule named "${ref}"`);
  return found;
}

function destinationOf(opts: CreateOptions): Record<string, unknown> {
  if (!!opts.webhook === !!opts.redis) throw usageError('give exactly one destination: --webhook URL or --redis URL --stream KEY');
  const common = { batchSize: opts.batchSize, timeoutMs: opts.timeoutMs };
  if (opts.webhook) {
    const headers: Record<string, string> = {};
    for (const h of opts.header ?? []) {
      const at = h.indexOf(':');
      if (at < 1) throw usageError(`--header must be "Name: value", got "${h}"`);
      headers[h.slice(0, at).trim()] = h.slice(at + 1).trim();
    }
    return { type: 'webhook', url: opts.webhook, secret: opts.secret ?? null, headers, ...common };
  }
  if (!opts.stream) throw usageError('--redis needs --stream KEY');
  return { type: 'redis-stream', url: opts.redis, stream: opts.stream, maxLen: opts.maxlen ?? 0, ...common };
}

function details(r: RuleJson): string {
  const d = r.destination;
  return formatFields([
    ['name', r.name],
    ['id', r.id.id],
    ['kinds', r.kinds.join(',')],
    ['profile', r.deviceProfileId?.id ?? '(all devices)'],
    ['enabled', r.enabled],
    ['lanes', r.lanes],
    ['destination', d.type === 'webhook' ? `webhook ${d.url}` : `redis-stream ${d.url} ${d.stream}`],
    ['pending', r.pending ?? 0],
    ['retrying lanes', (r.laneStates ?? []).filter((l) => l.attempts > 0).length],
    ['last error', (r.laneStates ?? []).find((l) => l.lastError)?.lastError ?? ''],
  ]);
}

export function registerExportCommands(program: Command): void {
  const exp = program.command('export').description('data out: export rules (webhooks, Redis streams) and dead letters');
  withConnection(
    exp
      .command('create <name>')
      .description('create an export rule')
      .requiredOption('--kinds <list>', 'comma-separated: telemetry,attributes,provisioning,connectivity,rpc')
      .option('--webhook <url>', 'POST batches to this http(s) URL')
      .option('--secret <secret>', 'HMAC-SHA256 signing secret for the webhook')
      .option('--header <header>', 'extra webhook header "Name: value" (repeatable)', collect)
      .option('--redis <url>', 'XADD to a stream on this redis:// server')
      .option('--stream <key>', 'the Redis stream key')
      .option('--maxlen <n>', 'cap the stream near n entries', positiveInt)
      .option('--profile <profile>', 'only devices of this profile (name or id)')
      .option('--batch-size <n>', 'messages per delivery', positiveInt)
      .option('--timeout-ms <n>', 'delivery timeout in ms', positiveInt)
      .option('--lanes <n>', 'delivery lanes, 1-16 (default 4): fewer cost less CPU, more hold back fewer devices behind a refused message', positiveInt),
  ).action(async (name: string, opts: CreateOptions) => {
    const client = new AdminClient(opts);
    const profileId = opts.profile ? (await findProfile(client, opts.profile)).id.id : null;
    const kinds = opts.kinds.split(',').map((k) => k.trim()).filter(Boolean);
    const saved = await client.call<RuleJson>('POST', '/api/export/rule', { body: { name, kinds, deviceProfileId: profileId, destination: destinationOf(opts), lanes: opts.lanes } });
    if (opts.json) printJson(saved);
    else print(details(saved));
  });
  withConnection(exp.command('list').description('list export rules with the messages waiting for each')).action(async (opts: ConnectionOptions) => {
    const rules = await new AdminClient(opts).call<RuleJson[]>('GET', '/api/export/rules');
    if (opts.json) return printJson(rules);
    print(formatTable([
      { header: 'name', get: (r: RuleJson) => r.name },
      { header: 'kinds', get: (r) => r.kinds.join(',') },
      { header: 'destination', get: (r) => `${r.destination.type} ${r.destination.type === 'webhook' ? r.destination.url : r.destination.stream}` },
      { header: 'pending', get: (r) => r.pending ?? 0 },
      { header: 'enabled', get: (r) => (r.enabled ? 'yes' : 'no') },
    ], rules));
  });
  withConnection(exp.command('show <rule>').description('a rule with its delivery state (name or id)')).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const rule = await client.call<RuleJson>('GET', `/api/export/rule/${(await findRule(client, ref)).id.id}`);
    if (opts.json) printJson(rule);
    else print(details(rule));
  });
  withConnection(exp.command('delete <rule>').description('delete a rule with its waiting messages and dead letters')).action(async (ref: string, opts: ConnectionOptions) => {
    const client = new AdminClient(opts);
    const rule = await findRule(client, ref);
    await client.call('DELETE', `/api/export/rule/${rule.id.id}`);
    if (opts.json) printJson({ deleted: rule.id.id, name: rule.name });
    else print(`deleted export rule ${rule.name} (${rule.id.id})\n`);
  });
  withConnection(exp.command('dead-letters').description('list dead letters, oldest first').option('--rule <rule>', 'of one rule').option('--limit <n>', 'most to list', positiveInt, 100)).action(
    async (opts: ConnectionOptions & { rule?: string; limit: number }) => {
      const client = new AdminClient(opts);
      const ruleId = opts.rule ? (await findRule(client, opts.rule)).id.id : undefined;
      const page = await client.call<{ data: { seq: number; kind: string; deviceId: string | null; createdTime: number; attempts: number; lastError: string | null }[]; totalElements: number }>(
        'GET',
        '/api/export/deadLetters',
        { query: { pageSize: opts.limit, page: 0, ruleId } },
      );
      if (opts.json) return printJson(page);
      print(formatTable([
        { header: 'seq', get: (l: (typeof page.data)[number]) => l.seq },
        { header: 'kind', get: (l) => l.kind },
        { header: 'device', get: (l) => l.deviceId },
        { header: 'created', get: (l) => formatTime(l.createdTime) },
        { header: 'attempts', get: (l) => l.attempts },
        { header: 'last error', get: (l) => l.lastError },
      ], page.data));
      if (page.totalElements > page.data.length) process.stderr.write(`fleetgate: ${page.totalElements - page.data.length} more not shown (--limit)\n`);
    },
  );
  withConnection(exp.command('replay').description('put dead letters back in the outbox').option('--rule <rule>', 'of one rule (default: all)')).action(
    async (opts: ConnectionOptions & { rule?: string }) => {
      const client = new AdminClient(opts);
      const ruleId = opts.rule ? (await findRule(client, opts.rule)).id.id : undefined;
      const result = await client.call<{ replayed: number }>('POST', '/api/export/deadLetters/replay', { body: ruleId ? { ruleId } : {} });
      if (opts.json) printJson(result);
      else print(`replayed ${result.replayed} dead letters\n`);
    },
  );
}
