/**
 * Usage flush: keeps the D1 registry row of this bucket equal to the object's state. A write that
 * changed usage starts a flush at once, off the request path; concurrent changes coalesce into one
 * flush in flight plus at most one more, and a token bucket bounds how often one bucket writes D1.
 * The alarm is the durable backstop if the object is evicted mid-flush.
 */
import { bucketInfo } from "../bucket-store";
import { deleteRegistryRow, upsertRegistryRow } from "../registry";
import type { BucketTables } from "../tables";

/** Usage reaches D1 at most this long after a write (the documented staleness bound is 1 s). */
export const STATS_FLUSH_DELAY_MS = 500;
/** Usage flushes to D1 a bucket may make at once, and per second under steady ingest (the rest coalesce). */
export const USAGE_FLUSH_BURST = 8;
export const USAGE_FLUSHES_PER_S = 2;

export interface UsageFlushDeps {
  tables: BucketTables;
  /** Read on every use: tests swap the binding to inject D1 faults. */
  db: () => D1Database;
  now: () => number;
  scheduleAlarm: (atMs: number) => Promise<void>;
}

export class UsageFlush {
  /** D1 registry writes of this object, serialised so an older sync never lands after a newer one. */
  private registryChain: Promise<void> = Promise.resolve();
  private flushInFlight: Promise<void> | null = null;
  /** The stats_version a registry write in flight is sending. */
  private syncing: number | null = null;
  /** Usage flushes this instance may start right away (a token bucket; see USAGE_FLUSH_BURST). */
  private flushTokens = USAGE_FLUSH_BURST;
  private flushTokensAt = 0;

  constructor(private readonly deps: UsageFlushDeps) {}

  /** A new bucket starts with a full burst. */
  resetBurst(): void {
    this.flushTokens = USAGE_FLUSH_BURST;
  }

  /**
   * Whether a change must bump stats_version: only when the bucket reads as flushed, or a flush in
   * flight took the current version (it would mark this change flushed too). Otherwise the pending
   * flush covers it (the usage windows see a write through its own traffic row). So under steady
   * ingest the bucket row is written about once per flush, not once per write.
   */
  needsMark(row: { stats_version: number; stats_flushed_version: number }): boolean {
    return row.stats_version <= row.stats_flushed_version || row.stats_version === this.syncing;
  }

  /**
   * Records that usage changed and starts a flush without awaiting it. `mark` false: the caller's
   * transaction marked it (see needsMark).
   */
  async changed(mark = true): Promise<void> {
    if (mark) this.deps.tables.bucket.touchStats();
    await this.deps.scheduleAlarm(this.deps.now() + STATS_FLUSH_DELAY_MS);
    if (this.flushInFlight) return;
    this.flushInFlight = (async () => {
      try {
        while (this.isDirty()) {
          const wait = this.flushWaitMs(this.deps.now());
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          await this.syncRegistry();
        }
      } catch (error) {
        console.error("usage flush failed; the alarm retries:", error);
      } finally {
        this.flushInFlight = null;
      }
    })();
  }

  /**
   * How long the next usage flush must wait. A burst of USAGE_FLUSH_BURST flushes goes out at once
   * (a client that writes a few records and then reads /info or /list sees exact usage); under
   * steady ingest a bucket writes D1 at most USAGE_FLUSHES_PER_S times a second, so the wait is
   * below 1 s and the staleness bound holds.
   */
  private flushWaitMs(nowMs: number): number {
    const refill = ((nowMs - this.flushTokensAt) / 1000) * USAGE_FLUSHES_PER_S;
    this.flushTokens = Math.min(USAGE_FLUSH_BURST, this.flushTokens + Math.max(0, refill));
    this.flushTokensAt = nowMs;
    if (this.flushTokens >= 1) {
      this.flushTokens -= 1;
      return 0;
    }
    const wait = Math.ceil(((1 - this.flushTokens) * 1000) / USAGE_FLUSHES_PER_S);
    this.flushTokens = 0;
    this.flushTokensAt = nowMs + wait;
    return wait;
  }

  isDirty(): boolean {
    const row = this.deps.tables.bucket.get();
    return row !== undefined && row.stats_version > row.stats_flushed_version;
  }

  async flushIfDirty(): Promise<void> {
    if (this.isDirty()) await this.syncRegistry();
  }

  nextDueAt(): number | null {
    return this.isDirty() ? this.deps.now() + STATS_FLUSH_DELAY_MS : null;
  }

  /** Makes D1's registry row for this bucket equal to this object's state. */
  async syncRegistry(): Promise<void> {
    await this.serialise(async () => {
      const row = this.deps.tables.bucket.get();
      if (!row || row.renaming_from) return;
      const version = row.stats_version;
      const info = bucketInfo(row, this.deps.tables.entries);
      const counts = this.deps.tables.entries.usage();
      this.syncing = version;
      try {
        await upsertRegistryRow(
          this.deps.db(),
          {
            name: row.name,
            generation: row.generation,
            is_provisioned: row.is_provisioned,
            entry_count: info.entry_count,
            size: info.size,
            oldest_record: info.oldest_record,
            latest_record: info.latest_record,
            record_count: counts.records,
            block_count: counts.blocks,
          },
          this.deps.now(),
        );
        this.deps.tables.bucket.markStatsFlushed(version);
      } finally {
        this.syncing = null;
      }
    });
  }

  /** Removes the registry row of `name` if it still belongs to `generation`, in order with the syncs. */
  async deleteRegistryRow(name: string, generation: string): Promise<void> {
    await this.serialise(() => deleteRegistryRow(this.deps.db(), name, generation));
  }

  /** Runs D1 registry writes one at a time, in call order; each reads state when it runs. */
  private async serialise(write: () => Promise<void>): Promise<void> {
    const next = this.registryChain.then(write);
    this.registryChain = next.catch(() => {});
    await next;
  }
}
