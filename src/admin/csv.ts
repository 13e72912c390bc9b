/**
 * CSV through csv-parse and csv-stringify (RFC 4180): quoted fields with commas, quotes (`""`) and line breaks
 * inside, CRLF, LF or CR line ends (mixed too), a UTF-8 byte order mark, blank lines skipped, a quote inside an
 * unquoted field kept as it is. Records keep the line they start on, for error reports. `parseCsv` reads a whole text
 * (the admin API's text/csv body); `csvRecords` reads a stream record by record (the CLI's import of a large file).
 */
import type { Readable } from 'node:stream';
import { CsvError as ParserError, parse, type Options } from 'csv-parse';
import { parse as parseText } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

/** One parsed record and the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Malformed CSV (e.g. an unterminated quoted field); `line` is where the parser found it. */
export class CsvError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

const OPTIONS: Options = {
  bom: true,
  record_delimiter: ['\r\n', '\n', '\r'],
  relax_column_count: true, // the import reports a wrong field count per row
  relax_quotes: true,
  skip_empty_lines: true,
};

/**
 * Start lines of records. csv-parse counts the line a record ends on, and counts every CR and every LF inside a quoted
 * field as a line of its own; a CRLF inside a field is one line break to a reader (and to an editor), so the lines
 * csv-parse counted too many so far are subtracted.
 */
class LineCounter {
  private excess = 0;
  /** The line after the last whole record: where a record that never ends (an open quote) starts. */
  private next = 1;

  record(fields: string[], info: { lines: number }): CsvRecord {
    let chars = 0;
    let pairs = 0;
    for (const field of fields) {
      if (!field.includes('\n') && !field.includes('\r')) continue;
      for (let i = 0; i < field.length; i++) {
        const c = field.charCodeAt(i);
        if (c === 10 || c === 13) chars++;
        if (c === 13 && field.charCodeAt(i + 1) === 10) pairs++;
      }
    }
    const line = info.lines - this.excess - chars;
    this.excess += pairs;
    this.next = line + chars - pairs + 1;
    return { line, fields };
  }

  error(err: unknown): unknown {
    if (!(err instanceof ParserError)) return err;
    // csv-parse names the line where it gave up (the end of the input, for an open quote).
    if (err.code === 'CSV_QUOTE_NOT_CLOSED') return new CsvError('unterminated quoted field', this.next);
    return new CsvError(err.message, ((err as ParserError & { lines?: number }).lines ?? 0) - this.excess);
  }
}

/** csv-parse options whose records are CsvRecords, their lines counted by `lines` as they are parsed. */
function optionsCounting(lines: LineCounter): Options {
  // csv-parse's typings expect a record to stay a string[]; ours become CsvRecords (read back as such below).
  return { ...OPTIONS, on_record: (fields, context) => lines.record(fields, context) as unknown as string[] };
}

/** Parses CSV text into records; `delimiter` is one character (ThingsBoard's bulk import lets it be chosen). Throws CsvError. */
export function parseCsv(text: string, delimiter = ','): CsvRecord[] {
  const lines = new LineCounter();
  try {
    return parseText(text, { ...optionsCounting(lines), delimiter }) as unknown as CsvRecord[];
  } catch (err) {
    throw lines.error(err);
  }
}

/** Reads CSV from a stream, one record at a time, without holding the whole input. Throws CsvError. */
export async function* csvRecords(input: Readable): AsyncGenerator<CsvRecord> {
  const lines = new LineCounter();
  const parser = input.pipe(parse(optionsCounting(lines)));
  input.on('error', (err) => parser.destroy(err));
  try {
    for await (const record of parser as AsyncIterable<CsvRecord>) yield record;
  } catch (err) {
    throw lines.error(err);
  } finally {
    input.destroy();
  }
}

/** A whole CSV document with a header line, CRLF line ends (RFC 4180); a field is quoted when it holds a comma, quote,
 * line break, or leading/trailing space. */
export function toCsv(columns: string[], rows: Record<string, string | undefined>[]): string {
  return stringify(rows, { header: true, columns, record_delimiter: 'windows', quoted_match: /[\r\n]|^\s|\s$/ });
}
