/** The CSV reader (csv-parse) and writer (csv-stringify): line numbers, line ends, streaming in arbitrary pieces. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { CsvError, csvRecords, parseCsv, toCsv, type CsvRecord } from '../../src/admin/csv.ts';
import { importRowChunks, ImportFileError } from '../../src/admin/device-csv.ts';

const TEXT = '\ufeffname,label\r\n"a,b","two\r\nlines"\r\n\r\nplain,"x\ny"\rcr-only,q"uote\nlast,\n';
const EXPECTED: CsvRecord[] = [
  { line: 1, fields: ['name', 'label'] },
  { line: 2, fields: ['a,b', 'two\r\nlines'] },
  { line: 5, fields: ['plain', 'x\ny'] },
  { line: 7, fields: ['cr-only', 'q"uote'] },
  { line: 8, fields: ['last', ''] },
];

/** The text as a stream of pieces of `size` bytes (so records, CRLFs and the BOM are split anywhere). */
const piecesOf = (text: string, size: number) => {
  const bytes = Buffer.from(text);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
};

async function collect(input: Readable): Promise<CsvRecord[]> {
  const out: CsvRecord[] = [];
  for await (const r of csvRecords(input)) out.push(r);
  return out;
}

describe('CSV', () => {
  test('CRLF, LF and CR line ends mixed, a CRLF inside a quoted field counting as one line', () => {
    assert.deepEqual(parseCsv(TEXT), EXPECTED);
  });

  test('a stream cut into pieces of any size gives the same records and lines as the whole text', async () => {
    for (const size of [1, 2, 3, 7, 64]) assert.deepEqual(await collect(piecesOf(TEXT, size)), EXPECTED, `pieces of ${size}`);
  });

  test('an unterminated quote in a stream is a CsvError naming its line', async () => {
    await assert.rejects(collect(piecesOf('name\r\n"a\r\nb"\r\n"open\n', 4)), (err: unknown) => err instanceof CsvError && err.line === 4);
  });

  test('the writer quotes what needs it, with CRLF line ends, and reads back the same', () => {
    const rows = [{ name: 'x,y', label: 'q"uote' }, { name: ' pad', label: 'cr\ronly' }, { name: 'nl', label: 'a\nb' }, { name: 'none', label: undefined }];
    const text = toCsv(['name', 'label'], rows);
    assert.equal(text, 'name,label\r\n"x,y","q""uote"\r\n" pad","cr\ronly"\r\nnl,"a\nb"\r\nnone,\r\n');
    assert.deepEqual(parseCsv(text).slice(1).map((r) => ({ name: r.fields[0], label: r.fields[1] })), rows.map((r) => ({ ...r, label: r.label ?? '' })));
  });

  test('device rows stream in chunks of at most the chunk size, with rejected rows beside them', async () => {
    const lines = ['Device Name,ACCESS_TOKEN'];
    for (let i = 0; i < 7; i++) lines.push(`d${i},t${i}`);
    lines.push('short');
    const chunks = [];
    for await (const c of importRowChunks(piecesOf(lines.join('\n'), 5), 3)) chunks.push(c);
    assert.deepEqual(chunks.map((c) => c.rows.map((r) => r.line)), [[2, 3, 4], [5, 6, 7], [8]]);
    assert.deepEqual(chunks[1].rows[0], { line: 5, name: 'd3', accessToken: 't3' });
    assert.deepEqual(chunks[2].rejected, [{ line: 9, name: 'short', error: 'expected 2 fields, found 1' }]);
  });

  test('a streamed file without a header, or with an unknown column, cannot be imported', async () => {
    const drain = async (text: string) => {
      for await (const _ of importRowChunks(piecesOf(text, 3), 10)) void _;
    };
    await assert.rejects(drain(''), (e: unknown) => e instanceof ImportFileError && /empty/.test(e.message));
    await assert.rejects(drain('name,colour\nx,red\n'), (e: unknown) => e instanceof ImportFileError && /unknown column "colour"/.test(e.message));
  });
});
