import { closeSync, openSync, readSync } from 'node:fs';
import { Tokenizer, TokenParser } from '@streamparser/json';
import { MeasurementError } from '../../errors';

// Reading dataset files. Synchronous and in chunks: the worker has nothing else to do while it
// reads its workload, the runner's timeout derivation is a synchronous callback, and a ShareGPT
// `.json` file (ShareGPT_V3 is ~670 MB) is larger than the longest string V8 can hold (512 MiB),
// so it cannot go through `readFileSync(…, 'utf8')` + `JSON.parse` at all.

const CHUNK_BYTES = 1 << 20;

/** A dataset problem the user fixes in their files: exit 2 from the CLI. */
export function datasetError(message: string, cause?: unknown): MeasurementError {
  return new MeasurementError(message, 'DATASET_INVALID', cause === undefined ? {} : { cause });
}

function openDataset(file: string): number {
  try {
    return openSync(file, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR')
      throw datasetError(`${file}: no such dataset file (dataset.path)`, error);
    if (code === 'EISDIR')
      throw datasetError(`${file}: is a directory; dataset.path names a file`, error);
    throw new MeasurementError(
      `dataset: cannot read ${file}: ${(error as Error).message}`,
      'DATASET',
      { cause: error },
    );
  }
}

/** Calls `each` with every chunk of the file, in order. */
function forEachChunk(file: string, each: (chunk: Buffer) => void): void {
  const fd = openDataset(file);
  try {
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      let read: number;
      try {
        read = readSync(fd, buffer, 0, CHUNK_BYTES, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EISDIR')
          throw datasetError(`${file}: is a directory; dataset.path names a file`, error);
        throw new MeasurementError(
          `dataset: cannot read ${file}: ${(error as Error).message}`,
          'DATASET',
          { cause: error },
        );
      }
      if (read === 0) return;
      each(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a JSON-lines file: `each(value, line)` for every non-blank line (1-based line numbers),
 * in order. A line that is not JSON is an error naming the file and the line.
 *
 * @example
 * readJsonLines('trace.jsonl', (row, line) => rows.push({ row, line }));
 */
export function readJsonLines(file: string, each: (value: unknown, line: number) => void): void {
  let line = 0;
  let pending: Buffer[] = [];
  const emit = (bytes: Buffer): void => {
    line++;
    let text = bytes.toString('utf8');
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw datasetError(
        `${file}:${line}: not valid JSON (${(error as Error).message}); expected one JSON object per line`,
        error,
      );
    }
    each(value, line);
  };
  forEachChunk(file, (chunk) => {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      if (pending.length > 0) {
        emit(Buffer.concat([...pending, piece]));
        pending = [];
      } else emit(piece);
      start = nl + 1;
    }
    // The rest of the chunk starts the next line: copied, since the chunk buffer is reused.
    if (start < chunk.length) pending.push(Buffer.from(chunk.subarray(start)));
  });
  if (pending.length > 0) emit(Buffer.concat(pending));
}

/**
 * Reads a file holding one JSON array, element by element (streamed, so its size is not bound by
 * V8's string limit): `each(value, index)` for every element, 0-based. A file that is not a JSON
 * array, or not valid JSON, is an error naming the file (and the line of a syntax error).
 *
 * @example
 * readJsonArray('sharegpt.json', (entry, index) => entries.push(entry));
 */
export function readJsonArray(file: string, each: (value: unknown, index: number) => void): void {
  // The tokenizer and the token parser wired by hand (what JSONParser does) to know the byte
  // offset of the token a syntax error is about.
  const tokenizer = new Tokenizer();
  const parser = new TokenParser({ paths: ['$.*'], keepStack: false });
  let at = 0;
  tokenizer.onToken = (token) => {
    at = token.offset;
    parser.write(token);
  };
  tokenizer.onEnd = () => {
    if (!parser.isEnded) parser.end();
  };
  parser.onValue = ({ value, key }) => each(value, key as number);
  let first = true;
  const fail = (error: unknown, what: string): never => {
    if (error instanceof MeasurementError) throw error;
    const message = (error as Error).message;
    const position = /absolute position "?(\d+)/.exec(message)?.[1];
    const line = lineAtByte(file, position === undefined ? at : Number(position));
    throw datasetError(`${file}${line === null ? '' : `:${line}`}: ${what} (${message})`, error);
  };
  forEachChunk(file, (chunk) => {
    if (first) {
      const text = chunk.toString('utf8', 0, Math.min(chunk.length, 64)).replace(/^\uFEFF/, '');
      const opening = text.trimStart()[0];
      if (opening !== undefined && opening !== '[')
        throw datasetError(
          `${file}: expected a JSON array of conversations (a ShareGPT .json file) and found ${opening === '{' ? 'an object' : `"${opening}"`} at the top; a file of one object per line is .jsonl`,
        );
      first = false;
    }
    try {
      tokenizer.write(chunk);
    } catch (error) {
      fail(error, 'not valid JSON');
    }
  });
  if (first)
    throw datasetError(`${file}: the file is empty; expected a JSON array of conversations`);
  try {
    tokenizer.end();
    if (!parser.isEnded) parser.end();
  } catch (error) {
    throw datasetError(
      `${file}: the JSON array is cut short (${(error as Error).message}); is the file complete?`,
      error,
    );
  }
}

/** The 1-based line of byte `offset` of a file, read again (only for an error message). */
function lineAtByte(file: string, offset: number): number | null {
  if (!Number.isFinite(offset) || offset < 0) return null;
  let line = 1;
  let seen = 0;
  try {
    forEachChunk(file, (chunk) => {
      const end = Math.min(chunk.length, offset - seen);
      for (let nl = chunk.indexOf(10); nl !== -1 && nl < end; nl = chunk.indexOf(10, nl + 1))
        line++;
      seen += chunk.length;
      if (seen >= offset) throw new RangeError('done');
    });
  } catch (error) {
    if (!(error instanceof RangeError)) return null;
  }
  return line;
}
