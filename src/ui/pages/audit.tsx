/** The audit log: filters by action, entity (text) and time range; paging. Also a device's own events. */
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { ErrorBox, Field, Pager, Select, formatTime, useLoad } from '../parts/ui.tsx';
import type { AuditLog, PageData } from '../types.ts';

const ACTIONS = [
  'LOGIN',
  'ADDED',
  'UPDATED',
  'DELETED',
  'CREDENTIALS_UPDATED',
  'CREDENTIALS_READ',
  'ATTRIBUTES_UPDATED',
  'ATTRIBUTES_DELETED',
  'TIMESERIES_UPDATED',
  'TIMESERIES_DELETED',
  'RPC_CALL',
  'PROVISION_SUCCESS',
  'PROVISION_FAILURE',
];

export function AuditTable({ data }: { data?: PageData<AuditLog> }) {
  return (
    <div class="table-wrap">
      <table aria-label="Audit events">
        <thead>
          <tr>
            <th>Time</th>
            <th>Action</th>
            <th>Entity</th>
            <th>User</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {data?.data.map((e) => (
            <tr key={e.id.id}>
              <td>{formatTime(e.createdTime)}</td>
              <td>{e.actionType}</td>
              <td>
                {e.entityId?.entityType === 'DEVICE' ? <a href={`#/devices/${e.entityId.id}`}>{e.entityName}</a> : (e.entityName ?? '—')}
                <span class="muted"> {e.entityId?.entityType ?? ''}</span>
              </td>
              <td>{e.userName ?? '—'}</td>
              <td>
                <span class={`badge ${e.actionStatus === 'SUCCESS' ? 'on' : 'fail'}`}>{e.actionStatus}</span> {e.actionFailureDetails ?? ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function AuditPage() {
  const [page, setPage] = useState(0);
  const [action, setAction] = useState('');
  const [text, setText] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [data, error] = useLoad(
    () =>
      api<PageData<AuditLog>>(
        `/api/audit/logs${query({ pageSize: 25, page, actionTypes: action, textSearch: text.trim(), startTime: from ? new Date(from).getTime() : undefined, endTime: to ? new Date(to).getTime() : undefined })}`,
      ),
    [page, action, text, from, to],
  );
  const reset = () => setPage(0);
  return (
    <>
      <h1>Audit log</h1>
      <div class="row">
        <Select label="Action" value={action} options={[['', 'All actions'], ...ACTIONS.map((a): [string, string] => [a, a])]} onChange={(e) => (setAction(e.currentTarget.value), reset())} />
        <Field label="Entity, user or status contains" type="search" value={text} onInput={(e) => (setText(e.currentTarget.value), reset())} />
        <Field label="From" type="datetime-local" value={from} onInput={(e) => (setFrom(e.currentTarget.value), reset())} />
        <Field label="To" type="datetime-local" value={to} onInput={(e) => (setTo(e.currentTarget.value), reset())} />
      </div>
      <ErrorBox error={error} />
      <AuditTable data={data} />
      {data && <Pager page={page} totalPages={data.totalPages} totalElements={data.totalElements} onPage={setPage} />}
    </>
  );
}

export function DeviceAudit({ deviceId }: { deviceId: string }) {
  const [page, setPage] = useState(0);
  const [data, error] = useLoad(() => api<PageData<AuditLog>>(`/api/audit/logs/entity/DEVICE/${deviceId}${query({ pageSize: 10, page, sortProperty: "createdTime", sortOrder: "DESC" })}`), [deviceId, page]);
  return (
    <section class="panel" aria-label="Audit events of this device">
      <h2>Audit events</h2>
      <ErrorBox error={error} />
      <AuditTable data={data} />
      {data && <Pager page={page} totalPages={data.totalPages} totalElements={data.totalElements} onPage={setPage} />}
    </section>
  );
}
