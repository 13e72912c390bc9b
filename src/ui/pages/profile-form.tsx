/** Create or edit a device profile: strategy, key and secret (generated or typed), X.509 CA upload and CN pattern. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { go } from '../router.ts';
import { ErrorBox, Field, Select, TextArea } from '../parts/ui.tsx';
import type { DeviceProfile, ProvisionType } from '../types.ts';

const STRATEGIES: [ProvisionType, string][] = [
  ['ALLOW_CREATE_NEW_DEVICES', 'Allow creating new devices'],
  ['CHECK_PRE_PROVISIONED_DEVICES', 'Check pre-provisioned devices'],
  ['X509_CERTIFICATE_CHAIN', 'X.509 certificate chain'],
  ['DISABLED', 'Disabled'],
];

/** 20 random lowercase letters and digits, like ThingsBoard's generated keys. */
export function randomKey(length = 20): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

interface FormState {
  name: string;
  description: string;
  strategy: ProvisionType;
  key: string;
  secret: string;
  caPem: string;
  cnPattern: string;
  allowCreate: boolean;
}

function initial(profile?: DeviceProfile): FormState {
  const config = profile?.profileData?.provisionConfiguration;
  const x509 = profile?.provisionType === 'X509_CERTIFICATE_CHAIN';
  return {
    name: profile?.name ?? '',
    description: profile?.description ?? '',
    strategy: profile?.provisionType ?? 'ALLOW_CREATE_NEW_DEVICES',
    key: profile?.provisionDeviceKey ?? (profile ? '' : randomKey()),
    secret: x509 ? '' : (config?.provisionDeviceSecret ?? (profile ? '' : randomKey())),
    caPem: x509 ? (config?.provisionDeviceSecret ?? '') : '',
    cnPattern: config?.certificateRegExPattern ?? '(.*)',
    allowCreate: config?.allowCreateNewDevicesByX509Certificate ?? true,
  };
}

/** What is wrong with the form before anything is sent, or null. */
function validate(f: FormState): string | null {
  if (!f.name.trim()) return 'Name is required.';
  if (f.strategy === 'ALLOW_CREATE_NEW_DEVICES' || f.strategy === 'CHECK_PRE_PROVISIONED_DEVICES') {
    if (!f.key.trim()) return 'Provision key is required for this strategy.';
    if (!f.secret.trim()) return 'Provision secret is required for this strategy.';
  }
  if (f.strategy === 'X509_CERTIFICATE_CHAIN') {
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(f.caPem)) return 'Upload or paste the CA certificate (PEM, -----BEGIN CERTIFICATE-----).';
    try {
      new RegExp(f.cnPattern);
    } catch {
      return 'The CN pattern is not a valid regular expression.';
    }
  }
  return null;
}

function toBody(f: FormState, profile?: DeviceProfile): DeviceProfile {
  const keyed = f.strategy === 'ALLOW_CREATE_NEW_DEVICES' || f.strategy === 'CHECK_PRE_PROVISIONED_DEVICES';
  const x509 = f.strategy === 'X509_CERTIFICATE_CHAIN';
  return {
    ...(profile ?? { type: 'DEFAULT', transportType: 'DEFAULT' }),
    name: f.name.trim(),
    description: f.description.trim() || null,
    provisionType: f.strategy,
    provisionDeviceKey: keyed ? f.key.trim() : null,
    profileData: {
      ...(profile?.profileData ?? {}),
      provisionConfiguration: {
        type: f.strategy,
        provisionDeviceSecret: keyed ? f.secret.trim() : x509 ? f.caPem.trim() : null,
        ...(x509 ? { certificateRegExPattern: f.cnPattern, allowCreateNewDevicesByX509Certificate: f.allowCreate } : {}),
      },
    },
  };
}

export function ProfileForm({ profile, onSaved, onCancel }: { profile?: DeviceProfile; onSaved?: () => void; onCancel?: () => void }) {
  const [form, setForm] = useState(() => initial(profile));
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<FormState>) => (setForm({ ...form, ...patch }), setError(undefined));
  const keyed = form.strategy === 'ALLOW_CREATE_NEW_DEVICES' || form.strategy === 'CHECK_PRE_PROVISIONED_DEVICES';
  return (
    <form
      class="panel"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        const problem = validate(form);
        if (problem) return setError(problem);
        setBusy(true);
        try {
          const saved = await api<DeviceProfile>('/api/deviceProfile', { body: toBody(form, profile) });
          if (onSaved) onSaved();
          else go(`/profiles/${saved.id!.id}`);
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h1>{profile ? `Edit ${profile.name}` : 'New device profile'}</h1>
      <div class="row">
        <Field label="Name" required value={form.name} onInput={(e) => set({ name: e.currentTarget.value })} />
        <Field label="Description" value={form.description} onInput={(e) => set({ description: e.currentTarget.value })} />
      </div>
      <Select label="Provisioning strategy" value={form.strategy} options={STRATEGIES} onChange={(e) => set({ strategy: e.currentTarget.value as ProvisionType })} />
      {keyed && (
        <div class="row">
          <Field label="Provision key" value={form.key} onInput={(e) => set({ key: e.currentTarget.value })} />
          <button type="button" onClick={() => set({ key: randomKey() })}>
            Generate key
          </button>
          <Field label="Provision secret" type="password" autocomplete="off" value={form.secret} onInput={(e) => set({ secret: e.currentTarget.value })} />
          <button type="button" onClick={() => set({ secret: randomKey() })}>
            Generate secret
          </button>
        </div>
      )}
      {form.strategy === 'X509_CERTIFICATE_CHAIN' && (
        <>
          <div class="field">
            <label for="ca-file">CA certificate file (PEM)</label>
            <input
              id="ca-file"
              type="file"
              accept=".pem,.crt,.cer,application/x-pem-file"
              onChange={async (e) => {
                const file = e.currentTarget.files?.[0];
                if (file) set({ caPem: await file.text() });
              }}
            />
          </div>
          <TextArea label="CA certificate (PEM)" value={form.caPem} onInput={(e) => set({ caPem: e.currentTarget.value })} />
          <Field label="CN pattern (group 1 is the device name)" value={form.cnPattern} onInput={(e) => set({ cnPattern: e.currentTarget.value })} />
          <div class="field">
            <label>
              <input type="checkbox" checked={form.allowCreate} onChange={(e) => set({ allowCreate: e.currentTarget.checked })} /> Create new devices on first
              connection
            </label>
          </div>
        </>
      )}
      <ErrorBox error={error} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {profile ? 'Save' : 'Create profile'}
        </button>
        <button type="button" onClick={() => (onCancel ? onCancel() : go('/profiles'))}>
          Cancel
        </button>
      </div>
    </form>
  );
}
