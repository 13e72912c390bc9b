/**
 * Data out: export rules (list with pending counts and delivery state, enable/disable), one rule's lanes, delete, and
 * its dead letters with paging and replay. Uses only /api/export/...; secrets arrive masked from the server.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { go } from '../router.ts';
import { Dialog, ErrorBox, Pager, formatTime, useLoad } from '../parts/ui.tsx';
import type { DeadLetter, ExportRule, PageData } from '../types.ts';
import { ExportRuleForm, KIND_NAMES } from './export-form.tsx';

const REFRESH_MS = 3000;

export function ExportPage({ id }: { id?: string }) {
  if (id === 'new') return <ExportRuleForm />;
  if (id) return <ExportRuleDetail id={id} />;
  return <ExportRuleList />;
}

/** Reloads every few seconds while the page is visible (pending counts and errors change by themselves). */
function usePolling(reload: () => void): void {
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === 'visible' && reload(), REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
}

/** The device name inside a dead letter's message (`data.deviceName`), else its id. */
function deviceNameOf(letter: DeadLetter): string {
  const message = letter.data as { deviceName?: unknown; data?: { deviceName?: unknown } } | null;
  const name = message?.data?.deviceName ?? message?.deviceName;
  return typeof name === 'string' ? name : (letter.deviceId ?? '—');
}

const kindText = (rule: ExportRule) => rule.kinds.map((k) => KIND_NAMES.find(([kind]) => kind === k)?.[1] ?? k).join(', ');

function Target({ rule }: { rule: ExportRule }) {
  const d = rule.destination;
  return (
    <>
      <span class="badge">{d.type === 'webhook' ? 'webhook' : 'redis stream'}</span> <code class="wrap">{d.url}</code>
      {d.type === 'redis-stream' && (
        <>
          {' '}
          stream <code class="wrap">{d.stream}</code>
        </>
      )}
    </>
  );
}

/** The retrying lanes of a rule and the newest error, in words. */
function deliveryState(rule: ExportRule): string {
  const retrying = (rule.laneStates ?? []).filter((l) => l.attempts > 0);
  if (retrying.length === 0) return rule.pending > 0 ? 'delivering' : 'idle';
  const error = retrying.find((l) => l.lastError)?.lastError;
  return `${retrying.length} lane${retrying.length === 1 ? '' : 's'} retrying${error ? `: ${error}` : ''}`;
}

