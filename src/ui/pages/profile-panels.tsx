/** A profile's ready-to-copy provisioning commands, and its delete button. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { go } from '../router.ts';
import { CodeBlock, Dialog, ErrorBox, Field, useLoad } from '../parts/ui.tsx';
import type { DeviceProfile } from '../types.ts';
import { coapCommand, curlCommand, mosquittoCommands, pythonScript, type Endpoint } from './profile-commands.ts';

interface ServerInfo {
  tls: boolean;
  httpPort: number;
  mqttPort: number;
  mqttTlsPort: number | null;
  coapPort: number;
}

export function ProvisionCommands({ provisionKey, secret }: { provisionKey: string; secret: string }) {
  const [info, error] = useLoad(() => api<ServerInfo>('/api/fleetgate/info'), []);
  const [deviceName, setDeviceName] = useState('device-0001');
  const [tab, setTab] = useState('curl');
  const [showSecret, setShowSecret] = useState(false);
  if (error) return <ErrorBox error={error} />;
  if (!info) return null;
  const endpoint: Endpoint = { host: location.hostname, httpBase: location.origin, mqttPort: info.mqttPort, coapPort: info.coapPort };
  const tabs: [string, string, string][] = [
    ['curl', 'HTTP (curl)', curlCommand(endpoint, deviceName, provisionKey, secret)],
    ['mosquitto', 'MQTT (mosquitto)', mosquittoCommands(endpoint, deviceName, provisionKey, secret)],
    ['python', 'MQTT (Python script)', pythonScript(endpoint, deviceName, provisionKey, secret)],
    ['coap', 'CoAP (coap-client)', coapCommand(endpoint, deviceName, provisionKey, secret)],
  ];
  const current = tabs.find(([id]) => id === tab) ?? tabs[0];
  // Shown masked unless asked; Copy always copies the command with the real secret.
  const shown = showSecret ? current[2] : current[2].split(secret).join('•'.repeat(8));
  return (
    <section class="panel" aria-label="Provisioning commands">
      <h2>Provision a device</h2>
      <div class="row">
        <Field label="Device name for the commands" value={deviceName} onInput={(e) => setDeviceName(e.currentTarget.value)} />
        <div class="field">
          <label>
            <input type="checkbox" checked={showSecret} onChange={(e) => setShowSecret(e.currentTarget.checked)} /> Show the secret in the commands
          </label>
        </div>
      </div>
      <div class="tabs" role="tablist" aria-label="Client">
        {tabs.map(([id, name]) => (
          <button type="button" role="tab" key={id} aria-selected={id === current[0]} onClick={() => setTab(id)}>
            {name}
          </button>
        ))}
      </div>
      <CodeBlock title={current[1]} code={shown} copy={current[2]} />
    </section>
  );
}

export function DeleteProfile({ profile }: { profile: DeviceProfile }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button type="button" class="danger" onClick={() => (setError(undefined), setOpen(true))}>
        Delete
      </button>
      <Dialog title={`Delete profile ${profile.name}?`} open={open} onClose={() => setOpen(false)}>
        <p>The profile is deleted for good. The server refuses while devices use it.</p>
        <ErrorBox error={error} />
        <div class="row">
          <button
            type="button"
            class="danger"
            onClick={async () => {
              try {
                await api(`/api/deviceProfile/${profile.id!.id}`, { method: 'DELETE' });
                setOpen(false);
                go('/profiles');
              } catch (err) {
                setError(err);
              }
            }}
          >
            Delete profile
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </>
  );
}
