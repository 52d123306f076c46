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

function sqliteJson(dbPath, sql) {
  const out = execFileSync("sqlite3", ["-json", dbPath, sql], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  return out.trim() ? JSON.parse(out) : [];
}

/** Copies `<dir>/<name>.sqlite` and its -wal/-shm into `scratch`; returns the copy's path. */
function copyDb(dir, file, scratch) {
  for (const suffix of ["", "-wal", "-shm"]) {
    const from = path.join(dir, `${file}${suffix}`);
    if (existsSync(from)) copyFileSync(from, path.join(scratch, `${file}${suffix}`));
  }
  return path.join(scratch, file);
}

const dbFiles = (dir) =>
  existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite") : [];

/**
 * Returns { ok: true, r2: Map key → size, tracked: Set of keys the indexes reference (ready records,
 * sealed blocks), pendingKeys: keys of uploads in flight, garbage: [{ key, notBefore }], purges: [generation], pendingRecords,
 * buckets: Map name → { entries: [...], records: Map entry → [{ ts, size, meta_len, state }] } }
 * or { ok: false, reason } when the layout is not the expected one.
 */
export function inspectState(dataPath, scratchRoot) {
  const scratch = path.join(scratchRoot, `inspect-${Date.now()}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const r2Dir = path.join(dataPath, "v3", "r2", "miniflare-R2BucketObject");
    const doDir = path.join(dataPath, "v3", "do", "reduct-edge-BucketObject");
    if (!existsSync(doDir)) return { ok: false, reason: `no bucket objects under ${doDir}` };
    const r2 = new Map();
    for (const file of dbFiles(r2Dir)) {
      const db = copyDb(r2Dir, file, scratch);
      for (const row of sqliteJson(db, "SELECT key, size FROM _mf_objects")) r2.set(row.key, row.size);
    }
    const tracked = new Set();
    const pendingKeys = new Set();
    const garbage = [];
    const purges = [];
    let pendingRecords = 0;
    const buckets = new Map();
    for (const file of dbFiles(doDir)) {
      const db = copyDb(doDir, file, scratch);
      const tables = new Set(sqliteJson(db, "SELECT name FROM sqlite_master WHERE type = 'table'").map((row) => row.name));
      for (const table of ["bucket", "entries", "record_chunks", "pending_records", "blocks", "r2_garbage", "r2_purges"]) {
        if (!tables.has(table)) return { ok: false, reason: `bucket object ${file} has no table '${table}'` };
      }
      const bucketRow = sqliteJson(db, "SELECT name, generation FROM bucket")[0];
      // ready_records: the schema's view with one row per record of the packed index (record_chunks).
      for (const row of sqliteJson(db, "SELECT object_key FROM ready_records WHERE object_key IS NOT NULL")) {
        tracked.add(row.object_key);
      }
      for (const row of sqliteJson(db, "SELECT object_key FROM pending_records")) pendingKeys.add(row.object_key);
      for (const row of sqliteJson(db, "SELECT object_key FROM blocks WHERE object_key IS NOT NULL")) tracked.add(row.object_key);
      for (const row of sqliteJson(db, "SELECT key, not_before_ms FROM r2_garbage")) {
        garbage.push({ key: row.key, notBefore: row.not_before_ms });
      }
      for (const row of sqliteJson(db, "SELECT generation FROM r2_purges")) purges.push(row.generation);
      pendingRecords += sqliteJson(db, "SELECT count(*) AS n FROM pending_records")[0]?.n ?? 0;
      if (bucketRow) {
        const entries = sqliteJson(
          db,
          "SELECT id, name, size, record_count, block_count, oldest_record, latest_record FROM entries",
        );
        const records = new Map();
        for (const entry of entries) records.set(entry.name, []);
        const names = new Map(entries.map((entry) => [entry.id, entry.name]));
        for (const row of sqliteJson(
          db,
          "SELECT entry_id, ts, size, meta_len, 'ready' AS state FROM ready_records ORDER BY entry_id, ts",
        )) {
          records.get(names.get(row.entry_id))?.push(row);
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
export function classifyObjects(state) {
  const garbageKeys = new Set(state.garbage.map((item) => item.key));
  let referenced = 0;
  let queued = 0;
  const untracked = [];
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
