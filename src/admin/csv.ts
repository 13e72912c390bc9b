/**
 * A small RFC 4180 CSV codec: quoted fields with commas, quotes (`""`) and line breaks inside, CRLF or LF line ends,
 * a UTF-8 byte order mark, blank lines skipped. Records keep the line they start on, for error reports.
 */

/** One parsed record and the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Malformed CSV (an unterminated quoted field); `line` is where the field started. */
export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

/** Parses CSV text into records. A blank line (no characters at all) is skipped. `delimiter` is one character. */
export function parseCsv(text: string, delimiter = ','): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let recordLine = 1;
  let field = '';
  let quoted = false; // the current field was a quoted one (so even "" makes a record)
  let atFieldStart = true;
  const endRecord = () => {
    if (fields.length > 0 || quoted || field !== '') {
      fields.push(field);
      records.push({ line: recordLine, fields });
    }
    fields = [];
    field = '';
    quoted = false;
    atFieldStart = true;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '"' && atFieldStart) {
      const quoteLine = line;
      let j = i + 1;
      let value = '';
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) throw new CsvError('unterminated quoted field', quoteLine);
        value += text.slice(j, q);
        if (text[q + 1] === '"') {
          value += '"';
          j = q + 2;
        } else {
          j = q + 1;
          break;
        }
      }
      line += value.split('\n').length - 1;
      field = value;
      quoted = true;
      atFieldStart = false;
      i = j;
      continue;
    }
    if (c === delimiter) {
      fields.push(field); // a trailing comma still makes an (empty) last field
      field = '';
      atFieldStart = true;
      i++;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
      continue;
    }
    atFieldStart = false;
    field += c; // a quote inside an unquoted field is kept as it is (lenient, like most readers)
    i++;
  }
  endRecord();
  return records;
}

/** One CSV field: quoted when it holds a comma, quote, line break, or leading/trailing space. */
export function csvField(value: string): string {
  return /[",\r\n]|^\s|\s$/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A whole CSV document with a header line, CRLF line ends (RFC 4180). */
export function toCsv(columns: string[], rows: Record<string, string | undefined>[]): string {
  const lines = [columns.map(csvField).join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c] ?? '')).join(','));
  return lines.join('\r\n') + '\r\n';
}
