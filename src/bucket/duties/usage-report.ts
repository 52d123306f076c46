/**
 * The usage report, a duty of the `$system` object only (one object by name, so one writer per
 * window without any election): once a usage window has ended and settled, it reads the windows
 * the buckets handed to D1, writes their records into `$system` itself and deletes the rows.
 * Idempotent: a record's timestamp is its window's end, so a report repeated after a crash is
 * answered 409 for what is already written and counts as done. An idle store has no rows, so the
 * alarm is set only when a bucket hands over a window; nothing runs per minute otherwise.
 */
import type { Config } from "../../config";
import { type RegistrySnapshotRow, registrySnapshot } from "../../d1/buckets";
import {
  deleteUsageWindows,
  endedUsageWindowEnds,
  oldestUsageWindowEnd,
  type UsageWindowRow,
  usageWindowRows,
} from "../../d1/usage-windows";
import type { ItemOutcome, StagedItem } from "../../model/records";
import { USAGE_STATUS, usageRecords } from "../../system/usage";

/** Buckets hand over a window when their alarm fires at its end; the report waits this long for them. */
export const USAGE_REPORT_SETTLE_MS = 5_000;
/** Windows one report pass writes before it reschedules (a backlog after an outage). */
const WINDOWS_PER_PASS = 10;

export function usageSettleMs(windowMs: number): number {
  return Math.min(USAGE_REPORT_SETTLE_MS, Math.floor(windowMs / 2));
}

export interface UsageReportDeps {
  /** Read on every use: tests swap the binding to inject D1 faults. */
  db: () => D1Database;
  config: () => Config;
  now: () => number;
  /** True only in the `$system` object. */
  isSystem: () => boolean;
  scheduleAlarm: (atMs: number) => Promise<void>;
  /** Writes records into this (`$system`) bucket, creating it if missing; one outcome per item. */
  write: (items: StagedItem[]) => Promise<ItemOutcome[]>;
}

export class UsageReport {
  /** When the next report is due; null: no window waits; undefined: unknown (after a restart). */
  private dueAt: number | null | undefined;

  constructor(private readonly deps: UsageReportDeps) {}

  /** A bucket handed windows up to `windowEndMs` to D1. */
  async arm(windowEndMs: number): Promise<void> {
    const at = windowEndMs + usageSettleMs(this.deps.config().systemEvents.usageIntervalMs);
    if (this.dueAt === null || this.dueAt === undefined || at < this.dueAt) this.dueAt = at;
    await this.deps.scheduleAlarm(this.dueAt);
  }

  async run(deadline: number): Promise<void> {
    if (!this.deps.isSystem()) return;
    const config = this.deps.config();
    if (!config.systemEvents.enabled) return;
    if (this.dueAt === null || (this.dueAt !== undefined && this.deps.now() < this.dueAt)) return;
    const db = this.deps.db();
    const settle = usageSettleMs(config.systemEvents.usageIntervalMs);
    const ends = await endedUsageWindowEnds(db, this.deps.now() - settle, WINDOWS_PER_PASS);
    if (ends.length > 0) {
      const snapshot = await registrySnapshot(db);
      for (const end of ends) {
        if (this.deps.now() >= deadline) break;
        const rows = await usageWindowRows(db, end);
        await this.writeWindow(config, end, rows, snapshot);
        await deleteUsageWindows(db, rows);
      }
    }
    const oldest = await oldestUsageWindowEnd(db);
    this.dueAt = oldest === null ? null : Math.max(oldest + settle, this.deps.now());
  }

  private async writeWindow(
    config: Config,
    end: number,
    rows: readonly UsageWindowRow[],
    snapshot: readonly RegistrySnapshotRow[],
  ): Promise<void> {
    const status = String(USAGE_STATUS);
    const items = usageRecords(config, end, rows, snapshot).map((record): StagedItem => {
      const bytes = new TextEncoder().encode(record.body);
      return {
        meta: { entry: record.entry, ts: record.ts, size: bytes.byteLength, contentType: "application/json", labels: { status } },
        payload: bytes.buffer as ArrayBuffer,
      };
    });
    const outcomes = await this.deps.write(items);
    for (const outcome of outcomes) {
      // 409: written by an earlier attempt of this report (same window, same timestamp).
      if (!outcome.ok && outcome.error.status !== 409) throw new Error(`writing usage records failed: ${outcome.error.message}`);
    }
  }

  nextDueAt(): number | null {
    return this.dueAt ?? null;
  }
}
