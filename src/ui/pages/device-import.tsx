/** Bulk import of a CSV file in chunks with a progress bar and the row-by-row report; export as CSV. */
import { useState } from 'preact/hooks';
import { api, query } from '../api.ts';
import { Dialog, ErrorBox, Select } from '../parts/ui.tsx';
import type { DeviceProfile, ImportResult } from '../types.ts';
import { csvChunks } from './csv-chunks.ts';

const CHUNK_RECORDS = 100;

interface Report {
  created: number;
  skipped: { line: number; name: string | null }[];
  rejected: { line: number; name: string | null; error: string }[];
}

export function ImportDevices({ profiles, onDone }: { profiles: DeviceProfile[]; onDone: () => void }) {
  const candidates = profiles.filter((p) => p.provisionType === 'CHECK_PRE_PROVISIONED_DEVICES');
  const [open, setOpen] = useState(false);
  const [profileId, setProfileId] = useState('');
  const [file, setFile] = useState<File>();
  const [progress, setProgress] = useState<[number, number]>();
  const [report, setReport] = useState<Report>();
  const [error, setError] = useState<unknown>();
  const chosen = profileId || candidates[0]?.id?.id || '';

  const run = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setReport(undefined);
    if (!chosen) return setError('Import needs a profile with the strategy "Check pre-provisioned devices".');
    if (!file) return setError('Choose a CSV file.');
    const parts = csvChunks(await file.text(), CHUNK_RECORDS);
    if (!parts) return setError('The file is empty: a header line such as "name,accessToken" is expected.');
    const result: Report = { created: 0, skipped: [], rejected: [] };
    setProgress([0, parts.total]);
    let done = 0;
    try {
      for (const chunk of parts.chunks) {
        const answer = await api<ImportResult>(`/api/devices/import${query({ deviceProfileId: chosen })}`, { body: chunk.text, contentType: 'text/csv' });
        const toFileLine = (line: number) => line - 2 + chunk.firstLine;
        result.created += answer.created;
        result.skipped.push(...answer.duplicates.map((d) => ({ ...d, line: toFileLine(d.line) })));
        result.rejected.push(...answer.errors.map((r) => ({ ...r, line: toFileLine(r.line) })));
        done += chunk.records;
        setProgress([done, parts.total]);
        setReport({ ...result });
      }
    } catch (err) {
      setError(err);
    } finally {
      onDone();
    }
  };

  return (
    <>
      <button type="button" onClick={() => (setOpen(true), setReport(undefined), setProgress(undefined), setError(undefined))}>
        Import CSV
      </button>
      <Dialog title="Import devices from CSV" open={open} onClose={() => setOpen(false)}>
        <form onSubmit={run} noValidate>
          <p class="muted">
            A header line, then one device per line: <code>name</code> and optionally <code>label</code> and one kind of credentials (
            <code>accessToken</code>, or <code>clientId</code>/<code>username</code>/<code>password</code>, or <code>certificate</code>).
          </p>
          <Select label="Import into profile" value={chosen} options={candidates.map((p): [string, string] => [p.id!.id, p.name])} onChange={(e) => setProfileId(e.currentTarget.value)} />
          <div class="field">
            <label for="import-file">CSV file</label>
            <input id="import-file" type="file" accept=".csv,text/csv" onChange={(e) => setFile(e.currentTarget.files?.[0])} />
          </div>
          <button type="submit" class="primary">
            Import
          </button>
        </form>
        {progress && (
          <div class="field">
            <label for="import-progress">
              Imported {progress[0]} of {progress[1]} rows
            </label>
            <progress id="import-progress" max={progress[1] || 1} value={progress[0]} />
          </div>
        )}
        <ErrorBox error={error} />
        {report && <ImportReport report={report} />}
      </Dialog>
    </>
  );
}

function ImportReport({ report }: { report: Report }) {
  const rows = [
    ...report.skipped.map((s) => ({ line: s.line, name: s.name, outcome: 'skipped', reason: 'a device with this name exists' })),
    ...report.rejected.map((r) => ({ line: r.line, name: r.name, outcome: 'rejected', reason: r.error })),
  ].sort((a, b) => a.line - b.line);
  return (
    <section aria-label="Import report">
      <p role="status">
        <strong>{report.created}</strong> created, <strong>{report.skipped.length}</strong> skipped, <strong>{report.rejected.length}</strong> rejected
      </p>
      {rows.length > 0 && (
        <div class="table-wrap">
          <table aria-label="Rows not created">
            <thead>
              <tr>
                <th>Line</th>
                <th>Name</th>
                <th>Outcome</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {rows.slice(0, 500).map((r) => (
                <tr key={`${r.line}-${r.outcome}`}>
                  <td class="num">{r.line}</td>
                  <td>{r.name ?? ''}</td>
                  <td>{r.outcome}</td>
                  <td>{r.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function ExportDevices({ profiles }: { profiles: DeviceProfile[] }) {
  const [open, setOpen] = useState(false);
  const [profileId, setProfileId] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <>
      <button type="button" onClick={() => (setError(undefined), setOpen(true))}>
        Export CSV
      </button>
      <Dialog title="Export devices with their credentials" open={open} onClose={() => setOpen(false)}>
        <Select
          label="Export profile"
          value={profileId}
          options={[['', 'All profiles'], ...profiles.map((p): [string, string] => [p.id!.id, p.name])]}
          onChange={(e) => setProfileId(e.currentTarget.value)}
        />
        <ErrorBox error={error} />
        <button
          type="button"
          class="primary"
          onClick={async () => {
            try {
              const csv = await api<string>(`/api/devices/export${query({ deviceProfileId: profileId })}`, { text: true, accept: 'text/csv' });
              const link = document.createElement('a');
              link.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
              link.download = 'devices.csv';
              link.click();
              setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
              setOpen(false);
            } catch (err) {
              setError(err);
            }
          }}
        >
          Download CSV
        </button>
      </Dialog>
    </>
  );
}
