// Read-only inspection of a stopped server's persisted local state (`<RS_DATA_PATH>/v3`, the layout
// of `wrangler dev --persist-to` that `npm start` keeps):
// which R2 object keys exist (miniflare's R2 metadata: the keys R2.list() would return, not blob
// files) and which keys the bucket objects' indexes know about. Only ever run while the server is
// not running: the SQLite files (with their -wal/-shm) are copied to a scratch directory first and
// opened there, so nothing under the state directory is written, not even a lock.
// The index tables read here (record_chunks via the ready_records view, pending_records, blocks, r2_garbage, r2_purges, entries) are the bucket
// object's schema (src/bucket/schema.ts); when they are missing the check reports "not checked".
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";

/** The rows `sql` selects, as `sqlite3 -json` prints them (its columns are the caller's `Row`). */
function sqliteJson<Row>(dbPath: string, sql: string): Row[] {
  const out = execFileSync("sqlite3", ["-json", dbPath, sql], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  return out.trim() ? (JSON.parse(out) as Row[]) : [];
}

/** A row of a bucket object's `entries` table. */
export interface EntryRow {
  id: number;
  name: string;
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number | null;
  latest_record: number | null;
}

/** A ready record of a bucket object's index. */
export interface RecordRow {
  entry_id: number;
  ts: number;
  size: number;
  meta_len: number;
  state: "ready";
}

export interface GarbageItem {
  key: string;
  notBefore: number;
}

export interface BucketState {
  generation: string;
  entries: EntryRow[];
  records: Map<string, RecordRow[]>;
}

export interface InspectedState {
  ok: true;
  /** R2 key → size. */
  r2: Map<string, number>;
  tracked: Set<string>;
  pendingKeys: Set<string>;
  garbage: GarbageItem[];
  purges: string[];
  pendingRecords: number;
  buckets: Map<string, BucketState>;
}

export type StateInspection = InspectedState | { ok: false; reason: string };

export interface ObjectClasses {
  total: number;
  referenced: number;
  queued: number;
  untracked: string[];
  missing: string[];
}

/** Copies `<dir>/<name>.sqlite` and its -wal/-shm into `scratch`; returns the copy's path. */
function copyDb(dir: string, file: string, scratch: string): string {
  for (const suffix of ["", "-wal", "-shm"]) {
    const from = path.join(dir, `${file}${suffix}`);
    if (existsSync(from)) copyFileSync(from, path.join(scratch, `${file}${suffix}`));
  }
  return path.join(scratch, file);
}

const dbFiles = (dir: string): string[] =>
  existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite") : [];

/**
 * Returns { ok: true, r2: Map key → size, tracked: Set of keys the indexes reference (ready records,
 * sealed blocks), pendingKeys: keys of uploads in flight, garbage: [{ key, notBefore }], purges: [generation], pendingRecords,
 * buckets: Map name → { entries: [...], records: Map entry → [{ ts, size, meta_len, state }] } }
 * or { ok: false, reason } when the layout is not the expected one.
 */
export function inspectState(dataPath: string, scratchRoot: string): StateInspection {
  const scratch = path.join(scratchRoot, `inspect-${Date.now()}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const r2Dir = path.join(dataPath, "v3", "r2", "miniflare-R2BucketObject");
    const doDir = path.join(dataPath, "v3", "do", "reduct-edge-BucketObject");
    if (!existsSync(doDir)) return { ok: false, reason: `no bucket objects under ${doDir}` };
    const r2 = new Map<string, number>();
    for (const file of dbFiles(r2Dir)) {
      const db = copyDb(r2Dir, file, scratch);
      for (const row of sqliteJson<{ key: string; size: number }>(db, "SELECT key, size FROM _mf_objects"))
        r2.set(row.key, row.size);
    }
    const tracked = new Set<string>();
    const pendingKeys = new Set<string>();
    const garbage: GarbageItem[] = [];
    const purges: string[] = [];
    let pendingRecords = 0;
    const buckets = new Map<string, BucketState>();
    for (const file of dbFiles(doDir)) {
      const db = copyDb(doDir, file, scratch);
      const tables = new Set(
        sqliteJson<{ name: string }>(db, "SELECT name FROM sqlite_master WHERE type = 'table'").map((row) => row.name),
      );
      for (const table of ["bucket", "entries", "record_chunks", "pending_records", "blocks", "r2_garbage", "r2_purges"]) {
        if (!tables.has(table)) return { ok: false, reason: `bucket object ${file} has no table '${table}'` };
      }
      const bucketRow = sqliteJson<{ name: string; generation: string }>(db, "SELECT name, generation FROM bucket")[0];
      // ready_records: the schema's view with one row per record of the packed index (record_chunks).
      for (const row of sqliteJson<{ object_key: string }>(
        db,
        "SELECT object_key FROM ready_records WHERE object_key IS NOT NULL",
      )) {
        tracked.add(row.object_key);
      }
      for (const row of sqliteJson<{ object_key: string }>(db, "SELECT object_key FROM pending_records"))
        pendingKeys.add(row.object_key);
      for (const row of sqliteJson<{ object_key: string }>(db, "SELECT object_key FROM blocks WHERE object_key IS NOT NULL"))
        tracked.add(row.object_key);
      for (const row of sqliteJson<{ key: string; not_before_ms: number }>(db, "SELECT key, not_before_ms FROM r2_garbage")) {
        garbage.push({ key: row.key, notBefore: row.not_before_ms });
      }
      for (const row of sqliteJson<{ generation: string }>(db, "SELECT generation FROM r2_purges")) purges.push(row.generation);
      pendingRecords += sqliteJson<{ n: number }>(db, "SELECT count(*) AS n FROM pending_records")[0]?.n ?? 0;
      if (bucketRow) {
        const entries = sqliteJson<EntryRow>(
          db,
          "SELECT id, name, size, record_count, block_count, oldest_record, latest_record FROM entries",
        );
        const records = new Map<string, RecordRow[]>();
        for (const entry of entries) records.set(entry.name, []);
        const names = new Map(entries.map((entry) => [entry.id, entry.name]));
        for (const row of sqliteJson<RecordRow>(
          db,
          "SELECT entry_id, ts, size, meta_len, 'ready' AS state FROM ready_records ORDER BY entry_id, ts",
        )) {
          const name = names.get(row.entry_id);
          if (name !== undefined) records.get(name)?.push(row);
        }
        buckets.set(bucketRow.name, { generation: bucketRow.generation, entries, records });
      }
    }
    return { ok: true, r2, tracked, pendingKeys, garbage, purges, pendingRecords, buckets };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Classifies every R2 key: referenced by an index, queued for deletion (r2_garbage, an upload whose
 * lease has not run out, or under a purged generation) or untracked (an orphan nothing will ever delete).
 */
export function classifyObjects(state: InspectedState): ObjectClasses {
  const garbageKeys = new Set(state.garbage.map((item) => item.key));
  let referenced = 0;
  let queued = 0;
  const untracked: string[] = [];
  for (const key of state.r2.keys()) {
    if (state.tracked.has(key)) referenced++;
    else if (
      garbageKeys.has(key) ||
      state.pendingKeys.has(key) ||
      state.purges.some((generation) => key.startsWith(`${generation}/`))
    )
      queued++;
    else untracked.push(key);
  }
  const missing = [...state.tracked].filter((key) => !state.r2.has(key));
  return { total: state.r2.size, referenced, queued, untracked, missing };
}
