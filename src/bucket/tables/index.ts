/** The table modules of one bucket object's SQLite, opened together. */
import { BlocksTable } from "./blocks";
import { BucketRowTable } from "./bucket-row";
import { EntriesTable } from "./entries";
import { LifecyclePoliciesTable } from "./lifecycle-policies";
import { PendingRecordsTable } from "./pending-records";
import { QueriesTable } from "./queries";
import { R2GarbageTable } from "./r2-garbage";
import { R2PurgesTable } from "./r2-purges";
import { RecordChunksTable } from "./record-chunks";
import { RenamedOutTable } from "./renamed-out";
import { ReplicationLogTable } from "./replication-log";
import { ReplicationsTable } from "./replications";
import { UsageTrafficTable } from "./usage-traffic";

export interface BucketTables {
  bucket: BucketRowTable;
  entries: EntriesTable;
  blocks: BlocksTable;
  chunks: RecordChunksTable;
  pending: PendingRecordsTable;
  queries: QueriesTable;
  garbage: R2GarbageTable;
  purges: R2PurgesTable;
  renamedOut: RenamedOutTable;
  lifecyclePolicies: LifecyclePoliciesTable;
  usageTraffic: UsageTrafficTable;
  replications: ReplicationsTable;
  replicationLog: ReplicationLogTable;
}

export function openTables(sql: SqlStorage): BucketTables {
  return {
    bucket: new BucketRowTable(sql),
    entries: new EntriesTable(sql),
    blocks: new BlocksTable(sql),
    chunks: new RecordChunksTable(sql),
    pending: new PendingRecordsTable(sql),
    queries: new QueriesTable(sql),
    garbage: new R2GarbageTable(sql),
    purges: new R2PurgesTable(sql),
    renamedOut: new RenamedOutTable(sql),
    lifecyclePolicies: new LifecyclePoliciesTable(sql),
    usageTraffic: new UsageTrafficTable(sql),
    replications: new ReplicationsTable(sql),
    replicationLog: new ReplicationLogTable(sql),
  };
}

/**
 * Removes every entry, block, record chunk, upload in flight and query, the usage traffic not yet
 * in D1 (lost with the bucket's name), the replications with their logs, and the bucket row (bucket deletion or rename away). r2_garbage stays: it holds intents of puts still in flight, which must
 * be deleted once they land.
 */
export function clearBucketData(tables: BucketTables): void {
  tables.entries.clear();
  tables.blocks.clear();
  tables.chunks.clear();
  tables.pending.clear();
  tables.queries.clear();
  tables.lifecyclePolicies.clear();
  tables.usageTraffic.clear();
  tables.replicationLog.clear();
  tables.replications.clear();
  tables.bucket.clear();
}
