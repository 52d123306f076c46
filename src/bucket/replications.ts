/**
 * The source side of replications in one bucket object: the set D1 hands over, the log of matching
 * writes (appended inside the write's own transaction, so an acknowledged write is never missed),
 * and the status the edge shows. The sender is duties/replication-send.ts.
 */
import { isMetaEntry } from "../model/entry-names";
import type { Labels } from "../model/records";
import type { ReplicationErrors, ReplicationSettings, ReplicationSpec, ReplicationStatus } from "../model/replications";
import { createEvaluator, type Evaluator, type ParsedWhen, parseWhen } from "../query/condition";
import { selectEntries } from "../query/entry-patterns";
import { SYSTEM_BUCKET } from "../system/events";
import type { BucketTables } from "./tables";
import type { LogKind } from "./tables/replication-log";
import type { ReplicationRow } from "./tables/replications";

/** Diagnostics status under which records dropped from a full log are counted (ReductStore's "unknown"). */
export const LOG_FULL_STATUS = "-1";

// ---- diagnostics: per-minute frames of the last hour -------------------------------------------

interface MinuteFrame {
  minute: number;
  ok: number;
  errored: number;
  errors: ReplicationErrors;
}

const MINUTE_MS = 60_000;
const FRAMES = 60;

function liveFrames(json: string, nowMs: number): MinuteFrame[] {
  const oldest = Math.floor(nowMs / MINUTE_MS) - FRAMES + 1;
  let frames: MinuteFrame[] = [];
  try {
    frames = JSON.parse(json) as MinuteFrame[];
  } catch {
    frames = [];
  }
  return Array.isArray(frames) ? frames.filter((frame) => frame.minute >= oldest) : [];
}

/** Adds outcomes to the current minute; returns the new JSON. */
export function countOutcomes(
  json: string,
  nowMs: number,
  ok: number,
  errors: readonly { status: string; count: number; message: string }[],
): string {
  const frames = liveFrames(json, nowMs);
  const minute = Math.floor(nowMs / MINUTE_MS);
  let frame = frames.find((candidate) => candidate.minute === minute);
  if (!frame) {
    frame = { minute, ok: 0, errored: 0, errors: {} };
    frames.push(frame);
  }
  frame.ok += ok;
  for (const error of errors) {
    if (error.count <= 0) continue;
    frame.errored += error.count;
    const slot = frame.errors[error.status] ?? { count: 0, last_message: "" };
    slot.count += error.count;
    slot.last_message = error.message;
    frame.errors[error.status] = slot;
  }
  return JSON.stringify(frames);
}

/** Sums of the last hour (plain sums: ReductStore extrapolates a partly filled hour, we do not). */
export function hourly(json: string, nowMs: number): ReplicationStatus["diagnostics"]["hourly"] {
  const sum = { ok: 0, errored: 0, errors: {} as ReplicationErrors };
  for (const frame of liveFrames(json, nowMs).sort((a, b) => a.minute - b.minute)) {
    sum.ok += frame.ok;
    sum.errored += frame.errored;
    for (const [status, error] of Object.entries(frame.errors)) {
      const slot = sum.errors[status] ?? { count: 0, last_message: "" };
      slot.count += error.count;
      slot.last_message = error.last_message;
      sum.errors[status] = slot;
    }
  }
  return sum;
}

// ---- which writes a replication logs -------------------------------------------------------

/**
 * Entry filter as ReductStore's transaction filter applies it: no patterns is every entry; a
 * `$meta` entry goes with its parent (and skips `when`, which its labels are not data for).
 */
export function entryReplicated(patterns: readonly string[], entry: string): boolean {
  if (patterns.length === 0) return true;
  if (isMetaEntry(entry)) {
    const parent = entry.slice(0, entry.lastIndexOf("/"));
    return selectEntries([entry], patterns).length > 0 || (parent !== "" && selectEntries([parent], patterns).length > 0);
  }
  return selectEntries([entry], patterns).length > 0;
}

interface Compiled {
  settings: ReplicationSettings;
  /** null: no `when`, or one that does not parse (ReductStore then replicates without it). */
  when: ParsedWhen | null;
}

function compile(json: string): Compiled {
  const settings = JSON.parse(json) as ReplicationSettings;
  let when: ParsedWhen | null = null;
  if (settings.when !== undefined && settings.when !== null) {
    try {
      when = parseWhen(settings.when);
    } catch (error) {
      console.warn("replication `when` does not parse; replicating without it:", error);
    }
  }
  return { settings, when };
}

interface Pending {
  row: ReplicationRow;
  compiled: Compiled;
  evaluator: Evaluator | null;
  rows: { entry: string; ts: number; kind: LogKind }[];
}

/**
 * The log rows of one write transaction: `logged` is called for every acknowledged write or label
 * update, `finish` (still inside the transaction) appends them, updates counters and trims a full
 * log. A rolled-back transaction never calls `finish`, so it logs nothing.
 */
export class ReplicationJournal {
  private readonly pending: Pending[];

  constructor(
    private readonly tables: BucketTables,
    replications: { row: ReplicationRow; compiled: Compiled }[],
    private readonly cap: number,
    private readonly nowMs: number,
  ) {
    this.pending = replications.map(({ row, compiled }) => ({ row, compiled, evaluator: null, rows: [] }));
  }

  logged(entry: string, ts: number, labels: Labels, kind: LogKind): void {
    for (const replication of this.pending) {
      if (!entryReplicated(replication.compiled.settings.entries, entry)) continue;
      if (!isMetaEntry(entry) && !this.selects(replication, ts, labels)) continue;
      replication.rows.push({ entry, ts, kind });
    }
  }

