/**
 * Queries inside the bucket object (§6): creation, reading the next batch, and remove-by-query.
 * Time range and entry become index SQL; `when` runs per entry over index rows (labels live in
 * the index, so filtering never touches R2). A query's position is persisted after every batch —
 * per entry the last examined timestamp and the `when` evaluator's state — so it survives the
 * object being evicted. Multi-entry queries merge entries by (timestamp, entry name).
 */
import { type ErrorInfo, fail } from "../errors";
import {
  ConditionError,
  createEvaluator,
  type Evaluator,
  type EvaluatorState,
  type ParsedWhen,
  parseWhen,
} from "../query/condition";
import { selectEntries } from "../query/entry-patterns";
import { isMetaEntry } from "./bucket-store";
import type { EntryRef, Labels, RecordIndex, RecordRow } from "./record-index";

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
  /** Body bytes; the record that crosses the limit is still included (§1.8). */
  maxBytes: number;
  /** Estimated header bytes of the batch's metadata. */
  maxMetadataBytes: number;
  /** v2: end the batch rather than let two entries' time ranges interleave (see §5.2.5). */
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

interface QueryRow {
  id: number;
  kind: "entry" | "multi";
  entries: string;
  start_ts: number | null;
  stop_ts: number | null;
  continuous: number;
  only_metadata: number;
  strict: number;
  when_json: string | null;
  ttl_s: number;
  last_access_ms: number;
  cursors: string;
  cursor_version: number;
  finished: number;
  generation: string;
}

