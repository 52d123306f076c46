/**
 * Replication sender: a duty of the object's alarm. Each slice takes the oldest log rows of one
 * entry of an enabled replication (at most RS_IO_BATCH_MAX_RECORDS records or RS_IO_BATCH_MAX_SIZE
 * bytes of content, the limits ReductStore's sender uses; a larger record goes alone) and sends them as ReductStore's sender does: a batch v1 POST for
 * writes, a batch v1 PATCH for label updates. Rows are deleted only once the target answered for
 * them, so a failed attempt resends them in the same order; a per-record 409 means the target
 * already has the record (an earlier attempt whose answer was lost).
 */
import type { ReplicationSettings } from "../../model/replications";
import type { RecordsBinding } from "../../storage/bucket-objects";
import { recordsBucket } from "../../storage/r2-binding";
import { type BodyPart, batchBody, MissingBytesError } from "../../storage/record-bodies";
import { bodyOf } from "../query-batch";
import type { RecordIndex, RecordRow } from "../record-index";
import { countOutcomes, type Replications } from "../replications";
import type { BucketTables } from "../tables";
import type { LogRow } from "../tables/replication-log";
import type { ReplicationRow } from "../tables/replications";
import { acceptsCompression, compressBody } from "./replication-encoding";
import {
  type Acked,
  destinationEntry,
  type ErrorCount,
  type Failed,
  failure,
  type OutboundFetch,
  type Outcome,
  recordErrors,
  recordMayHeal,
  refusedForGood,
  type Target,
  timeHeader,
  unreachable,
} from "./replication-wire";

/** Backoff after a failed attempt: doubles from the first to the last. */
export const SEND_BACKOFF_MIN_MS = 1_000;
export const SEND_BACKOFF_MAX_MS = 60_000;
/** Refused attempts in a row before a batch is dropped: the backoff doubles from 1 s to 60 s on the way (about two minutes). */
export const REFUSALS_BEFORE_DROP = 8;
/** One request to the target gives up after this long, plus a second per MiB it carries (counted as unreachable). */
export const SEND_TIMEOUT_MS = 30_000;
const SEND_TIMEOUT_MS_PER_MIB = 1_000;
/**
 * A request without a body (the target check, a record's HEAD) gives up sooner: the bucket's
 * replications are sent one after another, so a target that never answers delays the others by
 * this much per attempt, not by SEND_TIMEOUT_MS.
 */
export const CHECK_TIMEOUT_MS = 5_000;

export interface ReplicationSendDeps {
  tables: BucketTables;
  index: RecordIndex;
  replications: Replications;
  records: () => RecordsBinding;
  /** Read on every use: a test swaps it for one that answers from the same Worker. */
  fetch: () => OutboundFetch;
  frozen: () => boolean;
  now: () => number;
  /** Records and content bytes of one request. */
  limits: () => { records: number; bytes: number };
  /** Writes a `$system` event when a replication loses or regains its target. */
  report: (replication: string, status: "ok" | "error", message: string, payload: Record<string, unknown>) => Promise<void>;
}

/** An entry held back after its records failed on their own: its own backoff, as a replication's. */
interface Hold {
  backoffMs: number;
  until: number;
  /** Whether its hold wrote an error event (its next success then writes an ok one). */
  reported: boolean;
}

export class ReplicationSend {
  /** The run in progress: the alarm and a direct call never send the same rows twice at once. */
  private inFlight: Promise<void> | null = null;
  /**
   * Held entries per replication, for the epoch they were held in (new settings start afresh, as
   * the replication's backoff does). In memory: an eviction forgets them, which costs one early retry.
   */
  private readonly holds = new Map<string, { epoch: string; entries: Map<string, Hold> }>();

  constructor(private readonly deps: ReplicationSendDeps) {}

