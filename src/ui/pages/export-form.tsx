/**
 * Create an export rule (POST /api/export/rule): name, kinds, profile or all devices, and a webhook or Redis stream
 * destination. The form checks what it can before sending (required fields, numbers, header lines); the URL itself is
 * judged by the server, whose message is shown when it refuses.
 */
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { go } from '../router.ts';
import { ErrorBox, Field, Select, TextArea, useId, useLoad } from '../parts/ui.tsx';
import type { DeviceProfile, ExportKind, ExportRule, PageData } from '../types.ts';

export const KIND_NAMES: [ExportKind, string][] = [
  ['telemetry', 'Telemetry'],
  ['attributes', 'Client attributes'],
  ['provisioning', 'Provisioning outcomes'],
  ['connectivity', 'Connects and disconnects'],
  ['rpc', 'RPC outcomes'],
];

interface FormState {
  name: string;
  kinds: ExportKind[];
  profileId: string;
  type: 'webhook' | 'redis-stream';
  url: string;
  secret: string;
  headers: string;
  stream: string;
  maxLen: string;
  batchSize: string;
  timeoutMs: string;
  enabled: boolean;
}

const EMPTY: FormState = {
  name: '',
  kinds: ['telemetry'],
  profileId: '',
  type: 'webhook',
  url: '',
  secret: '',
  headers: '',
  stream: '',
  maxLen: '0',
  batchSize: '100',
  timeoutMs: '10000',
  enabled: true,
};

function intIn(text: string, name: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** "Name: value" lines to a header object; throws naming the first bad line. */
export function parseHeaderLines(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(.*)$/.exec(line);
    if (!m) throw new Error(`Header line ${i + 1} is not "Name: value"`);
    headers[m[1]] = m[2].trim();
  });
  return headers;
}

/** The request body for the form, or an error naming what to fix (nothing is sent then). */
export function ruleBody(f: FormState): Record<string, unknown> {
  if (f.name.trim() === '') throw new Error('Name is required');
  if (f.kinds.length === 0) throw new Error('Choose at least one kind of message');
  if (f.url.trim() === '') throw new Error(f.type === 'webhook' ? 'Webhook URL is required' : 'Redis URL is required');
  const common = { url: f.url.trim(), batchSize: intIn(f.batchSize, 'Batch size', 1, 10_000), timeoutMs: intIn(f.timeoutMs, 'Timeout', 1, 600_000) };
  let destination: Record<string, unknown>;
  if (f.type === 'webhook') {
    destination = { type: 'webhook', ...common, headers: parseHeaderLines(f.headers), ...(f.secret ? { secret: f.secret } : {}) };
  } else {
    if (f.stream.trim() === '') throw new Error('Stream key is required');
    destination = { type: 'redis-stream', ...common, stream: f.stream.trim(), maxLen: intIn(f.maxLen, 'Max length', 0, Number.MAX_SAFE_INTEGER) };
  }
  return { name: f.name.trim(), kinds: f.kinds, deviceProfileId: f.profileId || null, enabled: f.enabled, destination };
}

export function ExportRuleForm() {
  const [f, setF] = useState<FormState>(EMPTY);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [profiles] = useLoad(() => api<PageData<DeviceProfile>>(`/api/deviceProfiles${query({ pageSize: 1000, page: 0, sortProperty: 'name', sortOrder: 'ASC' })}`), []);
  const set = (patch: Partial<FormState>) => setF((old) => ({ ...old, ...patch }));
  const kindsId = useId('kinds');
  const enabledId = useId('enabled');

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    let body;
    try {
      body = ruleBody(f);
    } catch (err) {
      setError(err);
      return;
    }
    setBusy(true);
    try {
      const rule = await api<ExportRule>('/api/export/rule', { body });
      go(`/export/${rule.id.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const webhook = f.type === 'webhook';
  return (
    <>
      <p>
        <a href="#/export">‹ Export rules</a>
      </p>
      <h1>New export rule</h1>
      <form class="panel" onSubmit={submit} noValidate aria-label="New export rule">
        <Field label="Name" value={f.name} onInput={(e) => set({ name: e.currentTarget.value })} required />
        <fieldset class="kinds" aria-describedby={kindsId}>
          <legend>Kinds of messages</legend>
          {KIND_NAMES.map(([kind, text]) => (
            <label key={kind}>
              <input
                type="checkbox"
                checked={f.kinds.includes(kind)}
                onChange={(e) => set({ kinds: e.currentTarget.checked ? [...f.kinds, kind] : f.kinds.filter((k) => k !== kind) })}
              />{' '}
              {text}
            </label>
          ))}
          <small id={kindsId} class="muted">
            At least one.
          </small>
        </fieldset>
        <div class="row">
          <Select
            label="Devices"
            value={f.profileId}
            options={[['', 'All devices'], ...(profiles?.data ?? []).map((p): [string, string] => [p.id!.id, `Profile ${p.name}`])]}
            onChange={(e) => set({ profileId: e.currentTarget.value })}
          />
          <Select
            label="Destination"
            value={f.type}
            options={[
              ['webhook', 'Webhook (HTTP POST)'],
              ['redis-stream', 'Redis stream (XADD)'],
            ]}
            onChange={(e) => set({ type: e.currentTarget.value as FormState['type'], url: '' })}
          />
        </div>
        {webhook ? (
          <>
            <Field label="Webhook URL" type="url" placeholder="http(s) URL, e.g. lake.example/ingest" value={f.url} onInput={(e) => set({ url: e.currentTarget.value })} />
            <Field
              label="Signing secret (optional)"
              type="password"
              autoComplete="new-password"
              hint="HMAC-SHA256 of each body, in X-Fleetgate-Signature. Never shown again."
              value={f.secret}
              onInput={(e) => set({ secret: e.currentTarget.value })}
            />
            <TextArea label="Headers, one per line (Name: value)" value={f.headers} placeholder="Authorization: Bearer …" onInput={(e) => set({ headers: e.currentTarget.value })} />
          </>
        ) : (
          <div class="row">
            <Field label="Redis URL" type="url" placeholder="redis://:password@host:6379/0" value={f.url} onInput={(e) => set({ url: e.currentTarget.value })} />
            <Field label="Stream key" value={f.stream} onInput={(e) => set({ stream: e.currentTarget.value })} />
            <Field label="Max length (0 = no trim)" type="number" min={0} value={f.maxLen} onInput={(e) => set({ maxLen: e.currentTarget.value })} />
          </div>
        )}
        <div class="row">
          <Field label="Batch size" type="number" min={1} max={10000} value={f.batchSize} onInput={(e) => set({ batchSize: e.currentTarget.value })} />
          <Field label="Timeout (ms)" type="number" min={1} max={600000} value={f.timeoutMs} onInput={(e) => set({ timeoutMs: e.currentTarget.value })} />
        </div>
        <p>
          <input id={enabledId} type="checkbox" checked={f.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> <label for={enabledId}>Enabled</label>
        </p>
        <ErrorBox error={error} />
        <div class="row">
          <button type="submit" class="primary" disabled={busy}>
            Create rule
          </button>
          <button type="button" onClick={() => go('/export')}>
            Cancel
          </button>
        </div>
      </form>
    </>
  );
}
