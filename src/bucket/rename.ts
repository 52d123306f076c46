/**
 * Bucket rename moves the object's index to the object addressed by the new name (objects are
 * addressed by bucket name). R2 payloads stay where they are: their keys live under the bucket
 * generation, which travels with the index. Tables are copied in pages keyed by primary key, with
 * a byte budget so staged payloads never make one RPC message too large (see tables/table-copy.ts).
 */

import { BLOCKS_COPY } from "./tables/blocks";
import { ENTRIES_COPY } from "./tables/entries";
import { LIFECYCLE_POLICIES_COPY } from "./tables/lifecycle-policies";
import { R2_GARBAGE_COPY } from "./tables/r2-garbage";
import { R2_PURGES_COPY } from "./tables/r2-purges";
import { RECORD_CHUNKS_COPY } from "./tables/record-chunks";
import { REPLICATION_LOG_COPY } from "./tables/replication-log";
import { REPLICATIONS_COPY } from "./tables/replications";
import type { TableCopySpec } from "./tables/table-copy";

export { type ExportPage, exportPage, importRows } from "./tables/table-copy";

/**
 * Every table that belongs to a bucket, in copy order. `bucket` itself is handled separately.
 * Uploads in flight stay behind: their commit goes to the old name and is refused, so a copied
 * reservation would hold its timestamp and quota in the new bucket until its lease ran out. Their
 * objects' intent rows travel with `r2_garbage`, so the new bucket deletes what they leave behind.
 * Queries stay behind too (bound to the old name's generation). Lifecycle policies travel with
 * their progress; the new bucket then moves them to its name in D1 (duties/lifecycle-rename.ts).
 * Replications travel with their logs and sender state, so no acknowledged write is lost.
 */
export const BUCKET_TABLES: readonly TableCopySpec[] = [
  ENTRIES_COPY,
  BLOCKS_COPY,
  RECORD_CHUNKS_COPY,
  R2_GARBAGE_COPY,
  R2_PURGES_COPY,
  LIFECYCLE_POLICIES_COPY,
  REPLICATIONS_COPY,
  REPLICATION_LOG_COPY,
];

/** A rename with no progress for this long is abandoned: both names become usable again. */
export const RENAME_STALE_MS = 60_000;
