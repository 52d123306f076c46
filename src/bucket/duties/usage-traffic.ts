/**
 * Usage traffic of one bucket: bytes and records written and read per usage window
 * (RS_SYSTEM_EVENTS_USAGE_INTERVAL), handed to D1 once the window has ended, for the `$system`
 * object to write as usage records. Nothing here costs a request an extra storage operation:
 * writes add their traffic in their own transaction; reads are summed in memory and moved to
 * SQLite by the alarm when their window ends (the first read of a window sets that alarm).
 * Loss: reads of windows not yet ended are lost when the object is evicted or restarts, and so is
 * the traffic of a bucket that is deleted or renamed before its window reached D1.
 * `$` buckets (the server's own) are not counted, so writing usage records makes no new usage.
 */
import type { Config } from "../../config";
import { upsertUsageWindow } from "../../d1/usage-windows";
import type { BucketTables } from "../tables";

export interface UsageTrafficDeps {
  storage: DurableObjectStorage;
  tables: BucketTables;
  /** Read on every use: tests swap the binding to inject D1 faults. */
  db: () => D1Database;
  config: () => Config;
  now: () => number;
  scheduleAlarm: (atMs: number) => Promise<void>;
  /** Tells the `$system` object that windows up to this end are in D1. */
  armReport: (windowEndMs: number) => Promise<void>;
}

export type WrittenTraffic = ReadonlyMap<string, { bytes: number; records: number }>;

/** The end of the usage window `nowMs` falls in. */
export function usageWindowEnd(nowMs: number, windowMs: number): number {
  return (Math.floor(nowMs / windowMs) + 1) * windowMs;
}

export class UsageTraffic {
  /** Reads per window end and entry, not yet in SQLite. */
  private reads = new Map<number, Map<string, { bytes: number; records: number }>>();
  /** Window end whose alarm the reads already set. */
  private readAlarmFor = 0;
  /** A window handed to D1 whose report the `$system` object has not been told of yet. */
  private unarmed: number | null = null;

  constructor(private readonly deps: UsageTrafficDeps) {}

  /** The window length, or null when this bucket's traffic is not counted. */
  private windowMs(bucket: string): number | null {
    const config = this.deps.config();
    if (!config.systemEvents.enabled || bucket.startsWith("$")) return null;
    return config.systemEvents.usageIntervalMs;
  }

  /** Adds a write's traffic; call inside the write's transaction so it commits with the records. */
  countWrites(bucket: string, written: WrittenTraffic, nowMs: number): void {
    if (written.size === 0) return;
    const windowMs = this.windowMs(bucket);
    if (windowMs === null) return;
    const end = usageWindowEnd(nowMs, windowMs);
    for (const [entry, traffic] of written) {
      this.deps.tables.usageTraffic.add(end, entry, {
        writeBytes: traffic.bytes,
        recordsWritten: traffic.records,
        readBytes: 0,
        recordsRead: 0,
      });
    }
  }

  /** Adds records served to a reader, in memory. */
  async countReads(bucket: string, records: readonly { entry: string; size: number }[], nowMs: number): Promise<void> {
    if (records.length === 0) return;
    const windowMs = this.windowMs(bucket);
    if (windowMs === null) return;
    const end = usageWindowEnd(nowMs, windowMs);
    let window = this.reads.get(end);
    if (!window) {
      window = new Map();
      this.reads.set(end, window);
    }
    for (const record of records) {
      const sum = window.get(record.entry) ?? { bytes: 0, records: 0 };
      sum.bytes += record.size;
      sum.records += 1;
      window.set(record.entry, sum);
    }
    if (this.readAlarmFor !== end) {
      this.readAlarmFor = end;
      await this.deps.scheduleAlarm(end);
    }
  }

  /**
   * Moves reads into SQLite, marks the window of the latest change when the bucket changed (so a
   * removal without traffic shows in a usage record), and hands every ended window to D1 with its
   * final sums, so a repeated hand-over writes the same row.
   */
  async run(): Promise<void> {
    const { storage, tables } = this.deps;
    const row = tables.bucket.get();
    const windowMs = row ? this.windowMs(row.name) : null;
    if (!row || windowMs === null || row.renaming_from !== null || row.renaming_to !== null) {
      this.reads.clear();
      return;
    }
    const nowMs = this.deps.now();
    const reads = this.reads;
    this.reads = new Map();
    const versions = tables.bucket.usageVersions();
    storage.transactionSync(() => {
      for (const [end, window] of reads) {
        for (const [entry, sum] of window) {
          tables.usageTraffic.add(end, entry, {
            writeBytes: 0,
            recordsWritten: 0,
            readBytes: sum.bytes,
            recordsRead: sum.records,
          });
        }
      }
      if (versions && versions.stats > versions.reported) {
        // In the window of the change, not of this run: an alarm soon after a write at a window's
        // end runs in the next window, which saw nothing.
        // 0: the change time is unknown (a bucket renamed into this object, or one older than the
        // column), so the change belongs to this window.
        const changedAt = versions.changedAtMs > 0 ? Math.min(versions.changedAtMs, nowMs) : nowMs;
        const changedIn = usageWindowEnd(changedAt, windowMs);
        tables.usageTraffic.add(changedIn, "", {
          writeBytes: 0,
          recordsWritten: 0,
          readBytes: 0,
          recordsRead: 0,
        });
        tables.bucket.markUsageCovered(versions.stats);
      }
    });
    const ended = tables.usageTraffic.ended(nowMs);
    const last = ended[ended.length - 1];
    if (last) {
      const db = this.deps.db();
      await db.batch(ended.map((window) => upsertUsageWindow(db, { bucket: row.name, ...window })));
      storage.transactionSync(() => {
        for (const window of ended) tables.usageTraffic.deleteWindow(window.window_end_ms);
      });
      this.unarmed = Math.max(this.unarmed ?? 0, last.window_end_ms);
    }
    if (this.unarmed !== null) {
      await this.deps.armReport(this.unarmed);
      this.unarmed = null;
    }
  }

  /** The end of the oldest window held (in SQLite or in memory), or null. */
  nextDueAt(): number | null {
    const row = this.deps.tables.bucket.get();
    if (!row || this.windowMs(row.name) === null || row.renaming_from !== null || row.renaming_to !== null) return null;
    let next = this.deps.tables.usageTraffic.oldestEnd();
    for (const end of this.reads.keys()) if (next === null || end < next) next = end;
    if (this.unarmed !== null) next = Math.min(next ?? Number.POSITIVE_INFINITY, this.deps.now());
    return next;
  }
}