interface EntryCursor {
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
const MAX_CONTEXT_ROWS = 10_000;

/** Rows fetched from the index per entry per step of the merge: one chunk's worth. */
const MERGE_CHUNK_ROWS = 1024;
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
/** Largest timestamp we store (timestamps are kept ≤ 2^53 − 1). */
const MAX_TS = Number.MAX_SAFE_INTEGER;

export const queryNotFound = (id: number) =>
  fail(404, `Query ${id} not found and it might have expired. Check TTL in your query request.`);

function conditionFailure(error: unknown): { ok: false; error: ErrorInfo } {
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

/** The tombstone filter every query on a `$meta` entry gets (§4.9). */
function isTombstone(entry: string, labels: Labels): boolean {
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

/** Header bytes a batch spends per entry besides its name (v2 start-ts and label-name lines). */
const ENTRY_HEADER_BYTES = 64;

export class QueryEngine {
  constructor(
    private readonly sql: SqlStorage,
    private readonly index: RecordIndex,
  ) {}

  create(spec: QuerySpec, nowMs: number): { ok: true; id: number } | { ok: false; error: ErrorInfo } {
    const parsed = parseCondition(spec.when);
    if (parsed && "ok" in parsed) return parsed;
    if (!spec.continuous && spec.start !== null && spec.stop !== null && spec.start > spec.stop) {
      return fail(422, "Start time must be before stop time");
    }
    // Expired queries, and any left by an earlier incarnation of the bucket, free their slot
    // (and storage) before the open ones are counted.
    this.sweepExpired(nowMs);
    const generation = this.generation();
    this.sql.exec("DELETE FROM queries WHERE generation <> ?", generation);
    const open = this.sql.exec<{ open: number }>("SELECT count(*) AS open FROM queries").one().open;
    if (open >= MAX_OPEN_QUERIES) {
      return fail(
        429,
        `Too many open queries in this bucket (${MAX_OPEN_QUERIES}); wait until some expire (their TTL) and try again`,
      );
    }
    const last = this.sql.exec<{ last_query_id: number }>("SELECT last_query_id FROM bucket WHERE id = 1").one().last_query_id;
    // Strictly increasing per bucket, and in practice across buckets too (µs wall clock).
    const id = Math.max(last + 1, nowMs * 1000);
    this.sql.exec("UPDATE bucket SET last_query_id = ? WHERE id = 1", id);
    let start = spec.start;
    if (spec.continuous && start === null) start = this.oldestOf(spec);
    this.sql.exec(
      `INSERT INTO queries (id, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms,
         generation)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      spec.kind,
      JSON.stringify(spec.entries),
      start,
      spec.stop,
      spec.continuous ? 1 : 0,
      spec.onlyMetadata ? 1 : 0,
      spec.strict ? 1 : 0,
      spec.when === null || spec.when === undefined ? null : JSON.stringify(spec.when),
      spec.ttlSeconds,
      nowMs,
      generation,
    );
    return { ok: true, id };
  }

  /** Id of the bucket's current incarnation ('' while there is none). */
  private generation(): string {
    return this.sql.exec<{ generation: string }>("SELECT generation FROM bucket WHERE id = 1").toArray()[0]?.generation ?? "";
  }

  /** Whether a query is read through its own path. */
  private inScope(row: QueryRow, scope: QueryScope): boolean {
    if (row.kind !== scope.kind) return false;
    if (scope.kind === "multi") return true;
    const [entry] = JSON.parse(row.entries) as string[];
    return entry === scope.entry;
  }

  private oldestOf(spec: QuerySpec): number | null {
    const ids = this.resolve(spec.kind, spec.entries).map((entry) => entry.id);
    if (ids.length === 0) return null;
    return this.sql
      .exec<{ oldest: number | null }>(
        `SELECT min(oldest_record) AS oldest FROM entries WHERE id IN (${ids.map(() => "?").join(",")})`,
        ...ids,
      )
      .one().oldest;
  }

  /** The entries a query reads now, sorted by name (multi-entry queries resolve lazily). */
  private resolve(kind: "entry" | "multi", names: string[]): EntryRef[] {
    if (kind === "entry") {
      const entry = names[0] === undefined ? undefined : this.index.entry(names[0]);
      return entry ? [entry] : [];
    }
    const all = this.sql.exec<{ id: number; name: string }>("SELECT id, name FROM entries ORDER BY name").toArray();
    const selected = new Set(
      selectEntries(
        all.map((entry) => entry.name),
        names,
      ),
    );
    return all.filter((entry) => selected.has(entry.name));
  }

  /**
   * Loads a live query, refreshing its TTL; a query past its TTL is dropped (404). A query of
   * another scope or bucket incarnation is not found and stays untouched.
   */
  private live(id: number, nowMs: number, scope?: QueryScope): QueryRow | undefined {
    const row = this.sql.exec<QueryRow & Record<string, SqlStorageValue>>("SELECT * FROM queries WHERE id = ?", id).toArray()[0];
    if (!row) return undefined;
    if (row.generation !== this.generation() || (scope && !this.inScope(row, scope))) return undefined;
    if (nowMs - row.last_access_ms >= row.ttl_s * 1000) {
      this.sql.exec("DELETE FROM queries WHERE id = ?", id);
      return undefined;
    }
    this.sql.exec("UPDATE queries SET last_access_ms = ? WHERE id = ?", nowMs, id);
    return row;
  }

  /** Whether the query exists and which kind it is (the edge checks v1 vs /io usage). */
  kindOf(id: number, nowMs: number): QueryRow["kind"] | undefined {
    return this.live(id, nowMs)?.kind;
  }

  /**
   * Reads the next batch. A batch without records persists the scan's progress at once; one with
   * records returns the new position as a commit the edge applies once it holds the batch's bytes.
   * `withBody` false (HEAD or only_metadata) skips loading staged payloads.
   */
  next(
    id: number,
    scope: QueryScope,
    limits: BatchLimits,
    withBody: boolean,
    nowMs: number,
    payload: (row: RecordRow) => ArrayBuffer,
  ): { ok: true; batch: Batch; commit: CursorCommit | null } | { ok: false; error: ErrorInfo } {
    const query = this.live(id, nowMs, scope);
    if (!query) return queryNotFound(id);
    const onlyMetadata = query.only_metadata === 1;
    if (query.finished) {
      return { ok: true, batch: { records: [], last: true, empty: true, continuous: false, onlyMetadata }, commit: null };
    }
    const continuous = query.continuous === 1;
    const bodies = withBody && query.only_metadata === 0;
    const parsed = query.when_json === null ? null : parseWhen(JSON.parse(query.when_json));
    // A Map: entry names such as `__proto__` or `constructor` must never act as object keys.
    const cursors = new Map<string, EntryCursor>(Object.entries(JSON.parse(query.cursors) as Record<string, EntryCursor>));
    const lo = query.start_ts ?? 0;
    const hi = continuous ? MAX_TS : (query.stop_ts ?? MAX_TS);
    const selectLabels = parsed?.directives.selectLabels;
    const directives = parsed?.directives;
    limits = {
      ...limits,
      maxRecords: Math.min(Math.max(1, directives?.batchRecords ?? limits.maxRecords), MAX_BATCH_RECORDS),
      maxBytes: Math.min(directives?.batchSizeBytes ?? limits.maxBytes, MAX_BATCH_BYTES),
      maxMetadataBytes: Math.min(directives?.batchMetadataSizeBytes ?? limits.maxMetadataBytes, MAX_BATCH_METADATA_BYTES),
    };

    interface Lane {
      entry: EntryRef;
      /** Index rows fetched ahead; `rows[pos]` is the lane's head. */
      rows: RecordRow[];
      pos: number;
      exhausted: boolean;
      evaluator: Evaluator | null;
      cursor: EntryCursor;
    }
    const lanes: Lane[] = this.resolve(query.kind, JSON.parse(query.entries)).map((entry) => {
      const cursor = cursors.get(entry.name) ?? { after: null };
      return {
        entry,
        rows: [],
        pos: 0,
        exhausted: false,
        cursor,
        evaluator: parsed ? createEvaluator(parsed, { strict: query.strict === 1, state: cursor.state }) : null,
      };
    });
    const refill = (lane: Lane) => {
      if (lane.pos < lane.rows.length || lane.exhausted) return;
      if (lane.evaluator?.done) {
        lane.exhausted = true;
        return;
      }
      const from = lane.cursor.after === null ? lo : Math.max(lo, lane.cursor.after + 1);
      // Whole chunks at a time: a chunk is decoded whole anyway, and a selective `when` skips many.
      lane.rows = this.index.readyRange(lane.entry.id, from, hi, MERGE_CHUNK_ROWS);
      lane.pos = 0;
      if (lane.rows.length === 0) lane.exhausted = true;
    };

    const records: BatchRecord[] = [];
    const inBatch = new Set<string>();
    let previousEntry: string | undefined;
    let bytes = 0;
    let metadata = 0;
    let scanned = 0;
    let full = false;
    const blockSizes = new Map<number, number | null>();
    const blockBytes = (blockId: number) => {
      if (!blockSizes.has(blockId)) blockSizes.set(blockId, this.index.block(blockId)?.object_bytes ?? null);
      return blockSizes.get(blockId) ?? null;
    };
    const emit = (name: string, record: RecordRow, recordLabels: Labels) => {
      const shown = selectLabels
        ? Object.fromEntries(Object.entries(recordLabels).filter(([key]) => selectLabels.includes(key)))
        : recordLabels;
      records.push({
        entry: name,
        ts: record.ts,
        size: record.size,
        contentType: record.content_type,
        labels: shown,
        body: bodies ? bodyOf(record, payload, blockBytes) : { kind: "none" },
      });
      inBatch.add(name);
      previousEntry = name;
      if (bodies) bytes += record.size;
      metadata += metadataBytes({ ts: record.ts, size: record.size, contentType: record.content_type, labels: shown });
    };
    // The first record always goes out, whatever the size limits (#batch_size: 0 included).
    const limitReached = () =>
      records.length >= limits.maxRecords ||
      (records.length > 0 && (bytes >= limits.maxBytes || metadata >= limits.maxMetadataBytes));
    // First the records a context burst could not fit into the previous batch.
    for (const lane of lanes) {
      const carried = lane.cursor.carry ?? [];
      lane.cursor.carry = undefined;
      for (const ts of carried) {
        const row = this.index.record(lane.entry.id, ts);
        if (row && row.state === "ready") emit(lane.entry.name, row, row.labels);
      }
    }
    try {
      for (;;) {
        if (limitReached()) {
          full = true;
          break;
        }
        let best: Lane | undefined;
        for (const lane of lanes) {
          refill(lane);
          const head = lane.rows[lane.pos];
          if (!head) continue;
          const bestHead = best?.rows[best.pos];
          if (!bestHead || head.ts < bestHead.ts || (head.ts === bestHead.ts && lane.entry.name < best!.entry.name)) best = lane;
        }
        if (!best) break;
        const name = best.entry.name;
        if (limits.contiguousEntries && records.length > 0 && name !== previousEntry && inBatch.has(name)) {
          full = true;
          break;
        }
        const row = best.rows[best.pos++]!;
        const cursor = best.cursor;
        cursor.after = row.ts;
        scanned++;
        const labels: Labels = row.labels;
        const tombstone = isTombstone(name, labels);
        const selected = !tombstone && (best.evaluator === null || best.evaluator.evaluate({ timestamp: row.ts, labels }));
        if (selected) {
          // #ctx_before: the unsent rows just before this match (within the count or time span).
          const before = directives?.ctxBefore;
          for (const ts of cursor.recent ?? []) {
            if (before?.kind === "duration" && ts < row.ts - before.us) continue;
            const earlier = this.index.record(best.entry.id, ts);
            if (earlier && earlier.state === "ready") emit(name, earlier, earlier.labels);
          }
          cursor.recent = undefined;
          emit(name, row, labels);
          const after = directives?.ctxAfter;
          if (after?.kind === "records") cursor.afterLeft = after.count;
          if (after?.kind === "duration") cursor.afterUntil = row.ts + after.us;
        } else if (!tombstone && ((cursor.afterLeft ?? 0) > 0 || row.ts <= (cursor.afterUntil ?? -1))) {
          // #ctx_after: records following a match are sent as context.
          if (cursor.afterLeft !== undefined) cursor.afterLeft--;
          emit(name, row, labels);
        } else if (!tombstone && directives?.ctxBefore) {
          const before = directives.ctxBefore;
          const recent = [...(cursor.recent ?? []), row.ts];
          cursor.recent =
            before.kind === "records"
              ? recent.slice(Math.max(0, recent.length - Math.min(before.count, MAX_CONTEXT_ROWS)))
              : recent.filter((ts) => ts >= row.ts - before.us).slice(-MAX_CONTEXT_ROWS);
        }
        if (limitReached()) {
          full = true;
          break;
        }
        if (scanned >= MAX_SCANNED_ROWS_PER_CALL) {
          full = true;
          break;
        }
      }
    } catch (error) {
      return conditionFailure(error);
    }

    // A context burst may overshoot the record limit, and the record that crossed the header budget
    // overshoots it: the excess goes out first next time. The first record always goes out.
    const keep = Math.min(limits.maxRecords, recordsWithinHeaderBudget(records, limits.maxMetadataBytes));
    const excess = records.length > keep ? records.splice(keep) : [];
    for (const record of excess) {
      const lane = lanes.find((candidate) => candidate.entry.name === record.entry);
      if (lane) lane.cursor.carry = [...(lane.cursor.carry ?? []), record.ts];
    }
    // Is anything left after this batch? Peek one row per lane that still may have some.
    const remaining =
      excess.length > 0 ||
      (full &&
        lanes.some((lane) => {
          refill(lane);
          return lane.pos < lane.rows.length;
        }));
    const last = !remaining;
    for (const lane of lanes) {
      cursors.set(lane.entry.name, { ...lane.cursor, ...(lane.evaluator ? { state: lane.evaluator.snapshot() } : {}) });
    }
    const finished = last && !continuous;
    const batch: Batch = { records, last, empty: records.length === 0, continuous, onlyMetadata };
    const commit: CursorCommit = {
      id,
      base: query.cursor_version,
      cursors: JSON.stringify(Object.fromEntries(cursors)),
      finished,
    };
    if (records.length > 0) return { ok: true, batch, commit };
    // Nothing to lose: keep the scan's progress now (a scan that moved nothing keeps the version,
    // so a concurrent read of the same query is not sent back to start).
    if (commit.cursors !== query.cursors || finished) this.commit(commit);
    return { ok: true, batch, commit: null };
  }

  /** Applies a batch's cursor position; false when the query moved on or is gone meanwhile. */
  commit(commit: CursorCommit): boolean {
    const updated = this.sql.exec(
      `UPDATE queries SET cursors = ?, finished = ?, cursor_version = cursor_version + 1
         WHERE id = ? AND cursor_version = ? AND finished = 0
         AND generation = (SELECT generation FROM bucket WHERE id = 1)`,
      commit.cursors,
      commit.finished ? 1 : 0,
      commit.id,
      commit.base,
    );
    return updated.rowsWritten > 0;
  }

  /** Drops queries whose TTL has passed (the alarm calls this; reads also check lazily). */
  sweepExpired(nowMs: number): void {
    this.sql.exec("DELETE FROM queries WHERE last_access_ms + ttl_s * 1000 <= ?", nowMs);
  }

  /** When the next open query expires, or null without any (the alarm frees their storage). */
  nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>("SELECT min(last_access_ms + ttl_s * 1000) AS at FROM queries").one().at;
  }

  /**
   * REMOVE query: deletes matching records (never from `$meta` entries) and returns how many.
   * `remove` performs the index removal of one record.
   */
  remove(
    spec: QuerySpec,
    removePage: (rows: RecordRow[]) => void,
  ): { ok: true; removed: number } | { ok: false; error: ErrorInfo } {
    const parsed = parseCondition(spec.when);
    if (parsed && "ok" in parsed) return parsed;
    if (spec.start !== null && spec.stop !== null && spec.start > spec.stop)
      return fail(422, "Start time must be before stop time");
    const lo = spec.start ?? 0;
    const hi = spec.stop ?? MAX_TS;
    let removed = 0;
    try {
      for (const entry of this.resolve(spec.kind, spec.entries)) {
        if (isMetaEntry(entry.name)) continue;
        const evaluator = parsed ? createEvaluator(parsed, { strict: spec.strict }) : null;
        let from = lo;
        for (;;) {
          const rows = this.index.readyRange(entry.id, from, hi, 1000);
          if (rows.length === 0 || evaluator?.done) break;
          const page: RecordRow[] = [];
          for (const row of rows) {
            from = row.ts + 1;
            if (evaluator && !evaluator.evaluate({ timestamp: row.ts, labels: row.labels })) continue;
            page.push(row);
          }
          // Removed per page, so a page of the index is rewritten once, whatever it matched.
          removePage(page);
          removed += page.length;
        }
      }
    } catch (error) {
      return conditionFailure(error);
    }
    return { ok: true, removed };
  }
}

function bodyOf(
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
