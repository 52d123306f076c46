/**
 * The bucket object's SQLite schema as an ordered, append-only list of migrations. Never edit a
 * released step: add a new one. `migrate` runs inside `blockConcurrencyWhile` in the constructor
 * and records the applied version in `schema_version`.
 */

export interface SchemaMigration {
  version: number;
  description: string;
  sql: string;
}

export const SCHEMA_MIGRATIONS: readonly SchemaMigration[] = [
  {
    version: 1,
    description: "bucket settings, entries, blocks, record index, staged payloads, R2 bookkeeping",
    sql: `
      CREATE TABLE bucket (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        -- Id of this incarnation of the bucket; every R2 key lives under it, so a bucket that is
        -- deleted and created again never sees old objects.
        generation TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        max_block_size INTEGER NOT NULL,
        max_block_records INTEGER NOT NULL,
        quota_type TEXT NOT NULL,
        quota_size INTEGER NOT NULL,
        is_provisioned INTEGER NOT NULL DEFAULT 0,
        -- Set on the source object while its index is copied to the object of the new name.
        renaming_to TEXT,
        -- Set on the target object until the copy is complete (a retried rename starts over).
        renaming_from TEXT,
        -- Bytes reserved by streamed uploads in flight; counted against the quota.
        pending_bytes INTEGER NOT NULL DEFAULT 0,
        -- Bumped on every usage change; the alarm flushes to D1 while flushed < current.
        stats_version INTEGER NOT NULL DEFAULT 0,
        stats_flushed_version INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE entries (
        -- AUTOINCREMENT: ids are never reused, so R2 keys of a deleted entry never collide.
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL DEFAULT 0,
        record_count INTEGER NOT NULL DEFAULT 0,
        block_count INTEGER NOT NULL DEFAULT 0,
        oldest_record INTEGER,
        latest_record INTEGER
      );
      CREATE TABLE blocks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_id INTEGER NOT NULL,
        -- 'open': takes records, staged in SQLite; 'full': closed, staged bytes await sealing;
        -- 'sealed': staged bytes written to object_key (large records have their own objects).
        state TEXT NOT NULL,
        record_count INTEGER NOT NULL DEFAULT 0,
        content_bytes INTEGER NOT NULL DEFAULT 0,
        staged_bytes INTEGER NOT NULL DEFAULT 0,
        object_key TEXT,
        min_ts INTEGER,
        max_ts INTEGER,
        opened_at_ms INTEGER NOT NULL,
        last_write_at_ms INTEGER NOT NULL
      );
      CREATE INDEX blocks_by_entry ON blocks (entry_id, min_ts);
      CREATE INDEX blocks_by_state ON blocks (state, last_write_at_ms);
      CREATE TABLE records (
        entry_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        -- 0 while pending: a streamed record joins a block when its upload commits.
        block_id INTEGER NOT NULL,
        -- 'pending': a streamed upload holds this timestamp; 'ready': readable.
        state TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        labels TEXT NOT NULL,
        meta_len INTEGER NOT NULL,
        -- Content bytes before this record in its logical block (ReductStore's descriptor 'begin').
        block_begin INTEGER NOT NULL DEFAULT 0,
        -- 'staged' (payload in staged_payloads), 'block' (range of the block object), 'object' (own R2 object)
        location TEXT NOT NULL,
        object_key TEXT,
        object_offset INTEGER,
        lease_expires_at_ms INTEGER,
        PRIMARY KEY (entry_id, ts)
      ) WITHOUT ROWID;
      CREATE INDEX records_by_block ON records (block_id, ts);
      CREATE INDEX records_pending ON records (lease_expires_at_ms) WHERE state = 'pending';
      CREATE TABLE staged_payloads (
        entry_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (entry_id, ts)
      );
      -- R2 objects no record points to any more (evicted, removed, failed uploads), deleted by the alarm.
      CREATE TABLE r2_garbage (
        key TEXT PRIMARY KEY,
        not_before_ms INTEGER NOT NULL
      );
      -- Deleted bucket generations: the alarm removes their D1 registry row (if still that
      -- generation's) and purges their R2 prefix in pages.
      CREATE TABLE r2_purges (
        generation TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        queued_at_ms INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: "persisted query cursors, so a query survives the object being evicted",
    sql: `
      ALTER TABLE bucket ADD COLUMN last_query_id INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE queries (
        id INTEGER PRIMARY KEY,
        -- 'entry': one entry (v1 batch / single reads); 'multi': /io queries over entry patterns.
        kind TEXT NOT NULL,
        -- JSON array of entry names (kind 'entry') or patterns (kind 'multi'), resolved per read.
        entries TEXT NOT NULL,
        start_ts INTEGER,
        stop_ts INTEGER,
        continuous INTEGER NOT NULL DEFAULT 0,
        only_metadata INTEGER NOT NULL DEFAULT 0,
        strict INTEGER NOT NULL DEFAULT 0,
        when_json TEXT,
        ttl_s INTEGER NOT NULL,
        last_access_ms INTEGER NOT NULL,
        -- JSON {entry name: {after: last examined ts, state: evaluator snapshot}}.
        cursors TEXT NOT NULL DEFAULT '{}',
        -- Set once every record was delivered: later reads answer 204 until the TTL ends.
        finished INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 3,
    description: "rename attempts: an id per attempt and a heartbeat, so a stalled rename is abandoned",
    sql: `
      ALTER TABLE bucket ADD COLUMN rename_attempt TEXT;
      ALTER TABLE bucket ADD COLUMN renaming_since_ms INTEGER;
    `,
  },
  {
    version: 4,
    description:
      "rename hand-over: a durable finishing phase on the target, remembered attempts on the source, registry-only purges",
    sql: `
      ALTER TABLE bucket ADD COLUMN rename_finishing INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE r2_purges ADD COLUMN purge_objects INTEGER NOT NULL DEFAULT 1;
      -- Rename attempts this object handed over, so a repeated hand-over call is answered the same.
      CREATE TABLE renamed_out (
        attempt TEXT PRIMARY KEY,
        new_name TEXT NOT NULL,
        at_ms INTEGER NOT NULL
      );
    `,
  },
  {
    version: 5,
    description: "size of each sealed block object, so readers choose between a whole-block and ranged gets",
    sql: "ALTER TABLE blocks ADD COLUMN object_bytes INTEGER;",
  },
  {
    version: 6,
    description: "block indexes that writes do not rewrite: find an entry's open block without scanning its blocks",
    sql: `
      -- (entry_id, min_ts) did not serve the open-block lookup, which scanned every block of the
      -- entry on each write; (state, last_write_at_ms) was rewritten on every record.
      DROP INDEX blocks_by_entry;
      DROP INDEX blocks_by_state;
      CREATE INDEX blocks_open ON blocks (entry_id) WHERE state = 'open';
      CREATE INDEX blocks_unsealed ON blocks (state) WHERE state <> 'sealed';
    `,
  },
  {
    version: 7,
    description: "packed record index: records live in chunk rows (one row per batch, not per record)",
    sql: `
      -- Durable Object SQLite bills every row and index entry written: a row per record (plus its
      -- staged payload row and their indexes) cost ~11 billed rows per record. A chunk holds the
      -- descriptors of many records of one entry (JSON, see record-chunks.ts) and the staged bytes
      -- of those not yet sealed. Chunks of an entry cover disjoint time ranges.
      CREATE TABLE record_chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entry_id INTEGER NOT NULL,
        min_ts INTEGER NOT NULL,
        max_ts INTEGER NOT NULL,
        record_count INTEGER NOT NULL,
        -- [[ts, block_id, size, content_type, labels, meta_len, block_begin, loc, key, offset], …]
        -- loc 0 staged (offset into payload), 1 block (offset into the block's object), 2 own object (key)
        descriptors TEXT NOT NULL,
        payload BLOB
      );
      CREATE INDEX record_chunks_by_entry ON record_chunks (entry_id, min_ts);
      -- Streamed uploads in flight: they hold their timestamp and quota until committed or expired.
      CREATE TABLE pending_records (
        entry_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        labels TEXT NOT NULL,
        object_key TEXT NOT NULL,
        lease_expires_at_ms INTEGER NOT NULL,
        PRIMARY KEY (entry_id, ts)
      ) WITHOUT ROWID;
      CREATE INDEX pending_records_by_key ON pending_records (object_key);
      CREATE INDEX pending_records_by_lease ON pending_records (lease_expires_at_ms);
      INSERT INTO pending_records (entry_id, ts, size, content_type, labels, object_key, lease_expires_at_ms)
        SELECT entry_id, ts, size, content_type, labels, object_key, coalesce(lease_expires_at_ms, 0)
        FROM records WHERE state = 'pending' AND object_key IS NOT NULL;
      -- Existing records become one chunk each (disjoint, since (entry_id, ts) was unique); new
      -- writes append to or merge with them.
      INSERT INTO record_chunks (entry_id, min_ts, max_ts, record_count, descriptors, payload)
        SELECT r.entry_id, r.ts, r.ts, 1,
          json_array(json_array(r.ts, r.block_id, r.size, r.content_type, json(r.labels), r.meta_len, r.block_begin,
            CASE r.location WHEN 'staged' THEN 0 WHEN 'block' THEN 1 ELSE 2 END,
            CASE r.location WHEN 'object' THEN r.object_key ELSE NULL END,
            CASE r.location WHEN 'staged' THEN 0 ELSE coalesce(r.object_offset, 0) END)),
          CASE r.location WHEN 'staged' THEN p.payload ELSE NULL END
        FROM records r LEFT JOIN staged_payloads p ON p.entry_id = r.entry_id AND p.ts = r.ts
        WHERE r.state = 'ready'
        ORDER BY r.entry_id, r.ts;
      DROP TABLE records;
      DROP TABLE staged_payloads;
      -- One row per ready record, for inspection (tests, scripts/lib/state-inspect.mjs); never written.
      CREATE VIEW ready_records AS
        SELECT c.entry_id AS entry_id, json_extract(d.value, '$[0]') AS ts, json_extract(d.value, '$[1]') AS block_id,
          json_extract(d.value, '$[2]') AS size, json_extract(d.value, '$[3]') AS content_type,
          json_extract(d.value, '$[4]') AS labels, json_extract(d.value, '$[5]') AS meta_len,
          CASE json_extract(d.value, '$[7]') WHEN 0 THEN 'staged' WHEN 1 THEN 'block' ELSE 'object' END AS location,
          CASE json_extract(d.value, '$[7]')
            WHEN 2 THEN json_extract(d.value, '$[8]')
            WHEN 1 THEN (SELECT b.object_key FROM blocks b WHERE b.id = json_extract(d.value, '$[1]'))
          END AS object_key,
          c.id AS chunk_id
        FROM record_chunks c, json_each(c.descriptors) d;
    `,
  },
  {
    version: 8,
    description: "queries bound to the bucket generation they were created on",
    sql: `
      -- A query of a deleted or renamed-away bucket never matches the bucket created after it.
      ALTER TABLE queries ADD COLUMN generation TEXT NOT NULL DEFAULT '';
      UPDATE queries SET generation = coalesce((SELECT generation FROM bucket WHERE id = 1), '');
    `,
  },
  {
    version: 9,
    description: "a version per query position: reads compare it instead of the whole position",
    sql: `
      -- Bumped by every committed batch; a read commits only from the version it read.
      ALTER TABLE queries ADD COLUMN cursor_version INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 10,
    description: "lifecycle policies of this bucket and how far each has processed",
    sql: `
      -- D1 holds the registry; this is the object's copy with each policy's progress, so a run
      -- resumes where the last one stopped after eviction.
      CREATE TABLE lifecycle_policies (
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        next_run_at_ms INTEGER NOT NULL,
        processed_until_us INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 11,
    description: "lifecycle windows run in bounded slices: window end, cursor and count so far",
    sql: `
      ALTER TABLE lifecycle_policies ADD COLUMN window_until_us INTEGER;
      ALTER TABLE lifecycle_policies ADD COLUMN cursor_entry TEXT;
      ALTER TABLE lifecycle_policies ADD COLUMN cursor_ts INTEGER;
      ALTER TABLE lifecycle_policies ADD COLUMN window_count INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 12,
    description: "usage traffic per window and entry, until the window is handed to D1",
    sql: `
      -- Writes add to it in their own transaction; reads are added from memory when the window
      -- ends. Entry '' marks a window in which the bucket changed without traffic.
      CREATE TABLE usage_traffic (
        window_end_ms INTEGER NOT NULL,
        entry TEXT NOT NULL,
        write_bytes INTEGER NOT NULL DEFAULT 0,
        records_written INTEGER NOT NULL DEFAULT 0,
        read_bytes INTEGER NOT NULL DEFAULT 0,
        records_read INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (window_end_ms, entry)
      ) WITHOUT ROWID;
      -- The stats_version last covered by a usage window (a higher one: the bucket changed since),
      -- and when stats last changed, which places a change without traffic in its window.
      ALTER TABLE bucket ADD COLUMN usage_stats_version INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE bucket ADD COLUMN stats_changed_at_ms INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 13,
    description: "a lifecycle run spans its windows: its range, settings and condition state",
    sql: `
      -- Set while a run is in progress: the data time it covers and, as JSON, the settings it
      -- started with and each entry's \`when\` state, so $limit, $each_n, $each_t and $gate count
      -- across slices, windows and eviction as one remove query would.
      ALTER TABLE lifecycle_policies ADD COLUMN run_from_us INTEGER;
      ALTER TABLE lifecycle_policies ADD COLUMN run_until_us INTEGER;
      ALTER TABLE lifecycle_policies ADD COLUMN run_state TEXT;
    `,
  },
  {
    version: 14,
    description: "replications with this bucket as source: settings, sender state and the log of writes to send",
    sql: `
      -- D1 holds the registry; this is the object's copy with what the sender needs across alarms.
      CREATE TABLE replications (
        name TEXT PRIMARY KEY,
        settings TEXT NOT NULL,
        -- Snapshot of the \`when\` evaluator, so $each_n, $limit, … count across writes.
        when_state TEXT,
        -- Rows of this replication in replication_log (kept here: counting a large log is slow).
        log_count INTEGER NOT NULL DEFAULT 0,
        -- No request before this time; the delay doubles on every failed attempt.
        backoff_until_ms INTEGER NOT NULL DEFAULT 0,
        backoff_ms INTEGER NOT NULL DEFAULT 0,
        -- The target bucket was found (or created) and its x-reduct-api read.
        target_checked INTEGER NOT NULL DEFAULT 0,
        target_api TEXT,
        -- Whether the last attempt reached the target.
        is_active INTEGER NOT NULL DEFAULT 0,
        -- JSON list of per-minute counters of the last hour.
        diagnostics TEXT NOT NULL DEFAULT '[]'
      );
      -- Acknowledged writes and label updates to send, oldest first; written in the write's own
      -- transaction, deleted once the target acknowledged them.
      CREATE TABLE replication_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        replication TEXT NOT NULL,
        entry TEXT NOT NULL,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        logged_at_ms INTEGER NOT NULL
      );
      CREATE INDEX replication_log_order ON replication_log (replication, seq);
      CREATE INDEX replication_log_by_entry ON replication_log (replication, entry, seq);
    `,
  },
  {
    version: 15,
    description: "a replication counts the attempts its target refused in a row",
    sql: `
      -- Consecutive attempts refused with a 4xx that cannot heal; any other outcome resets it. A
      -- batch is dropped after enough of them, however long an earlier outage made the backoff.
      ALTER TABLE replications ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 16,
    description: "a replication's epoch: new with the replication and with every change of its settings",
    sql: `
      -- A send applies its outcome only if the epoch it started with is still the row's: one in
      -- flight while the replication was replaced or changed leaves the new one alone.
      ALTER TABLE replications ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
    `,
  },
];

export const LATEST_SCHEMA_VERSION = SCHEMA_MIGRATIONS[SCHEMA_MIGRATIONS.length - 1]?.version ?? 0;

/** Applies every migration newer than the stored version, each in its own transaction. */
export function migrate(storage: DurableObjectStorage, migrations: readonly SchemaMigration[] = SCHEMA_MIGRATIONS): number {
  const sql = storage.sql;
  sql.exec("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
  const row = sql.exec<{ version: number }>("SELECT version FROM schema_version WHERE id = 1").toArray()[0];
  let current = row?.version ?? 0;
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    if (migration.version !== current + 1) {
      throw new Error(`schema migration ${migration.version} follows ${current}: migrations must be consecutive`);
    }
    storage.transactionSync(() => {
      sql.exec(migration.sql);
      sql.exec(
        "INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        migration.version,
      );
    });
    current = migration.version;
  }
  return current;
}
