/**
 * Usage records of `$system`, as ReductStore writes them: per usage window one JSON record in
 * `usage/<instance>/<bucket>` for each bucket with traffic or changes in it, and one in
 * `usage/<instance>/total`, `{timestamp, instance, status: 200, message: "", duration, ...}` with
 * the window's traffic and a snapshot of storage when the record is made. Pure: the `$system`
 * object's usage report (src/bucket/duties/usage-report.ts) writes what this builds.
 */
import type { Config } from "../config";
import type { RegistrySnapshotRow } from "../d1/buckets";
import type { UsageWindowRow } from "../d1/usage-windows";
import { entrySegment } from "./events";

/** ReductStore labels usage records with the HTTP-style status of a successful flush. */
export const USAGE_STATUS = 200;
export const USAGE_TOTAL_ENTRY = "total";

export interface UsagePayload {
  duration: number;
  write_bytes: number;
  read_bytes: number;
  records_written: number;
  records_read: number;
  written_entries: number;
  read_entries: number;
  storage_bytes: number;
  bucket_count: number;
  entry_count: number;
  block_count: number;
  record_count: number;
}

export interface UsageRecord {
  entry: string;
  /** Microseconds: the window's end, so a repeated report hits the same timestamp (409). */
  ts: number;
  body: string;
}

export function usageEntry(config: Config, name: string): string {
  return `usage/${entrySegment(config.instanceName)}/${name}`;
}

const TRAFFIC_KEYS = ["write_bytes", "read_bytes", "records_written", "records_read", "written_entries", "read_entries"] as const;

/**
 * The records of one window: each bucket's row (with its snapshot, zeros if it is gone by now),
 * then the total over the rows and over every bucket's storage. A bucket named `total` shares
 * the entry `usage/<instance>/total` with the total, as in ReductStore; here its record has the
 * total's timestamp, so it is refused (409) and only the total is kept.
 */
export function usageRecords(
  config: Config,
  windowEndMs: number,
  rows: readonly UsageWindowRow[],
  snapshot: readonly RegistrySnapshotRow[],
): UsageRecord[] {
  const ts = windowEndMs * 1000;
  const duration = config.systemEvents.usageIntervalMs / 1000;
  const byName = new Map(snapshot.map((bucket) => [bucket.name, bucket]));
  const record = (name: string, payload: UsagePayload): UsageRecord => ({
    entry: usageEntry(config, name),
    ts,
    body: JSON.stringify({ timestamp: ts, instance: config.instanceName, status: USAGE_STATUS, message: "", ...payload }),
  });
  const total: UsagePayload = {
    duration,
    write_bytes: 0,
    read_bytes: 0,
    records_written: 0,
    records_read: 0,
    written_entries: 0,
    read_entries: 0,
    storage_bytes: 0,
    bucket_count: snapshot.length,
    entry_count: 0,
    block_count: 0,
    record_count: 0,
  };
  for (const bucket of snapshot) {
    total.storage_bytes += bucket.size;
    total.entry_count += bucket.entry_count;
    total.block_count += bucket.block_count;
    total.record_count += bucket.record_count;
  }
  // The total first: a bucket named `total` must not take the total's place.
  const bucketRecords: UsageRecord[] = [];
  for (const row of rows) {
    if (row.bucket.startsWith("$")) continue;
    for (const key of TRAFFIC_KEYS) total[key] += row[key];
    const stored = byName.get(row.bucket);
    bucketRecords.push(
      record(row.bucket, {
        duration,
        write_bytes: row.write_bytes,
        read_bytes: row.read_bytes,
        records_written: row.records_written,
        records_read: row.records_read,
        written_entries: row.written_entries,
        read_entries: row.read_entries,
        storage_bytes: stored?.size ?? 0,
        bucket_count: 1,
        entry_count: stored?.entry_count ?? 0,
        block_count: stored?.block_count ?? 0,
        record_count: stored?.record_count ?? 0,
      }),
    );
  }
  return [record(USAGE_TOTAL_ENTRY, total), ...bucketRecords];
}
