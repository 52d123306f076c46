/**
 * The values a query works with: its spec, scope and limits, the batches it returns and their
 * cursor commits, and the pure helpers the engine and the edge share (condition parsing, header
 * budgets, body locations).
 */
import { type ErrorInfo, fail } from "../errors";
import { isMetaEntry } from "../model/entry-names";
import type { Labels } from "../model/records";
import { ConditionError, type EvaluatorState, type ParsedWhen, parseWhen } from "../query/condition";
import type { RecordRow } from "./record-index";

export interface QuerySpec {
  /** 'entry': one named entry (v1 endpoints); 'multi': entry patterns (/io). */
  kind: "entry" | "multi";
  entries: string[];
  start: number | null;
  stop: number | null;
  ttlSeconds: number;
  continuous: boolean;
  onlyMetadata: boolean;
  strict: boolean;
  when: unknown;
}

/**
 * The read path a query id arrives on: an entry query answers only its own entry's `?q=` and
 * `…/batch` reads, a v2 query only `/io/:bucket/read`; any other path finds no such query.
 */
export type QueryScope = { kind: "entry"; entry: string } | { kind: "multi" };

export interface BatchLimits {
  maxRecords: number;
  /** Body bytes; the record that crosses the limit is still included. */
  maxBytes: number;
  /** Estimated header bytes of the batch's metadata. */
  maxMetadataBytes: number;
  /** v2: end the batch rather than let two entries' time ranges interleave. */
  contiguousEntries: boolean;
}

/**
 * Where a batch finds a record's bytes: inline (staged), its own R2 object (`whole`), or a range
 * of a sealed block object of `objectBytes` bytes.
 */
export type QueryBody =
  | { kind: "none" }
  | { kind: "inline"; bytes: ArrayBuffer }
  | { kind: "r2"; key: string; offset: number; whole: boolean; objectBytes: number | null };

export interface BatchRecord {
  entry: string;
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
  body: QueryBody;
}

export interface Batch {
  records: BatchRecord[];
  /** No record is left after this batch (for continuous queries: none right now). */
  last: boolean;
  /**
   * No records in this batch. With `last` the query has nothing (more) to send: 204. Without it
   * the scan budget of one call ran out first: the caller asks again.
   */
  empty: boolean;
  continuous: boolean;
  /** The query reads metadata only: records carry their sizes but no bodies. */
  onlyMetadata: boolean;
}

/**
 * The cursor position after a batch with records, persisted only once the edge has the batch's
 * bytes in hand (`commit`), so a failed read sends the same records again. `base` is the version
 * of the stored position the batch was read from: a concurrent read of the same query that
 * committed first makes this commit fail instead of skipping or repeating records. A counter, not
 * the position itself, so the statement stays small however many entries the query reads.
 */
export interface CursorCommit {
  id: number;
  base: number;
  cursors: string;
  finished: boolean;
}

export interface EntryCursor {
  after: number | null;
  state?: EvaluatorState;
  /** #ctx_before: timestamps of examined, unsent rows since the last sent one (newest last). */
  recent?: number[];
  /** #ctx_after: records still to send after the last match (count form). */
  afterLeft?: number;
  /** #ctx_after: send records up to this timestamp after the last match (duration form). */
  afterUntil?: number;
  /** Records already selected that did not fit the previous batch (a context burst); sent first. */
  carry?: number[];
}

/** #ctx_before in duration form keeps at most this many candidate rows per entry. */
export const MAX_CONTEXT_ROWS = 10_000;

/** Rows fetched from the index per entry per step of the merge: one chunk's worth. */
export const MERGE_CHUNK_ROWS = 1024;
/**
 * Index rows one call may examine before it returns what it has (a selective `when`). The object
 * runs other requests only between calls, so this bounds how long a scan holds the bucket; the
 * edge calls again until it has records or the query is done.
 */
