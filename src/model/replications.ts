/**
 * A replication as the edge and the source bucket's object share it. The edge validates settings
 * and keeps the registry in D1 (it spans buckets); after every change it hands the source bucket's
 * object the replications whose `src_bucket` it is, which log matching writes and send them.
 */

export type ReplicationMode = "enabled" | "paused" | "disabled";
export type ReplicationCompression = "none" | "gzip" | "zstd";

/** Validated settings, as ReductStore names them. `dst_token` is stored but never shown back. */
export interface ReplicationSettings {
  src_bucket: string;
  dst_bucket: string;
  /** Base URL of the target instance, e.g. `https://cloud.example.com/` (no `/api/v1`). */
  dst_host: string;
  dst_token?: string;
  /** Entry globs (`*`, `**`, `!`); empty means every entry. */
  entries: string[];
  when?: unknown;
  dst_prefix: string;
  mode: ReplicationMode;
  compression: ReplicationCompression;
}

export interface ReplicationSpec {
  name: string;
  settings: ReplicationSettings;
}

/** Errors of one hour by HTTP status (0 when the target could not be reached). */
export interface ReplicationErrors {
  [status: string]: { count: number; last_message: string };
}

/** What the source object reports for one replication it runs. */
export interface ReplicationStatus {
  name: string;
  /** Records (writes and label updates) logged and not yet delivered. */
  pending_records: number;
  /** Whether the target answered the last attempt. */
  is_active: boolean;
  diagnostics: { hourly: { ok: number; errored: number; errors: ReplicationErrors } };
}
