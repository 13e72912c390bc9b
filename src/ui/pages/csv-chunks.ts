/**
 * Cuts a CSV file into chunks of whole records, each sent to POST /api/devices/import with the header line, so the
 * import shows progress. The server parses every field; this only finds where records end (a line break outside
 * quotes) and where each starts, so the server's line numbers can be mapped back to the file's own.
 */

export interface CsvChunk {
  /** Header line + the records, as they are in the file. */
  text: string;
  /** File line of the chunk's first record: the server calls it line 2. */
  firstLine: number;
  records: number;
}

interface RecordSpan {
  start: number;
  end: number;
  line: number;
}

function spans(text: string): RecordSpan[] {
  const out: RecordSpan[] = [];
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let startLine = 1;
  let quoted = false;
  for (let i = start; i <= text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (quoted && c === '\n') line++;
    else if (!quoted && (c === '\n' || c === '\r' || c === undefined)) {
      if (i > start) out.push({ start, end: i, line: startLine });
      if (c === '\r' && text[i + 1] === '\n') i++;
      line++;
      start = i + 1;
      startLine = line;
    }
  }
  return out;
}

/** The header and chunks of at most `size` records; null when the file has no header line. */
export function csvChunks(text: string, size: number): { header: string; chunks: CsvChunk[]; total: number } | null {
  const all = spans(text);
  const head = all.shift();
  if (!head) return null;
  const header = text.slice(head.start, head.end);
  const chunks: CsvChunk[] = [];
  for (let i = 0; i < all.length; i += size) {
    const part = all.slice(i, i + size);
    // The slice keeps blank lines between records, so line numbers inside the chunk follow the file's.
    chunks.push({ text: `${header}\n${text.slice(part[0].start, part[part.length - 1].end)}\n`, firstLine: part[0].line, records: part.length });
  }
  return { header, chunks, total: all.length };
}
