/**
 * Queries inside the bucket object: creation, reading the next batch, and remove-by-query.
 * Time range and entry become index SQL; `when` runs per entry over index rows (labels live in
 * the index, so filtering never touches R2). A query's position is persisted after every batch —
 * per entry the last examined timestamp and the `when` evaluator's state — so it survives the
 * object being evicted. Multi-entry queries merge entries by (timestamp, entry name).
 */
import { type ErrorInfo, fail } from "../errors";
import { isMetaEntry } from "../model/entry-names";
import type { Labels } from "../model/records";
import { createEvaluator, type Evaluator, parseWhen } from "../query/condition";
import { selectEntries } from "../query/entry-patterns";
import {
  type Batch,
  type BatchLimits,
  type BatchRecord,
  bodyOf,
  type CursorCommit,
  conditionFailure,
  type EntryCursor,
  isTombstone,
  MAX_BATCH_BYTES,
  MAX_BATCH_METADATA_BYTES,
  MAX_BATCH_RECORDS,
  MAX_CONTEXT_ROWS,
  MAX_OPEN_QUERIES,
  MAX_SCANNED_ROWS_PER_CALL,
  MAX_TS,
  MERGE_CHUNK_ROWS,
  metadataBytes,
  parseCondition,
  type QueryScope,
  type QuerySpec,
  queryNotFound,
  recordsWithinHeaderBudget,
} from "./query-batch";
import type { RecordIndex, RecordRow } from "./record-index";
import type { BucketTables } from "./tables";
import type { EntryRef } from "./tables/entries";
import type { QueryRow } from "./tables/queries";

export {
  type Batch,
  type BatchLimits,
  type BatchRecord,
  type CursorCommit,
  MAX_BATCH_BYTES,
  MAX_BATCH_METADATA_BYTES,
  MAX_BATCH_RECORDS,
  MAX_OPEN_QUERIES,
  MAX_SCANNED_ROWS_PER_CALL,
  metadataBytes,
  parseCondition,
  type QueryBody,
  type QueryScope,
  type QuerySpec,
  queryNotFound,
  recordsWithinHeaderBudget,
} from "./query-batch";

export class QueryEngine {
  constructor(
    private readonly tables: BucketTables,
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
    const generation = this.tables.bucket.generation();
    this.tables.queries.deleteOtherGenerations(generation);
    // A finished query only answers 204 until its TTL: at the cap it gives its slot to a new one,
    // so clients running many short queries are not refused while finished ones linger.
    while (this.tables.queries.count() >= MAX_OPEN_QUERIES && this.tables.queries.dropOldestFinished()) {}
    if (this.tables.queries.count() >= MAX_OPEN_QUERIES) {
      return fail(
        429,
        `Too many open queries in this bucket (${MAX_OPEN_QUERIES}); wait until some expire (their TTL) and try again`,
      );
    }
    const last = this.tables.bucket.lastQueryId();
    // Strictly increasing per bucket, and in practice across buckets too (µs wall clock).
    const id = Math.max(last + 1, nowMs * 1000);
    this.tables.bucket.setLastQueryId(id);
    let start = spec.start;
    if (spec.continuous && start === null) start = this.oldestOf(spec);
    this.tables.queries.insert({
      id,
      kind: spec.kind,
      entries: JSON.stringify(spec.entries),
      start_ts: start,
      stop_ts: spec.stop,
      continuous: spec.continuous ? 1 : 0,
      only_metadata: spec.onlyMetadata ? 1 : 0,
      strict: spec.strict ? 1 : 0,
      when_json: spec.when === null || spec.when === undefined ? null : JSON.stringify(spec.when),
      ttl_s: spec.ttlSeconds,
      last_access_ms: nowMs,
      generation,
    });
    return { ok: true, id };
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
    return this.tables.entries.oldestOf(ids);
  }

  /** The entries a query reads now, sorted by name (multi-entry queries resolve lazily). */
  private resolve(kind: "entry" | "multi", names: string[]): EntryRef[] {
    if (kind === "entry") {
      const entry = names[0] === undefined ? undefined : this.index.entry(names[0]);
      return entry ? [entry] : [];
    }
    const all = this.tables.entries.refs();
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
    const row = this.tables.queries.get(id);
    if (!row) return undefined;
    if (row.generation !== this.tables.bucket.generation() || (scope && !this.inScope(row, scope))) return undefined;
    if (nowMs - row.last_access_ms >= row.ttl_s * 1000) {
      this.tables.queries.delete(id);
      return undefined;
    }
    this.tables.queries.touch(id, nowMs);
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
    return this.tables.queries.advance(commit.id, commit.base, commit.cursors, commit.finished, this.tables.bucket.generation());
  }