  finish(): void {
    for (const replication of this.pending) {
      const name = replication.row.name;
      const { replicationLog, replications } = this.tables;
      for (const row of replication.rows) replicationLog.append(name, row.entry, row.ts, row.kind, this.nowMs);
      if (replication.evaluator) {
        const state = JSON.stringify(replication.evaluator.snapshot());
        if (state !== replication.row.when_state) replications.saveWhenState(name, state);
      }
      if (replication.rows.length === 0) continue;
      const count = replication.row.log_count + replication.rows.length;
      const excess = count - this.cap;
      const dropped = excess > 0 ? replicationLog.dropOldest(name, excess) : 0;
      replications.addToLog(name, replication.rows.length - dropped);
      if (dropped > 0) {
        const message = `Replication log is full (${this.cap} records): the ${dropped} oldest were dropped`;
        const diagnostics = countOutcomes(replication.row.diagnostics, this.nowMs, 0, [
          { status: LOG_FULL_STATUS, count: dropped, message },
        ]);
        replications.saveDiagnostics(name, diagnostics);
      }
      replication.rows = [];
    }
  }

  /** `when` on the record's labels; an evaluation error does not select the record (ReductStore). */
  private selects(replication: Pending, ts: number, labels: Labels): boolean {
    const { when } = replication.compiled;
    if (!when) return true;
    if (!replication.evaluator) {
      const state = replication.row.when_state ? (JSON.parse(replication.row.when_state) as unknown) : undefined;
      try {
        replication.evaluator = createEvaluator(when, { strict: false, state });
      } catch {
        replication.evaluator = createEvaluator(when, { strict: false });
      }
    }
    if (replication.evaluator.done) return false;
    try {
      return replication.evaluator.evaluate({ timestamp: ts, labels });
    } catch {
      return false;
    }
  }
}

export interface ReplicationsDeps {
  tables: BucketTables;
  storage: DurableObjectStorage;
  logSize: () => number;
  now: () => number;
}

const targetOf = (settings: ReplicationSettings) =>
  JSON.stringify([settings.dst_host, settings.dst_bucket, settings.dst_token ?? ""]);

export class Replications {
  /** Compiled settings by their JSON: parsing `when` once, not per write. */
  private readonly compiled = new Map<string, Compiled>();
  /** The replications table's generation at which no live replication was found, if any. */
  private noneLiveAt: number | null = null;

  constructor(private readonly deps: ReplicationsDeps) {}

  /** The journal of a write transaction, or undefined when nothing here is replicated. */
  journal(bucketName: string, nowMs: number): ReplicationJournal | undefined {
    if (bucketName === SYSTEM_BUCKET) return undefined;
    const table = this.deps.tables.replications;
    // Most buckets replicate nothing: that is remembered until the set changes, so a write does
    // not read the table. With replications the rows are read each time (their counters change).
    const generation = table.setGeneration();
    if (this.noneLiveAt === generation) return undefined;
    const live: { row: ReplicationRow; compiled: Compiled }[] = [];
    for (const row of table.all()) {
      const compiled = this.compiledOf(row.settings);
      if (compiled.settings.mode !== "disabled") live.push({ row, compiled });
    }
    this.noneLiveAt = live.length === 0 ? generation : null;
    return live.length === 0 ? undefined : new ReplicationJournal(this.deps.tables, live, this.deps.logSize(), nowMs);
  }

  /** The replications D1 holds with this bucket as source: new ones start, missing ones go with their logs. */
  /**
   * An entry renamed at the source (in the rename's transaction): what it logged and did not send
   * yet goes under the new name, whatever the filters say of it now (it matched when written).
   */
  entryRenamed(from: string, to: string): void {
    this.deps.tables.replicationLog.renameEntries(from, to);
  }

  set(specs: readonly ReplicationSpec[]): void {
    const { tables, storage } = this.deps;
    storage.transactionSync(() => {
      const wanted = new Map(specs.map((spec) => [spec.name, spec]));
      for (const row of tables.replications.all()) {
        if (wanted.has(row.name)) continue;
        tables.replicationLog.removeReplication(row.name);
        tables.replications.remove(row.name);
      }
      for (const spec of specs) {
        const json = JSON.stringify(spec.settings);
        const existing = tables.replications.get(spec.name);
        if (existing?.settings === json) continue;
        const before = existing ? this.compiledOf(existing.settings).settings : undefined;
        tables.replications.upsert(spec.name, json, before !== undefined && targetOf(before) !== targetOf(spec.settings));
        if (before && JSON.stringify(before.when ?? null) !== JSON.stringify(spec.settings.when ?? null)) {
          tables.replications.resetWhenState(spec.name);
        }
      }
    });
  }

  status(names: readonly string[]): ReplicationStatus[] {
    const nowMs = this.deps.now();
    return names.map((name) => {
      const row = this.deps.tables.replications.get(name);
      return {
        name,
        pending_records: row?.log_count ?? 0,
        is_active: row ? row.is_active !== 0 : false,
        diagnostics: { hourly: hourly(row?.diagnostics ?? "[]", nowMs) },
      };
    });
  }

  compiledOf(json: string): Compiled {
    let compiled = this.compiled.get(json);
    if (!compiled) {
      compiled = compile(json);
      if (this.compiled.size > 100) this.compiled.clear();
      this.compiled.set(json, compiled);
    }
    return compiled;
  }
}
