/** One device: details, credentials, live telemetry and its chart, attributes, RPC console. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { CopyButton, ErrorBox, Secret, formatTime, useLoad } from '../parts/ui.tsx';
import type { Device, DeviceCredentials } from '../types.ts';
import { CredentialsFields, EMPTY_CREDENTIALS, credentialsBody, credentialsProblem } from './device-create.tsx';
import { AttributesPanel } from './device-attributes.tsx';
import { DeviceAudit } from './audit.tsx';
import { RpcPanel } from './device-rpc.tsx';
import { TelemetryPanel } from './device-telemetry.tsx';
import { randomKey } from './profile-form.tsx';

type DeviceInfo = Device & { deviceProfileName?: string; active?: boolean; lastActivityTime?: number | null; lastConnectTime?: number | null };

export function DevicePage({ id }: { id: string }) {
  const [device, error] = useLoad(() => api<DeviceInfo>(`/api/device/info/${encodeURIComponent(id)}`), [id]);
  if (error) return <ErrorBox error={error} />;
  if (!device) return <p class="muted">Loading…</p>;
  return (
    <>
      <p>
        <a href="#/devices">‹ Devices</a>
      </p>
      <h1>{device.name}</h1>
      <div class="grid">
        <section class="panel" aria-label="Details">
          <h2>Details</h2>
          <dl class="facts">
            <dt>Profile</dt>
            <dd>
              <a href={`#/profiles/${device.deviceProfileId.id}`}>{device.deviceProfileName ?? device.type}</a>
            </dd>
            <dt>Label</dt>
            <dd>{device.label ?? '—'}</dd>
            <dt>Id</dt>
            <dd>
              <code>{device.id.id}</code> <CopyButton text={device.id.id} label="Copy device id" />
            </dd>
            <dt>Connected</dt>
            <dd>{device.active ? <span class="badge on">connected</span> : <span class="badge off">no</span>}</dd>
            <dt>Last activity</dt>
            <dd>{formatTime(device.lastActivityTime)}</dd>
            <dt>Created</dt>
            <dd>{formatTime(device.createdTime)}</dd>
          </dl>
        </section>
        <CredentialsPanel deviceId={device.id.id} />
      </div>
      <TelemetryPanel deviceId={device.id.id} />
      <AttributesPanel deviceId={device.id.id} />
      <RpcPanel deviceId={device.id.id} />
      <DeviceAudit deviceId={device.id.id} />
    </>
  );
}

function CredentialsPanel({ deviceId }: { deviceId: string }) {
  const [credentials, error, reload] = useLoad(() => api<DeviceCredentials>(`/api/device/${deviceId}/credentials`), [deviceId]);
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState(EMPTY_CREDENTIALS);
  const [saveError, setSaveError] = useState<unknown>();
  if (error) return <ErrorBox error={error} />;
  if (!credentials) return null;
  let shown: preact.ComponentChildren;
  if (credentials.credentialsType === 'ACCESS_TOKEN') shown = <Secret value={credentials.credentialsId} label="access token" />;
  else if (credentials.credentialsType === 'MQTT_BASIC') {
    const value = JSON.parse(credentials.credentialsValue ?? '{}') as { clientId?: string; userName?: string; password?: string };
    shown = (
      <dl class="facts">
        <dt>Client id</dt>
        <dd>{value.clientId ?? '—'}</dd>
        <dt>User name</dt>
        <dd>{value.userName ?? '—'}</dd>
        <dt>Password</dt>
        <dd>{value.password ? <Secret value={value.password} label="MQTT password" /> : '—'}</dd>
      </dl>
    );
  } else shown = <Secret value={credentials.credentialsValue ?? ''} label="certificate" />;
  return (
    <section class="panel" aria-label="Credentials">
      <h2>Credentials</h2>
      <p>
        <span class="badge">{credentials.credentialsType}</span>
      </p>
      {shown}
      {!editing ? (
        <p>
          <button type="button" onClick={() => (setForm(EMPTY_CREDENTIALS), setSaveError(undefined), setEditing(true))}>
            Replace credentials
          </button>
        </p>
      ) : (
        <form
          noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            const problem = credentialsProblem(form);
            if (problem) return setSaveError(problem);
            const next = form.kind === 'ACCESS_TOKEN' && !form.token.trim() ? { ...form, token: randomKey() } : form;
            try {
              await api('/api/device/credentials', { body: credentialsBody(credentials, next) });
              setEditing(false);
              reload();
            } catch (err) {
              setSaveError(err);
            }
          }}
        >
          <CredentialsFields value={form} onChange={setForm} tokenHint="Empty: a new random token." />
          <ErrorBox error={saveError} />
          <div class="row">
            <button type="submit" class="primary">
              Save credentials
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