export const MAX_SCANNED_ROWS_PER_CALL = 5_000;
/** Caps no directive can raise: staged payloads travel inline in one RPC reply (≤ 32 MiB). */
export const MAX_BATCH_RECORDS = 1000;
export const MAX_BATCH_BYTES = 16_000_000;
/**
 * Header budget no directive or setting can raise: batch metadata travels in response headers, and
 * Node's default parser (reduct-js) refuses a header section over 16 KiB. The rest is left for the
 * fixed headers (status line, content type and length, x-reduct-last, CORS, API version).
 */
export const MAX_BATCH_METADATA_BYTES = 14 * 1024;
/** Open (not yet expired) queries one bucket keeps; each holds its condition and cursors. */
export const MAX_OPEN_QUERIES = 1000;
/** Header bytes a batch spends per entry besides its name (v2 start-ts and label-name lines). */
const ENTRY_HEADER_BYTES = 64;
/** Largest timestamp we store (timestamps are kept ≤ 2^53 − 1). */
export const MAX_TS = Number.MAX_SAFE_INTEGER;

export const queryNotFound = (id: number) =>
  fail(404, `Query ${id} not found and it might have expired. Check TTL in your query request.`);

export function conditionFailure(error: unknown): { ok: false; error: ErrorInfo } {
  if (error instanceof ConditionError) {
    const status = error.status === 404 ? 404 : error.status === 400 ? 400 : 422;
    return fail(status, error.message);
  }
  throw error;
}

/** Parses `when` at creation, so a malformed condition is a 422 before any id is handed out. */
export function parseCondition(when: unknown): ParsedWhen | null | { ok: false; error: ErrorInfo } {
  if (when === null || when === undefined) return null;
  try {
    return parseWhen(when);
  } catch (error) {
    return conditionFailure(error);
  }
}

/** The tombstone filter every query on a `$meta` entry gets. */
export function isTombstone(entry: string, labels: Labels): boolean {
  return isMetaEntry(entry) && labels.remove === "true";
}

const V2_KEPT_NAME_CHAR = /[!#$&'*+\-.^_`|~0-9A-Za-z]/;
const utf8 = new TextEncoder();

/** Bytes of a name as v2's `x-reduct-labels` sends it: `%` and non-token bytes as `%XX`. */
function encodedNameBytes(name: string): number {
  let bytes = 0;
  for (const char of name) bytes += V2_KEPT_NAME_CHAR.test(char) ? 1 : 3 * utf8.encode(char).length;
  return bytes;
}

/**
 * Header bytes one record takes in a batch response, at most, in either protocol: its line (name,
 * length, type) and per label the name as v2 encodes it, the value, quotes and separators, and a
 * label index of up to six digits.
 */
export function metadataBytes(record: { ts: number; size: number; contentType: string; labels: Labels }): number {
  let bytes = 32 + String(record.ts).length + String(record.size).length + record.contentType.length;
  for (const [name, value] of Object.entries(record.labels)) bytes += encodedNameBytes(name) + value.length + 12;
  return bytes;
}

/**
 * How many of `records` (at least one) fit `budget` bytes of response headers, counting each
 * entry's name once as a batch header lists it (percent-encoded, with its per-entry headers).
 */
export function recordsWithinHeaderBudget(records: readonly BatchRecord[], budget: number): number {
  const entries = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    let next = metadataBytes(record);
    if (!entries.has(record.entry)) next += encodeURIComponent(record.entry).length + ENTRY_HEADER_BYTES;
    if (i > 0 && bytes + next > budget) return i;
    entries.add(record.entry);
    bytes += next;
  }
  return records.length;
}

export function bodyOf(
  row: RecordRow,
  payload: (row: RecordRow) => ArrayBuffer,
  blockBytes: (blockId: number) => number | null,
): QueryBody {
  if (row.size === 0) return { kind: "none" };
  if (row.location === "staged") return { kind: "inline", bytes: payload(row) };
  const whole = row.location === "object";
  return {
    kind: "r2",
    key: row.object_key ?? "",
    offset: row.object_offset ?? 0,
    whole,
    objectBytes: whole ? row.size : blockBytes(row.block_id),
  };
}
