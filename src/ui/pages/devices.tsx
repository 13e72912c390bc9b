/** The device table: server-side paging, search, sort and filters; create, delete, import and export. */
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import type { Route } from '../router.ts';
import { ErrorBox, Field, Pager, Select, formatTime, useLoad } from '../parts/ui.tsx';
import type { Device, DeviceProfile, PageData } from '../types.ts';
import { CreateDevice, DeleteDevice } from './device-create.tsx';
import { ExportDevices, ImportDevices } from './device-import.tsx';

type DeviceRow = Device & {
  deviceProfileName: string;
  active: boolean;
  lastActivityTime?: number | null;
  credentialsType: string | null;
  provisioned: { time: number; transport: string | null } | null;
};

const CREDENTIALS_NAMES: Record<string, string> = { ACCESS_TOKEN: 'Access token', MQTT_BASIC: 'MQTT basic', X509_CERTIFICATE: 'X.509' };

const PAGE_SIZE = 20;
/** The table refreshes itself this often, so devices provisioned meanwhile appear without a reload. */
const REFRESH_MS = 3000;

export function useProfiles(): DeviceProfile[] {
  const [profiles] = useLoad(() => api<PageData<DeviceProfile>>('/api/deviceProfiles?pageSize=1000&page=0&sortProperty=name&sortOrder=ASC'), []);
  return profiles?.data ?? [];
}

function SortHeader({ label, property, sort, onSort, narrow }: { label: string; property: string; sort: [string, 'ASC' | 'DESC']; onSort: (s: [string, 'ASC' | 'DESC']) => void; narrow?: boolean }) {
  const active = sort[0] === property;
  return (
    <th class={narrow ? 'hide-narrow' : undefined} aria-sort={active ? (sort[1] === 'ASC' ? 'ascending' : 'descending') : 'none'}>
      <button type="button" onClick={() => onSort([property, active && sort[1] === 'ASC' ? 'DESC' : 'ASC'])}>
        {label} {active ? (sort[1] === 'ASC' ? '▲' : '▼') : ''}
      </button>
    </th>
  );
}

export function DevicesPage(_: { route: Route }) {
  const profiles = useProfiles();
  const [page, setPage] = useState(0);
  const [search, setSearch] = useState('');
  const [profileId, setProfileId] = useState('');
  const [active, setActive] = useState('');
  const [provisioned, setProvisioned] = useState('');
  const [sort, setSort] = useState<[string, 'ASC' | 'DESC']>(['createdTime', 'DESC']);
  const [data, error, reload] = useLoad(
    () =>
      api<PageData<DeviceRow>>(
        `/api/fleetgate/devices${query({ pageSize: PAGE_SIZE, page, textSearch: search.trim(), deviceProfileId: profileId, active, provisioned, sortProperty: sort[0], sortOrder: sort[1] })}`,
      ),
    [page, search, profileId, active, provisioned, sort[0], sort[1]],
  );
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === 'visible' && reload(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const resetPage = () => setPage(0);
  return (
    <>
      <div class="row" style={{ justifyContent: 'space-between' }}>
        <h1>Devices</h1>
        <span class="row">
          <CreateDevice profiles={profiles} onCreated={reload} />
          <ImportDevices profiles={profiles} onDone={reload} />
          <ExportDevices profiles={profiles} />
        </span>
      </div>
      <div class="row">
        <Field label="Search devices" type="search" value={search} onInput={(e) => (setSearch(e.currentTarget.value), resetPage())} />
        <Select
          label="Profile"
          value={profileId}
          options={[['', 'All profiles'], ...profiles.map((p): [string, string] => [p.id!.id, p.name])]}
          onChange={(e) => (setProfileId(e.currentTarget.value), resetPage())}
        />
        <Select
          label="Connection"
          value={active}
          options={[
            ['', 'Any'],
            ['true', 'Connected'],
            ['false', 'Disconnected'],
          ]}
          onChange={(e) => (setActive(e.currentTarget.value), resetPage())}
        />
        <Select
          label="Provision state"
          value={provisioned}
          options={[
            ['', 'Any'],
            ['true', 'Provisioned by the device'],
            ['false', 'Not provisioned (created or imported)'],
          ]}
          onChange={(e) => (setProvisioned(e.currentTarget.value), resetPage())}
        />
      </div>
      <ErrorBox error={error} />
      <div class="table-wrap">
        <table aria-label="Devices">
          <thead>
            <tr>
              <SortHeader label="Name" property="name" sort={sort} onSort={setSort} />
              <SortHeader label="Profile" property="deviceProfileName" sort={sort} onSort={setSort} />
              <SortHeader label="Label" property="label" sort={sort} onSort={setSort} />
              <th class="hide-narrow">Credentials</th>
              <th>Provisioned</th>
              <th class="hide-narrow">Last activity</th>
              <th>Connected</th>
              <SortHeader label="Created" property="createdTime" sort={sort} onSort={setSort} narrow />
              <th>
                <span class="offscreen">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data?.data.map((d) => (
              <tr key={d.id.id}>
                <td>
                  <a href={`#/devices/${d.id.id}`}>{d.name}</a>
                </td>
                <td>{d.deviceProfileName}</td>
                <td>{d.label ?? ''}</td>
                <td class="hide-narrow">{d.credentialsType ? (CREDENTIALS_NAMES[d.credentialsType] ?? d.credentialsType) : '—'}</td>
                <td>{d.provisioned ? `${formatTime(d.provisioned.time)}${d.provisioned.transport ? ` over ${d.provisioned.transport.toUpperCase()}` : ''}` : '—'}</td>
                <td class="hide-narrow">{formatTime(d.lastActivityTime)}</td>
                <td>{d.active ? <span class="badge on">connected</span> : <span class="badge off">no</span>}</td>
                <td class="hide-narrow">{formatTime(d.createdTime)}</td>
                <td>
                  <DeleteDevice device={d} onDeleted={reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data && <Pager page={page} totalPages={data.totalPages} totalElements={data.totalElements} onPage={setPage} />}
    </>
  );
}
