/** Create a device with an access token, MQTT basic or X.509 credentials; delete one after confirmation. */
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { Dialog, ErrorBox, Field, Select, TextArea } from '../parts/ui.tsx';
import type { Device, DeviceCredentials, DeviceProfile } from '../types.ts';

export type CredentialsKind = 'ACCESS_TOKEN' | 'MQTT_BASIC' | 'X509_CERTIFICATE';

export interface CredentialsForm {
  kind: CredentialsKind;
  token: string;
  clientId: string;
  userName: string;
  password: string;
  pem: string;
}

export const EMPTY_CREDENTIALS: CredentialsForm = { kind: 'ACCESS_TOKEN', token: '', clientId: '', userName: '', password: '', pem: '' };

/** What is wrong with the credentials before sending, or null. */
export function credentialsProblem(c: CredentialsForm): string | null {
  if (c.kind === 'MQTT_BASIC' && !c.clientId.trim() && !c.userName.trim()) return 'MQTT basic credentials need a client id or a user name.';
  if (c.kind === 'X509_CERTIFICATE' && !/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(c.pem)) return 'Paste or upload the device certificate (PEM).';
  return null;
}

/** The credentials JSON for POST /api/device/credentials (ThingsBoard's DeviceCredentials). */
export function credentialsBody(existing: DeviceCredentials, c: CredentialsForm): DeviceCredentials {
  if (c.kind === 'MQTT_BASIC') {
    const value: Record<string, string> = {};
    if (c.clientId.trim()) value.clientId = c.clientId.trim();
    if (c.userName.trim()) value.userName = c.userName.trim();
    if (c.password) value.password = c.password;
    return { ...existing, credentialsType: 'MQTT_BASIC', credentialsId: '', credentialsValue: JSON.stringify(value) };
  }
  if (c.kind === 'X509_CERTIFICATE') return { ...existing, credentialsType: 'X509_CERTIFICATE', credentialsId: '', credentialsValue: c.pem.trim() };
  return { ...existing, credentialsType: 'ACCESS_TOKEN', credentialsId: c.token.trim(), credentialsValue: null };
}

export function CredentialsFields({ value, onChange, tokenHint }: { value: CredentialsForm; onChange: (c: CredentialsForm) => void; tokenHint: string }) {
  const set = (patch: Partial<CredentialsForm>) => onChange({ ...value, ...patch });
  return (
    <>
      <Select
        label="Credentials type"
        value={value.kind}
        options={[
          ['ACCESS_TOKEN', 'Access token'],
          ['MQTT_BASIC', 'MQTT basic'],
          ['X509_CERTIFICATE', 'X.509 certificate'],
        ]}
        onChange={(e) => set({ kind: e.currentTarget.value as CredentialsKind })}
      />
      {value.kind === 'ACCESS_TOKEN' && <Field label="Access token" hint={tokenHint} value={value.token} onInput={(e) => set({ token: e.currentTarget.value })} />}
      {value.kind === 'MQTT_BASIC' && (
        <div class="row">
          <Field label="Client id" value={value.clientId} onInput={(e) => set({ clientId: e.currentTarget.value })} />
          <Field label="User name" value={value.userName} onInput={(e) => set({ userName: e.currentTarget.value })} />
          <Field label="Password" type="password" autocomplete="new-password" value={value.password} onInput={(e) => set({ password: e.currentTarget.value })} />
        </div>
      )}
      {value.kind === 'X509_CERTIFICATE' && (
        <>
          <div class="field">
            <label for="cert-file">Certificate file (PEM)</label>
            <input
              id="cert-file"
              type="file"
              accept=".pem,.crt,.cer"
              onChange={async (e) => {
                const file = e.currentTarget.files?.[0];
                if (file) set({ pem: await file.text() });
              }}
            />
          </div>
          <TextArea label="Certificate (PEM)" value={value.pem} onInput={(e) => set({ pem: e.currentTarget.value })} />
        </>
      )}
    </>
  );
}

export function CreateDevice({ profiles, onCreated }: { profiles: DeviceProfile[]; onCreated: () => void }) {
  const [open, setOpen] = useState(false);
  const [name, setName] = useState('');
  const [label, setLabel] = useState('');
  const [profileId, setProfileId] = useState('');
  const [credentials, setCredentials] = useState(EMPTY_CREDENTIALS);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const chosen = profileId || profiles.find((p) => p.default)?.id?.id || profiles[0]?.id?.id || '';
  const submit = async (e: Event) => {
    e.preventDefault();
    const problem = !name.trim() ? 'Name is required.' : credentialsProblem(credentials);
    if (problem) return setError(problem);
    setBusy(true);
    setError(undefined);
    let created: Device | undefined;
    try {
      const token = credentials.kind === 'ACCESS_TOKEN' ? credentials.token.trim() : '';
      created = await api<Device>(`/api/device${query({ accessToken: token })}`, {
        body: { name: name.trim(), label: label.trim() || null, deviceProfileId: chosen ? { entityType: 'DEVICE_PROFILE', id: chosen } : null },
      });
      if (credentials.kind !== 'ACCESS_TOKEN') {
        const existing = await api<DeviceCredentials>(`/api/device/${created.id.id}/credentials`);
        await api('/api/device/credentials', { body: credentialsBody(existing, credentials) });
      }
      setOpen(false);
      setName('');
      setLabel('');
      setCredentials(EMPTY_CREDENTIALS);
      onCreated();
    } catch (err) {
      // The device came first; without its credentials it is removed again, so a retry starts clean.
      if (created) await api(`/api/device/${created.id.id}`, { method: 'DELETE' }).catch(() => {});
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button type="button" class="primary" onClick={() => (setError(undefined), setOpen(true))}>
        New device
      </button>
      <Dialog title="New device" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={submit} noValidate>
          <Field label="Name" value={name} onInput={(e) => (setName(e.currentTarget.value), setError(undefined))} />
          <Select label="Device profile" value={chosen} options={profiles.map((p): [string, string] => [p.id!.id, p.name])} onChange={(e) => setProfileId(e.currentTarget.value)} />
          <Field label="Label" value={label} onInput={(e) => setLabel(e.currentTarget.value)} />
          <CredentialsFields value={credentials} onChange={setCredentials} tokenHint="Empty: the server generates one." />
          <ErrorBox error={error} />
          <button type="submit" class="primary" disabled={busy}>
            Create device
          </button>
        </form>
      </Dialog>
    </>
  );
}

export function DeleteDevice({ device, onDeleted }: { device: Device; onDeleted: () => void }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button type="button" class="small danger" aria-label={`Delete ${device.name}`} onClick={() => (setError(undefined), setOpen(true))}>
        Delete
      </button>
      <Dialog title={`Delete device ${device.name}?`} open={open} onClose={() => setOpen(false)}>
        <p>The device, its credentials and its data are deleted for good.</p>
        <ErrorBox error={error} />
        <div class="row">
          <button
            type="button"
            class="danger"
            onClick={async () => {
              try {
                await api(`/api/device/${device.id.id}`, { method: 'DELETE' });
                setOpen(false);
                onDeleted();
              } catch (err) {
                setError(err);
              }
            }}
          >
            Delete device
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </>
  );
}