function EnableButton({ rule, onDone, small = true }: { rule: ExportRule; onDone: (error?: unknown) => void; small?: boolean }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class={small ? 'small' : undefined}
      disabled={busy}
      aria-label={`${rule.enabled ? 'Disable' : 'Enable'} rule ${rule.name}`}
      onClick={async () => {
        setBusy(true);
        try {
          await api('/api/export/rule', { body: { id: rule.id.id, enabled: !rule.enabled } });
          onDone();
        } catch (err) {
          onDone(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      {rule.enabled ? 'Disable' : 'Enable'}
    </button>
  );
}

function ExportRuleList() {
  const [actionError, setActionError] = useState<unknown>();
  const [rules, error, reload] = useLoad(async () => {
    const list = await api<ExportRule[]>('/api/export/rules');
    // The list has no lanes; each rule's own answer has them (rules are few).
    return Promise.all(list.map((r) => api<ExportRule>(`/api/export/rule/${r.id.id}`).catch(() => r)));
  }, []);
  usePolling(reload);
  return (
    <>
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h1>Export rules</h1>
        <button type="button" class="primary" onClick={() => go('/export/new')}>
          New rule
        </button>
      </div>
      <ErrorBox error={error ?? actionError} />
      <div class="table-wrap">
        <table aria-label="Export rules">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kinds</th>
              <th>Destination</th>
              <th>Pending</th>
              <th>Enabled</th>
              <th>Delivery</th>
            </tr>
          </thead>
          <tbody>
            {rules?.map((r) => (
              <tr key={r.id.id}>
                <td>
                  <a href={`#/export/${r.id.id}`}>{r.name}</a>
                </td>
                <td>{kindText(r)}</td>
                <td>
                  <Target rule={r} />
                </td>
                <td class="num">{r.pending}</td>
                <td>
                  <span class={`badge ${r.enabled ? 'on' : 'off'}`}>{r.enabled ? 'on' : 'off'}</span>{' '}
                  <EnableButton rule={r} onDone={(err) => (setActionError(err), reload())} />
                </td>
                <td class="wrap">{deliveryState(r)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rules && rules.length === 0 && <p class="muted">No export rules yet. A rule sends telemetry and device events to a webhook or a Redis stream.</p>}
    </>
  );
}

function DeleteRule({ rule }: { rule: ExportRule }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button type="button" class="danger" onClick={() => (setError(undefined), setOpen(true))}>
        Delete
      </button>
      <Dialog title={`Delete export rule ${rule.name}?`} open={open} onClose={() => setOpen(false)}>
        <p>The rule is deleted for good, with its {rule.pending} waiting messages and its dead letters.</p>
        <ErrorBox error={error} />
        <div class="row">
          <button
            type="button"
            class="danger"
            onClick={async () => {
              try {
                await api(`/api/export/rule/${rule.id.id}`, { method: 'DELETE' });
                setOpen(false);
                go('/export');
              } catch (err) {
                setError(err);
              }
            }}
          >
            Delete rule
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </>
  );
}

function ExportRuleDetail({ id }: { id: string }) {
  const [rule, error, reload] = useLoad(() => api<ExportRule>(`/api/export/rule/${encodeURIComponent(id)}`), [id]);
  const [actionError, setActionError] = useState<unknown>();
  usePolling(reload);
  if (!rule) return error ? <ErrorBox error={error} /> : <p class="muted">Loading…</p>;
  const d = rule.destination;
  return (
    <>
      <p>
        <a href="#/export">‹ Export rules</a>
      </p>
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h1>{rule.name}</h1>
        <span class="row">
          <EnableButton rule={rule} small={false} onDone={(err) => (setActionError(err), reload())} />
          <DeleteRule rule={rule} />
        </span>
      </div>
      <ErrorBox error={error ?? actionError} />
      <section class="panel" aria-label="Rule">
        <dl class="facts">
          <dt>Enabled</dt>
          <dd>
            <span class={`badge ${rule.enabled ? 'on' : 'off'}`}>{rule.enabled ? 'on' : 'off'}</span>
          </dd>
          <dt>Kinds</dt>
          <dd>{kindText(rule)}</dd>
          <dt>Devices</dt>
          <dd>{rule.deviceProfileId ? <a href={`#/profiles/${rule.deviceProfileId.id}`}>one profile</a> : 'all devices'}</dd>
          <dt>Destination</dt>
          <dd>
            <Target rule={rule} />
          </dd>
          {d.type === 'webhook' && (
            <>
              <dt>Signing secret</dt>
              <dd>{d.secret ? <code>{d.secret}</code> : 'none'}</dd>
              <dt>Headers</dt>
              <dd>{Object.keys(d.headers).length ? Object.entries(d.headers).map(([k, v]) => <code key={k}>{`${k}: ${v} `}</code>) : 'none'}</dd>
            </>
          )}
          {d.type === 'redis-stream' && (
            <>
              <dt>Max length</dt>
              <dd>{d.maxLen || 'no trim'}</dd>
            </>
          )}
          <dt>Batch size, timeout</dt>
          <dd>
            {d.batchSize} messages, {d.timeoutMs} ms
          </dd>
          <dt>Lanes</dt>
          <dd>{rule.lanes}</dd>
          <dt>Pending</dt>
          <dd>{rule.pending}</dd>
          <dt>Delivery</dt>
          <dd>{deliveryState(rule)}</dd>
        </dl>
      </section>
      <Lanes rule={rule} />
      <DeadLetters ruleId={rule.id.id} onReplayed={reload} />
    </>
  );
}

function Lanes({ rule }: { rule: ExportRule }) {
  // Only lanes that are failing or hold an error: a healthy lane has nothing to say.
  const lanes = (rule.laneStates ?? []).filter((l) => l.attempts > 0 || l.lastError);
  if (lanes.length === 0) return null;
  return (
    <section class="panel" aria-label="Delivery lanes">
      <h2>Retrying lanes</h2>
      <div class="table-wrap">
        <table aria-label="Delivery lanes">
          <thead>
            <tr>
              <th>Lane</th>
              <th>Attempts</th>
              <th>Next attempt</th>
              <th>Leased</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {lanes.map((l) => (
              <tr key={l.partition}>
                <td class="num">{l.partition}</td>
                <td class="num">{l.attempts}</td>
                <td>{l.attempts > 0 ? formatTime(l.nextAttemptTime) : '—'}</td>
                <td>{l.leased ? 'yes' : 'no'}</td>
                <td class="wrap">{l.lastError ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function DeadLetters({ ruleId, onReplayed }: { ruleId: string; onReplayed: () => void }) {
  const [page, setPage] = useState(0);
  const [note, setNote] = useState('');
  const [replayError, setReplayError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [data, error, reload] = useLoad(() => api<PageData<DeadLetter>>(`/api/export/deadLetters${query({ ruleId, pageSize: 10, page })}`), [ruleId, page]);
  usePolling(reload);
  const replay = async () => {
    setBusy(true);
    setReplayError(undefined);
    try {
      const { replayed } = await api<{ replayed: number }>('/api/export/deadLetters/replay', { body: { ruleId } });
      setNote(`${replayed} dead letter${replayed === 1 ? '' : 's'} back in the outbox`);
      setPage(0);
      reload();
      onReplayed();
    } catch (err) {
      setReplayError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel" aria-label="Dead letters">
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h2>Dead letters</h2>
        <button type="button" disabled={busy || !data || data.totalElements === 0} onClick={replay} aria-label="Replay all dead letters of this rule">
          Replay
        </button>
      </div>
      <p class="muted" role="status">
        {note}
      </p>
      <ErrorBox error={error ?? replayError} />
      <div class="table-wrap">
        <table aria-label="Dead letters">
          <thead>
            <tr>
              <th>Seq</th>
              <th>Kind</th>
              <th>Device</th>
              <th>Created</th>
              <th>Dead since</th>
              <th>Attempts</th>
              <th>Last error</th>
            </tr>
          </thead>
          <tbody>
            {data?.data.map((l) => (
              <tr key={l.seq}>
                <td class="num">{l.seq}</td>
                <td>{l.kind}</td>
                <td>{l.deviceId ? <a href={`#/devices/${l.deviceId}`}>{deviceNameOf(l)}</a> : '—'}</td>
                <td>{formatTime(l.createdTime)}</td>
                <td>{formatTime(l.deadTime)}</td>
                <td class="num">{l.attempts}</td>
                <td class="wrap">{l.lastError ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data && <Pager page={page} totalPages={data.totalPages} totalElements={data.totalElements} onPage={setPage} />}
    </section>
  );
}
