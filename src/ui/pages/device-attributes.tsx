/** Attributes by scope: client read-only; shared and server editable (a shared change reaches the device). */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { ErrorBox, Field, formatTime, useLoad } from '../parts/ui.tsx';

type Scope = 'CLIENT_SCOPE' | 'SHARED_SCOPE' | 'SERVER_SCOPE';
const SCOPES: [Scope, string][] = [
  ['CLIENT_SCOPE', 'Client'],
  ['SHARED_SCOPE', 'Shared'],
  ['SERVER_SCOPE', 'Server'],
];

/** A typed value: JSON when it parses (numbers, booleans, objects), else the text. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function AttributesPanel({ deviceId }: { deviceId: string }) {
  const [scope, setScope] = useState<Scope>('SHARED_SCOPE');
  const [rows, error, reload] = useLoad(
    () => api<{ key: string; value: unknown; lastUpdateTs: number }[]>(`/api/plugins/telemetry/DEVICE/${deviceId}/values/attributes/${scope}`),
    [deviceId, scope],
  );
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [saveError, setSaveError] = useState<unknown>();
  const editable = scope !== 'CLIENT_SCOPE';
  return (
    <section class="panel" aria-label="Attributes">
      <h2>Attributes</h2>
      <div class="tabs" role="tablist" aria-label="Attribute scope">
        {SCOPES.map(([s, name]) => (
          <button type="button" role="tab" key={s} aria-selected={s === scope} onClick={() => setScope(s)}>
            {name}
          </button>
        ))}
      </div>
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table aria-label={`${scope} attributes`}>
          <thead>
            <tr>
              <th>Key</th>
              <th>Value</th>
              <th>Updated</th>
              {editable && (
                <th>
                  <span class="offscreen">Edit</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {rows?.map((row) => (
              <tr key={row.key}>
                <td>{row.key}</td>
                <td>
                  <code>{JSON.stringify(row.value)}</code>
                </td>
                <td>{formatTime(row.lastUpdateTs)}</td>
                {editable && (
                  <td>
                    <button type="button" class="small" aria-label={`Edit ${row.key}`} onClick={() => (setKey(row.key), setValue(JSON.stringify(row.value)))}>
                      Edit
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {editable ? (
        <form
          class="row"
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            if (!key.trim()) return setSaveError('Key is required.');
            try {
              await api(`/api/plugins/telemetry/DEVICE/${deviceId}/attributes/${scope}`, { body: { [key.trim()]: parseValue(value) } });
              setSaveError(undefined);
              setKey('');
              setValue('');
              reload();
            } catch (err) {
              setSaveError(err);
            }
          }}
        >
          <Field label="Attribute key" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          <Field label="Attribute value (JSON or text)" value={value} onInput={(e) => setValue(e.currentTarget.value)} />
          <button type="submit" class="primary">
            Save attribute
          </button>
        </form>
      ) : (
        <p class="muted">Client attributes are set by the device.</p>
      )}
      <ErrorBox error={saveError} />
    </section>
  );
}
