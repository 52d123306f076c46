/**
 * The bucket and entry info the API returns, computed from the `bucket` row and the `entries`
 * table (whose SQL lives in tables/), and the rules a rename of an entry follows.
 */
import type { BucketSettings } from "../config";
import { isMetaEntry } from "../model/entry-names";
import type { ErrorInfo } from "../model/records";
import type { BucketRow } from "./tables/bucket-row";
import type { EntriesTable } from "./tables/entries";

export { isMetaEntry } from "../model/entry-names";
export type { BucketRow } from "./tables/bucket-row";
export type { EntryRow } from "./tables/entries";

/** Entry info as the API returns it (exactly these 7 keys). */
export interface EntryInfo {
  name: string;
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number;
  latest_record: number;
  status: "READY" | "DELETING";
}

/** GET /b/:bucket as the API returns it. */
export interface BucketDetails {
  info: BucketInfo;
  settings: BucketSettings;
  entries: EntryInfo[];
}

/** Bucket info as the API returns it (exactly these 7 keys). */
export interface BucketInfo {
  name: string;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  is_provisioned: boolean;
  status: "READY" | "DELETING";
}

/**
 * A rename keeps an entry's kind: attachments move only with their parent, and a plain entry never
 * becomes attachments (it would vanish from listings, removals and FIFO eviction). Null when allowed.
 */
export function renameKindError(entryName: string, newName: string): ErrorInfo | null {
  if (isMetaEntry(entryName)) {
    return { status: 409, message: `System entry '${entryName}' can be renamed only with its parent entry` };
  }
  if (isMetaEntry(newName)) return { status: 422, message: `Entry '${entryName}' can't be renamed to system entry '${newName}'` };
  return null;
}

export function bucketSettings(row: BucketRow): BucketSettings {
  return {
    max_block_size: row.max_block_size,
    max_block_records: row.max_block_records,
    quota_type: row.quota_type,
    quota_size: row.quota_size,
  };
}

/** The visible entries (no `$meta`), by name. */
export function entryInfos(entries: EntriesTable): EntryInfo[] {
  return entries
    .all()
    .filter((entry) => !isMetaEntry(entry.name))
    .map((entry) => ({
      name: entry.name,
      size: entry.size,
      record_count: entry.record_count,
      block_count: entry.block_count,
      oldest_record: entry.oldest_record ?? 0,
      latest_record: entry.latest_record ?? 0,
      status: "READY" as const,
    }));
}

/** Bucket usage: counts and time bounds over visible entries, size over all entries. */
export function bucketInfo(row: BucketRow, entries: EntriesTable): BucketInfo {
  const usage = entries.usage();
  return {
    name: row.name,
    entry_count: usage.entryCount,
    size: usage.size,
    oldest_record: usage.oldest ?? 0,
    latest_record: usage.latest ?? 0,
    is_provisioned: row.is_provisioned === 1,
    status: "READY",
  };
}

export function bucketDetails(row: BucketRow, entries: EntriesTable): BucketDetails {
  return { info: bucketInfo(row, entries), settings: bucketSettings(row), entries: entryInfos(entries) };
}