  /** Drops queries whose TTL has passed (the alarm calls this; reads also check lazily). */
  sweepExpired(nowMs: number): void {
    this.tables.queries.deleteExpired(nowMs);
  }

  /** When the next open query expires, or null without any (the alarm frees their storage). */
  nextExpiry(): number | null {
    return this.tables.queries.nextExpiry();
  }

  /**
   * One bounded slice of a removal: scans at most `limit` records of the spec's entries (by name,
   * then time) from `cursor`, hands the matching ones to `removePage`, and returns where the next
   * slice starts (null when the spec is exhausted), so a dense range never becomes one long pass.
   * `states` carries each entry's `when` state (`$limit`, `$each_n`, …) from slice to slice and
   * is updated in place, so a sliced removal selects exactly what one unbounded removal would.
   */
  removeSlice(
    spec: QuerySpec,
    removePage: (rows: RecordRow[]) => void,
    cursor: RemoveCursor | null,
    limit: number,
    states?: Map<string, unknown>,
  ): { ok: true; removed: number; next: RemoveCursor | null } | { ok: false; error: ErrorInfo } {
    const parsed = parseCondition(spec.when);
    if (parsed && "ok" in parsed) return parsed;
    const lo = spec.start ?? 0;
    const hi = spec.stop ?? MAX_TS;
    const stateful = parsed !== null && parsed.slotKinds.length > 0;
    let removed = 0;
    let scanned = 0;
    const entries = this.resolve(spec.kind, spec.entries)
      .filter((entry) => !isMetaEntry(entry.name) && (cursor === null || entry.name >= cursor.entry))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    try {
      for (const entry of entries) {
        const state = stateful ? states?.get(entry.name) : undefined;
        const evaluator = parsed ? createEvaluator(parsed, { strict: spec.strict, state }) : null;
        const keep = () => {
          if (stateful && evaluator) states?.set(entry.name, evaluator.snapshot());
        };
        let from = cursor !== null && entry.name === cursor.entry ? Math.max(lo, cursor.ts) : lo;
        for (;;) {
          if (scanned >= limit) {
            keep();
            return { ok: true, removed, next: { entry: entry.name, ts: from } };
          }
          const rows = this.index.readyRange(entry.id, from, hi, Math.min(1000, limit - scanned));
          if (rows.length === 0 || evaluator?.done) break;
          const page: RecordRow[] = [];
          for (const row of rows) {
            from = row.ts + 1;
            scanned++;
            if (evaluator && !evaluator.evaluate({ timestamp: row.ts, labels: row.labels })) continue;
            page.push(row);
          }
          removePage(page);
          removed += page.length;
        }
        keep();
      }
    } catch (error) {
      return conditionFailure(error);
    }
    return { ok: true, removed, next: null };
  }

  /** The first ready record at or after `from` and before `stop` in the spec's entries, if any. */
  firstRecordAt(spec: QuerySpec, from: number, stop: number): number | null {
    let first: number | null = null;
    for (const entry of this.resolve(spec.kind, spec.entries)) {
      if (isMetaEntry(entry.name)) continue;
      const ts: number | undefined = this.index.readyRange(entry.id, from, first ?? stop, 1)[0]?.ts;
      if (ts !== undefined) first = ts;
    }
    return first;
  }

  /**
   * REMOVE query: deletes matching records (never from `$meta` entries) and returns how many, as
   * one unbounded slice. `removePage` performs the index removal of one page of records.
   */
  remove(
    spec: QuerySpec,
    removePage: (rows: RecordRow[]) => void,
  ): { ok: true; removed: number } | { ok: false; error: ErrorInfo } {
    if (spec.start !== null && spec.stop !== null && spec.start > spec.stop)
      return fail(422, "Start time must be before stop time");
    const slice = this.removeSlice(spec, removePage, null, Number.POSITIVE_INFINITY);
    return slice.ok ? { ok: true, removed: slice.removed } : slice;
  }
}

/** Where a sliced removal continues: the entry (by name) and the first timestamp not yet scanned. */
export interface RemoveCursor {
  entry: string;
  ts: number;
}
