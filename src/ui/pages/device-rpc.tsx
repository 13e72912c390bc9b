/** RPC console: method, params as JSON, one-way or two-way, timeout; shows the reply, the timeout or the error. */
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.ts';
import { Field, Select, TextArea } from '../parts/ui.tsx';

export function RpcPanel({ deviceId }: { deviceId: string }) {
  const [method, setMethod] = useState('');
  const [params, setParams] = useState('{}');
  const [kind, setKind] = useState<'twoway' | 'oneway'>('twoway');
  const [timeout, setTimeoutMs] = useState('10000');
  const [outcome, setOutcome] = useState<{ kind: 'reply' | 'timeout' | 'error' | 'sent'; text: string }>();
  const [busy, setBusy] = useState(false);
  return (
    <section class="panel" aria-label="RPC">
      <h2>RPC</h2>
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          let parsed: unknown;
          try {
            parsed = JSON.parse(params || 'null');
          } catch {
            return setOutcome({ kind: 'error', text: 'Params must be JSON, e.g. {"pin": 4}.' });
          }
          if (!method.trim()) return setOutcome({ kind: 'error', text: 'Method is required.' });
          const ms = Number(timeout);
          if (!Number.isInteger(ms) || ms < 1) return setOutcome({ kind: 'error', text: 'Timeout must be a positive number of milliseconds.' });
          setBusy(true);
          setOutcome(undefined);
          try {
            const reply = await api(`/api/plugins/rpc/${kind}/${deviceId}`, { body: { method: method.trim(), params: parsed, timeout: ms } });
            setOutcome(kind === 'oneway' ? { kind: 'sent', text: 'Delivered to the device.' } : { kind: 'reply', text: JSON.stringify(reply, null, 2) });
          } catch (err) {
            if (err instanceof ApiError && (err.status === 408 || err.status === 504)) setOutcome({ kind: 'timeout', text: `No answer in time: ${err.message}` });
            else setOutcome({ kind: 'error', text: err instanceof Error ? err.message : String(err) });
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="row">
          <Field label="Method" value={method} onInput={(e) => setMethod(e.currentTarget.value)} />
          <Select
            label="Kind"
            value={kind}
            options={[
              ['twoway', 'Two-way (wait for the reply)'],
              ['oneway', 'One-way'],
            ]}
            onChange={(e) => setKind(e.currentTarget.value as 'twoway' | 'oneway')}
          />
          <Field label="Timeout (ms)" type="number" min={1} value={timeout} onInput={(e) => setTimeoutMs(e.currentTarget.value)} />
        </div>
        <TextArea label="Params (JSON)" value={params} onInput={(e) => setParams(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Waiting…' : 'Send RPC'}
        </button>
      </form>
      {outcome && (
        <figure class="code" aria-label="RPC outcome" data-outcome={outcome.kind}>
          <figcaption>{outcome.kind === 'reply' ? 'Reply' : outcome.kind === 'timeout' ? 'Timeout' : outcome.kind === 'sent' ? 'Sent' : 'Error'}</figcaption>
          <pre class={outcome.kind === 'error' || outcome.kind === 'timeout' ? 'error' : ''}>{outcome.text}</pre>
        </figure>
      )}
    </section>
  );
}