  /** Sends slices of every enabled replication with pending rows until `deadline`. */
  async run(deadline: number): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.deps.frozen()) return;
    this.inFlight = (async () => {
      for (const row of this.deps.tables.replications.all()) {
        while (this.deps.now() < deadline && (await this.slice(row.name))) {
          // Each slice is one request; the loop yields between them.
        }
      }
    })().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  /**
   * Now for a replication with rows to send, its backoff end after a failure (or, when every entry
   * with rows is held back, the earliest hold's end), null when idle.
   */
  nextDueAt(): number | null {
    if (this.deps.frozen()) return null;
    let next: number | null = null;
    for (const row of this.deps.tables.replications.all()) {
      if (row.log_count <= 0 || this.settingsOf(row).mode !== "enabled") continue;
      let at = Math.max(row.backoff_until_ms, 0);
      if (at <= this.deps.now()) {
        const pick = this.nextEntry(row);
        at = pick !== undefined && "heldUntil" in pick ? pick.heldUntil : 0;
      }
      if (next === null || at < next) next = at;
    }
    return next;
  }

  /** Ends every entry's hold now, as if its backoff ran out (the next failure still doubles it). */
  endHolds(): void {
    for (const { entries } of this.holds.values()) for (const hold of entries.values()) hold.until = 0;
  }

  private holdsOf(row: ReplicationRow): Map<string, Hold> {
    const held = this.holds.get(row.name);
    if (held && held.epoch === row.epoch) return held.entries;
    const entries = new Map<string, Hold>();
    this.holds.set(row.name, { epoch: row.epoch, entries });
    return entries;
  }

  /**
   * The entry a slice sends: the one with the oldest row among those not held back; when all are
   * held, the earliest end of a hold; undefined when the log is empty.
   */
  private nextEntry(row: ReplicationRow): { entry: string } | { heldUntil: number } | undefined {
    const log = this.deps.tables.replicationLog;
    const holds = this.holdsOf(row);
    const nowMs = this.deps.now();
    const oldest = log.oldestEntry(row.name);
    if (oldest === undefined || (holds.get(oldest)?.until ?? 0) <= nowMs)
      return oldest === undefined ? undefined : { entry: oldest };
    let best: { entry: string; first: number } | undefined;
    let heldUntil = Number.POSITIVE_INFINITY;
    for (const front of log.entryFronts(row.name)) {
      const until = holds.get(front.entry)?.until ?? 0;
      if (until > nowMs) heldUntil = Math.min(heldUntil, until);
      else if (!best || front.first < best.first) best = front;
    }
    return best ? { entry: best.entry } : { heldUntil };
  }

  /** One request for one replication; true when it made progress and more may be sent now. */
  async slice(name: string): Promise<boolean> {
    const { tables } = this.deps;
    const row = tables.replications.get(name);
    if (!row || row.log_count <= 0 || this.deps.frozen()) return false;
    const settings = this.settingsOf(row);
    if (settings.mode !== "enabled" || row.backoff_until_ms > this.deps.now()) return false;
    const pick = this.nextEntry(row);
    if (pick === undefined) {
      tables.replications.addToLog(name, -row.log_count); // the counter drifted: nothing is left
      return false;
    }
    if ("heldUntil" in pick) return false; // every entry with rows is held back
    const { entry } = pick;
    const target = this.targetOf(settings);
    let api = row.target_api;
    if (!row.target_checked) {
      const checked = await this.checkTarget(target);
      if (!this.sameEpoch(row)) return false;
      if (!checked.acked) return this.failed(row, checked);
      tables.replications.setTarget(name, checked.api);
      api = checked.api;
    }
    if (!acceptsCompression(api)) target.compression = "none";
    const front = tables.replicationLog.front(name, entry, this.deps.limits().records);
    const kind = front[0]?.kind ?? "write";
    // In log order: a run of writes or a run of label updates, never mixed in one request.
    const run: LogRow[] = [];
    for (const logRow of front) {
      if (logRow.kind !== kind) break;
      run.push(logRow);
    }
    const dstEntry = destinationEntry(settings.dst_prefix, entry);
    const sent =
      kind === "labels"
        ? await this.sendLabels(target, entry, dstEntry, run)
        : await this.sendWrites(target, entry, dstEntry, run);
    // Replaced or changed while the request was out: its answer is for settings that are gone,
    // so the rows stay (sent again, under the new settings) and nothing is counted.
    if (!this.sameEpoch(row)) return false;
    if (!sent.outcome.acked) {
      // A 404 to a write means the bucket is gone (deleted at the target): create it again. No
      // answer at all: the next attempt starts with the check, whose timeout is short.
      if ((sent.outcome.reached && sent.outcome.status === 404) || sent.outcome.status === 0)
        tables.replications.forgetTarget(name);
      const refused = sent.outcome.reached && refusedForGood(sent.outcome.status);
      // Counted in a row, not read off the backoff: an outage leaves it at its maximum, and the
      // first refusal after it must be retried too.
      if (tables.replications.countRefusal(name, refused) < REFUSALS_BEFORE_DROP)
        return sent.outcome.entryOnly ? this.hold(row, entry, sent.outcome) : this.failed(row, sent.outcome);
      tables.replications.countRefusal(name, false);
      this.holdsOf(row).delete(entry);
      return this.dropRefused(tables.replications.get(name) ?? row, run, sent.outcome);
    }
    tables.replications.countRefusal(name, false);
    const released = this.holdsOf(row).get(entry);
    this.holdsOf(row).delete(entry);
    const deleted = tables.replicationLog.delete(
      name,
      sent.rows.map((logRow) => logRow.seq),
    );
    tables.replications.addToLog(name, -deleted);
    const fresh = tables.replications.get(name);
    if (fresh) {
      const diagnostics = countOutcomes(fresh.diagnostics, this.deps.now(), sent.outcome.ok, sent.outcome.errors);
      tables.replications.recordAttempt(name, true, 0, 0, diagnostics);
      if (fresh.backoff_ms > 0) await this.report(fresh, "ok", `Replication '${name}' reaches its target again`, 200);
      else if (released?.reported) await this.report(fresh, "ok", `Replication '${name}' delivers entry '${entry}' again`, 200);
    }
    return true;
  }

  /** Whether the replication still has the epoch a send started with (not replaced, settings unchanged). */
  private sameEpoch(row: ReplicationRow): boolean {
    if (this.deps.tables.replications.get(row.name)?.epoch === row.epoch) return true;
    console.warn(`replication '${row.name}': replaced or changed while sending; that attempt's answer is not applied`);
    return false;
  }

  /** One event per change of state: the first failure after success, the first success after failures. */
  private async report(row: ReplicationRow, status: "ok" | "error", message: string, code: number): Promise<void> {
    const settings = this.settingsOf(row);
    const payload = {
      replication: row.name,
      bucket: settings.src_bucket,
      dst_host: settings.dst_host,
      dst_bucket: settings.dst_bucket,
      status_code: code,
      pending_records: this.deps.tables.replications.get(row.name)?.log_count ?? 0,
    };
    try {
      await this.deps.report(row.name, status, message, payload);
    } catch (error) {
      console.error(`replication '${row.name}': writing its $system event failed:`, error);
    }
  }

  private async failed(row: ReplicationRow, outcome: Failed): Promise<false> {
    const nowMs = this.deps.now();
    const fresh = this.deps.tables.replications.get(row.name) ?? row;
    const backoffMs = Math.min(Math.max(fresh.backoff_ms * 2, SEND_BACKOFF_MIN_MS), SEND_BACKOFF_MAX_MS);
    // Counted once per failed attempt: the rows stay in the log and are sent again.
    const diagnostics = countOutcomes(fresh.diagnostics, nowMs, 0, [
      { status: String(outcome.status), count: 1, message: outcome.message },
    ]);
    this.deps.tables.replications.recordAttempt(row.name, outcome.reached, backoffMs, nowMs + backoffMs, diagnostics);
    console.warn(`replication '${row.name}': ${outcome.status} ${outcome.message}; retrying in ${backoffMs} ms`);
    if (fresh.backoff_ms === 0) {
      const message = `Replication '${row.name}' failed (${outcome.status}): ${outcome.message}; records are kept and sent again`;
      await this.report(fresh, "error", message, outcome.status);
    }
    return false;
  }

  /**
   * Holds one entry back after its records failed on their own (the target answered): the other
   * entries go at once, so the replication's own backoff is left as it is.
   */
  private async hold(row: ReplicationRow, entry: string, outcome: Failed): Promise<true> {
    const nowMs = this.deps.now();
    const holds = this.holdsOf(row);
    const previous = holds.get(entry);
    const backoffMs = Math.min(Math.max((previous?.backoffMs ?? 0) * 2, SEND_BACKOFF_MIN_MS), SEND_BACKOFF_MAX_MS);
    const fresh = this.deps.tables.replications.get(row.name) ?? row;
    // One event per change of state: none while the replication as a whole is failing.
    const report = !previous && fresh.backoff_ms === 0;
    holds.set(entry, { backoffMs, until: nowMs + backoffMs, reported: previous?.reported || report });
    const diagnostics = countOutcomes(fresh.diagnostics, nowMs, 0, [
      { status: String(outcome.status), count: 1, message: outcome.message },
    ]);
    this.deps.tables.replications.recordAttempt(row.name, outcome.reached, fresh.backoff_ms, fresh.backoff_until_ms, diagnostics);
    console.warn(
      `replication '${row.name}': entry '${entry}': ${outcome.status} ${outcome.message}; retrying it in ${backoffMs} ms`,
    );
    if (report) {
      const message = `Replication '${row.name}' failed (${outcome.status}) for entry '${entry}': ${outcome.message}; its records are kept and sent again`;
      await this.report(fresh, "error", message, outcome.status);
    }
    return true;
  }

  /** Drops a batch the target kept refusing (refusedForGood), counting each record as errored. */
  private async dropRefused(row: ReplicationRow, rows: LogRow[], outcome: Failed): Promise<true> {
    const { tables } = this.deps;
    const deleted = tables.replicationLog.delete(
      row.name,
      rows.map((logRow) => logRow.seq),
    );
    tables.replications.addToLog(row.name, -deleted);
    const diagnostics = countOutcomes(row.diagnostics, this.deps.now(), 0, [
      { status: String(outcome.status), count: deleted, message: outcome.message },
    ]);
    tables.replications.recordAttempt(row.name, true, 0, 0, diagnostics);
    const message = `Replication '${row.name}' dropped ${deleted} record(s) the target refused for good (${outcome.status}): ${outcome.message}`;
    console.error(message);
    await this.report(row, "error", message, outcome.status);
    return true;
  }

  private settingsOf(row: ReplicationRow): ReplicationSettings {
    return this.deps.replications.compiledOf(row.settings).settings;
  }

  private targetOf(settings: ReplicationSettings): Target {
    const base = settings.dst_host.endsWith("/") ? settings.dst_host : `${settings.dst_host}/`;
    const headers: Record<string, string> = {};
    if (settings.dst_token) headers.authorization = `Bearer ${settings.dst_token}`;
    return { base, bucket: settings.dst_bucket, headers, compression: settings.compression, maxBytes: this.deps.limits().bytes };
  }

  private async request(url: string, init: RequestInit, bytes = 0, baseMs = SEND_TIMEOUT_MS): Promise<Response> {
    const timeoutMs = baseMs + Math.ceil(bytes / (1024 * 1024)) * SEND_TIMEOUT_MS_PER_MIB;
    const request = new Request(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return this.deps.fetch()(request);
  }

  /**
   * HEAD the target bucket; a 404 creates it (409: someone else did). ReductStore's sender GETs it,
   * which needs read access; HEAD needs only a valid token, so a write-only token works too.
   */
  private async checkTarget(target: Target): Promise<{ acked: true; api: string | null } | Failed> {
    const url = `${target.base}api/v1/b/${target.bucket}`;
    try {
      const found = await this.request(url, { method: "HEAD", headers: target.headers }, 0, CHECK_TIMEOUT_MS);
      await found.body?.cancel();
      if (found.ok) return { acked: true, api: found.headers.get("x-reduct-api") };
      if (found.status !== 404) return failure(found);
      const created = await this.request(url, { method: "POST", headers: target.headers }, 0, CHECK_TIMEOUT_MS);
      await created.body?.cancel();
      if (created.ok || created.status === 409) return { acked: true, api: created.headers.get("x-reduct-api") };
      return failure(created);
    } catch (error) {
      return unreachable(error);
    }
  }

  /** The current records of these rows; rows whose record is gone are answered at once. */
  private current(entry: string, rows: readonly LogRow[]): { found: { row: LogRow; record: RecordRow }[]; gone: LogRow[] } {
    const ref = this.deps.index.entry(entry);
    const found: { row: LogRow; record: RecordRow }[] = [];
    const gone: LogRow[] = [];
    for (const row of rows) {
      const record = ref ? this.deps.index.record(ref.id, row.ts) : undefined;
      if (record && record.state === "ready") found.push({ row, record });
      else gone.push(row);
    }
    return { found, gone };
  }

  private goneErrors(entry: string, gone: readonly LogRow[]): ErrorCount[] {
    const last = gone[gone.length - 1];
    if (!last) return [];
    return [{ status: "404", count: gone.length, message: `No record with timestamp ${last.ts} in entry '${entry}'` }];
  }

  private async sendWrites(
    target: Target,
    entry: string,
    dstEntry: string,
    rows: readonly LogRow[],
  ): Promise<{ rows: LogRow[]; outcome: Outcome }> {
    const { found, gone } = this.current(entry, rows);
    // Within the byte budget; the first record always goes (a large one alone).
    let bytes = 0;
    let batch: { row: LogRow; record: RecordRow }[] = [];
    // A record written again after a removal is logged twice: its current state goes once.
    const timestamps = new Set<number>();
    const again: LogRow[] = [];
    for (const item of found) {
      if (timestamps.has(item.row.ts)) {
        again.push(item.row);
        continue;
      }
      if (batch.length > 0 && bytes + item.record.size > target.maxBytes) break;
      batch.push(item);
      timestamps.add(item.row.ts);
      bytes += item.record.size;
    }
    // The log is in write order, which need not be timestamp order; a v1 batch body is read in
    // the order of its timestamps, so the records go in that order.
    batch.sort((x, y) => x.record.ts - y.record.ts);
    const answered = [...gone, ...again, ...batch.map((item) => item.row)];
    if (batch.length === 0) return { rows: answered, outcome: { acked: true, ok: 0, errors: this.goneErrors(entry, gone) } };
    let body: Awaited<ReturnType<typeof batchBody>>;
    try {
      body = await this.bodyOf(batch.map((item) => item.record));
    } catch (error) {
      if (!(error instanceof MissingBytesError)) throw error;
      // Evicted or removed while we read: send the records one by one to find which.
      const first = batch[0];
      if (batch.length > 1 && first) {
        batch = [first];
        try {
          body = await this.bodyOf([first.record]);
        } catch (retried) {
          if (!(retried instanceof MissingBytesError)) throw retried;
          const errors = [...this.goneErrors(entry, gone), { status: "500", count: 1, message: retried.message }];
          return { rows: [...gone, first.row], outcome: { acked: true, ok: 0, errors } };
        }
      } else {
        const errors = [...this.goneErrors(entry, gone), { status: "500", count: batch.length, message: error.message }];
        return { rows: answered, outcome: { acked: true, ok: 0, errors } };
      }
    }
    const sentRows = [...gone, ...again, ...batch.map((item) => item.row)];
    const headers: Record<string, string> = { ...target.headers, "content-type": "application/octet-stream" };
    for (const { record } of batch)
      headers[`x-reduct-time-${record.ts}`] = timeHeader(record.size, record.content_type, record.labels);
    if (body === null) headers["content-length"] = "0";
    else if (target.compression !== "none") {
      // Chunked, without Content-Length: the records' lengths are the payload's, as ReductStore sends it.
      headers["content-encoding"] = target.compression;
      body = compressBody(body, target.compression);
    }
    let response: Response;
    try {
      response = await this.request(
        `${target.base}api/v1/b/${target.bucket}/${dstEntry}/batch`,
        { method: "POST", headers, body: body ?? undefined },
        bytes,
      );
      await response.body?.cancel();
    } catch (error) {
      return { rows: sentRows, outcome: unreachable(error) };
    }
    if (!response.ok) return { rows: sentRows, outcome: failure(response) };
    const errors = recordErrors(response);
    const unsettled = await this.unsettled(target, dstEntry, errors, true);
    if (unsettled) return { rows: sentRows, outcome: unsettled };
    const outcome = this.tally(
      batch.map((item) => item.row),
      errors,
    );
    outcome.errors.push(...this.goneErrors(entry, gone));
    return { rows: sentRows, outcome };
  }

  private async sendLabels(
    target: Target,
    entry: string,
    dstEntry: string,
    rows: readonly LogRow[],
  ): Promise<{ rows: LogRow[]; outcome: Outcome }> {
    const { found, gone } = this.current(entry, rows);
    const answered = [...gone, ...found.map((item) => item.row)];
    if (found.length === 0) return { rows: answered, outcome: { acked: true, ok: 0, errors: this.goneErrors(entry, gone) } };
    const headers: Record<string, string> = {
      ...target.headers,
      "content-type": "application/octet-stream",
      "content-length": "0",
    };
    for (const { record } of found) headers[`x-reduct-time-${record.ts}`] = timeHeader(null, "", record.labels);
    let response: Response;
    try {
      response = await this.request(`${target.base}api/v1/b/${target.bucket}/${dstEntry}/batch`, { method: "PATCH", headers });
      await response.body?.cancel();
    } catch (error) {
      return { rows: answered, outcome: unreachable(error) };
    }
    let missing: LogRow[];
    let outcome: Acked;
    if (response.status === 404) {
      // The target has no such entry: write the records instead (ReductStore does).
      missing = found.map((item) => item.row);
      outcome = { acked: true, ok: 0, errors: [] };
    } else if (!response.ok) {
      return { rows: answered, outcome: failure(response) };
    } else {
      const errors = recordErrors(response);
      const unsettled = await this.unsettled(target, dstEntry, errors, false);
      if (unsettled) return { rows: answered, outcome: unsettled };
      missing = found.filter((item) => errors.get(item.row.ts)?.status === 404).map((item) => item.row);
      for (const row of missing) errors.delete(row.ts);
      outcome = this.tally(
        found.map((item) => item.row).filter((row) => !missing.includes(row)),
        errors,
      );
    }
    if (missing.length > 0) {
      const written = await this.sendWrites(target, entry, dstEntry, missing);
      if (!written.outcome.acked) return { rows: answered, outcome: written.outcome };
      outcome.ok += written.outcome.ok;
      outcome.errors.push(...written.outcome.errors);
      // Rows beyond the write's byte budget stay and are sent (as label updates) again.
      const writtenSeqs = new Set(written.rows.map((row) => row.seq));
      const kept = new Set(missing.filter((row) => !writtenSeqs.has(row.seq)).map((row) => row.seq));
      outcome.errors.push(...this.goneErrors(entry, gone));
      return { rows: answered.filter((row) => !kept.has(row.seq)), outcome };
    }
    outcome.errors.push(...this.goneErrors(entry, gone));
    return { rows: answered, outcome };
  }

  /**
   * A failure (rows kept, backoff) when a per-record answer is not final: one that can heal
   * (recordMayHeal), or a 409 for a record the target does not have readable. A target that died while receiving a large record answers 409
   * for it until its reservation expires, and then has nothing: only a readable record is delivered.
   */
  private async unsettled(
    target: Target,
    dstEntry: string,
    errors: ReadonlyMap<number, { status: number; message: string }>,
    confirmConflicts: boolean,
  ): Promise<Failed | null> {
    for (const [ts, error] of errors) {
      if (recordMayHeal(error.status))
        return { acked: false, status: error.status, message: error.message, reached: true, entryOnly: true };
      // A write answered 404 per record: the bucket is missing (a target answers so for each record).
      if (error.status === 404 && confirmConflicts) return { acked: false, status: 404, message: error.message, reached: true };
      if (error.status !== 409 || !confirmConflicts) continue;
      let response: Response;
      try {
        response = await this.request(
          `${target.base}api/v1/b/${target.bucket}/${dstEntry}?ts=${ts}`,
          { method: "HEAD", headers: target.headers },
          0,
          CHECK_TIMEOUT_MS,
        );
        await response.body?.cancel();
      } catch (failed) {
        return unreachable(failed);
      }
      // A token without read access cannot look: the 409 is taken at its word, as ReductStore's
      // sender (which never looks) takes it.
      if (response.status === 401 || response.status === 403) continue;
      if (!response.ok) {
        const message = response.headers.get("x-reduct-error") ?? `HTTP ${response.status}`;
        return {
          acked: false,
          status: response.status,
          message: `Record ${ts} answered 409 but cannot be read: ${message}`,
          reached: true,
          // A target that is down as a whole (502/503/504) holds every entry.
          entryOnly: ![502, 503, 504].includes(response.status),
        };
      }
    }
    return null;
  }

  /** Per-record answers: 409 (the target has it) is delivered, other errors drop the record. */
  private tally(rows: readonly LogRow[], errors: Map<number, { status: number; message: string }>): Acked {
    let ok = 0;
    const byStatus = new Map<string, ErrorCount>();
    for (const row of rows) {
      const error = errors.get(row.ts);
      if (!error || error.status === 409) {
        ok++;
        continue;
      }
      const key = String(error.status);
      const count = byStatus.get(key) ?? { status: key, count: 0, message: "" };
      count.count++;
      count.message = error.message;
      byStatus.set(key, count);
    }
    return { acked: true, ok, errors: [...byStatus.values()] };
  }

  private async bodyOf(records: readonly RecordRow[]): Promise<Awaited<ReturnType<typeof batchBody>>> {
    const { index } = this.deps;
    const parts: BodyPart[] = records.map((record) => ({
      size: record.size,
      body: bodyOf(
        record,
        (row) => {
          const bytes = index.stagedPayload(row);
          if (!bytes) throw new MissingBytesError(`staged payload of record ${row.ts} is missing`);
          return bytes;
        },
        (blockId) => index.block(blockId)?.object_bytes ?? null,
      ),
    }));
    return batchBody(recordsBucket(this.deps.records()), parts);
  }
}
