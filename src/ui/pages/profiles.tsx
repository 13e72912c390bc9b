/** Device profiles: list, create, edit (provisioning strategy, key and secret, X.509 CA), commands, delete. */
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { go } from '../router.ts';
import { ErrorBox, Field, Pager, Secret, formatTime, useLoad } from '../parts/ui.tsx';
import type { DeviceProfile, PageData, ProvisionType } from '../types.ts';
import { ProfileForm } from './profile-form.tsx';
import { ProvisionCommands } from './profile-panels.tsx';
import { DeleteProfile } from './profile-panels.tsx';

export const STRATEGY_NAMES: Record<ProvisionType, string> = {
  ALLOW_CREATE_NEW_DEVICES: 'Allow creating new devices',
  CHECK_PRE_PROVISIONED_DEVICES: 'Check pre-provisioned devices',
  X509_CERTIFICATE_CHAIN: 'X.509 certificate chain',
  DISABLED: 'Disabled',
};

export function ProfilesPage({ id }: { id?: string }) {
  if (id === 'new') return <ProfileForm />;
  if (id) return <ProfileDetail id={id} />;
  return <ProfileList />;
}

function ProfileList() {
  const [page, setPage] = useState(0);
  const [search, setSearch] = useState('');
  const [data, error] = useLoad(
    () => api<PageData<DeviceProfile>>(`/api/deviceProfiles${query({ pageSize: 20, page, textSearch: search, sortProperty: 'name', sortOrder: 'ASC' })}`),
    [page, search],
  );
  return (
    <>
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h1>Device profiles</h1>
        <button type="button" class="primary" onClick={() => go('/profiles/new')}>
          New profile
        </button>
      </div>
      <div class="row">
        <Field label="Search profiles" type="search" value={search} onInput={(e) => (setSearch(e.currentTarget.value), setPage(0))} />
      </div>
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Provisioning</th>
              <th class="hide-narrow">Provision key</th>
              <th class="hide-narrow">Created</th>
            </tr>
          </thead>
          <tbody>
            {data?.data.map((p) => (
              <tr key={p.id!.id}>
                <td>
                  <a href={`#/profiles/${p.id!.id}`}>{p.name}</a> {p.default && <span class="badge">default</span>}
                </td>
                <td>{STRATEGY_NAMES[p.provisionType] ?? p.provisionType}</td>
                <td class="hide-narrow">
                  <code>{p.provisionDeviceKey ?? '—'}</code>
                </td>
                <td class="hide-narrow">{formatTime(p.createdTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data && <Pager page={page} totalPages={data.totalPages} totalElements={data.totalElements} onPage={setPage} />}
    </>
  );
}

function ProfileDetail({ id }: { id: string }) {
  const [profile, error, reload] = useLoad(() => api<DeviceProfile>(`/api/deviceProfile/${encodeURIComponent(id)}`), [id]);
  const [editing, setEditing] = useState(false);
  if (error) return <ErrorBox error={error} />;
  if (!profile) return <p class="muted">Loading…</p>;
  if (editing) return <ProfileForm profile={profile} onSaved={() => (setEditing(false), reload())} onCancel={() => setEditing(false)} />;
  const config = profile.profileData?.provisionConfiguration;
  const secret = config?.provisionDeviceSecret ?? null;
  const usesKey = profile.provisionType === 'ALLOW_CREATE_NEW_DEVICES' || profile.provisionType === 'CHECK_PRE_PROVISIONED_DEVICES';
  return (
    <>
      <p>
        <a href="#/profiles">‹ Device profiles</a>
      </p>
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h1>{profile.name}</h1>
        <span class="row">
          <button type="button" onClick={() => setEditing(true)}>
            Edit
          </button>
          <DeleteProfile profile={profile} />
        </span>
      </div>
      <section class="panel">
        <dl class="facts">
          <dt>Provisioning</dt>
          <dd>{STRATEGY_NAMES[profile.provisionType] ?? profile.provisionType}</dd>
          {profile.description && (
            <>
              <dt>Description</dt>
              <dd>{profile.description}</dd>
            </>
          )}
          {usesKey && (
            <>
              <dt>Provision key</dt>
              <dd>
                <code>{profile.provisionDeviceKey}</code>
              </dd>
              <dt>Provision secret</dt>
              <dd>{secret ? <Secret value={secret} label="provision secret" /> : '—'}</dd>
            </>
          )}
          {profile.provisionType === 'X509_CERTIFICATE_CHAIN' && (
            <>
              <dt>CN pattern</dt>
              <dd>
                <code>{config?.certificateRegExPattern ?? '—'}</code>
              </dd>
              <dt>Create new devices</dt>
              <dd>{config?.allowCreateNewDevicesByX509Certificate ? 'yes' : 'no'}</dd>
              <dt>CA certificate</dt>
              <dd>
                <pre class="muted">{(secret ?? '').slice(0, 200)}…</pre>
              </dd>
            </>
          )}
          <dt>Created</dt>
          <dd>{formatTime(profile.createdTime)}</dd>
        </dl>
      </section>
      {usesKey && profile.provisionDeviceKey && secret && <ProvisionCommands provisionKey={profile.provisionDeviceKey} secret={secret} />}
    </>
  );
}
