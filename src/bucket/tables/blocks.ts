/** The only SQL on `blocks`: logical blocks of an entry, their counters and sealing state. */

import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `blocks` to the object of the new name. */
export const BLOCKS_COPY: TableCopySpec = {
  table: "blocks",
  key: ["id"],
  columns: [
    "id",
    "entry_id",
    "state",
    "record_count",
    "content_bytes",
    "staged_bytes",
    "object_key",
    "object_bytes",
    "min_ts",
    "max_ts",
    "opened_at_ms",
    "last_write_at_ms",
  ],
};

export interface BlockRow {
  id: number;
  entry_id: number;
  state: "open" | "full" | "sealed";
  record_count: number;
  content_bytes: number;
  staged_bytes: number;
  object_key: string | null;
  object_bytes: number | null;
  min_ts: number | null;
  max_ts: number | null;
  opened_at_ms: number;
  last_write_at_ms: number;
}

type SelectedBlockRow = Omit<BlockRow, "state"> & { state: string };

const BLOCK_COLUMNS = `id, entry_id, state, record_count, content_bytes, staged_bytes, object_key, object_bytes, min_ts,
  max_ts, opened_at_ms, last_write_at_ms`;

function blockState(value: string): BlockRow["state"] {
  if (value === "open" || value === "full" || value === "sealed") return value;
  throw new Error(`block row has unknown state ${value}`);
}

function toBlock(row: SelectedBlockRow): BlockRow {
  return { ...row, state: blockState(row.state) };
}

export class BlocksTable {
  constructor(private readonly sql: SqlStorage) {}

  get(id: number): BlockRow | undefined {
    return this.sql.exec<SelectedBlockRow>(`SELECT ${BLOCK_COLUMNS} FROM blocks WHERE id = ?`, id).toArray().map(toBlock)[0];
  }

  /** The entry's open block (served by the partial index blocks_open). */
  open(entryId: number): BlockRow | undefined {
    return this.sql
      .exec<SelectedBlockRow>(`SELECT ${BLOCK_COLUMNS} FROM blocks WHERE entry_id = ? AND state = 'open'`, entryId)
      .toArray()
      .map(toBlock)[0];
  }

  objectKey(id: number): string | null {
    return (
      this.sql.exec<{ object_key: string | null }>("SELECT object_key FROM blocks WHERE id = ?", id).toArray()[0]?.object_key ??
      null
    );
  }

  /** Starts an open block and returns its id. */
  insertOpen(entryId: number, nowMs: number): number {
    this.sql.exec(
      "INSERT INTO blocks (entry_id, state, opened_at_ms, last_write_at_ms) VALUES (?, 'open', ?, ?)",
      entryId,
      nowMs,
      nowMs,
    );
    return this.sql.exec<{ id: number }>("SELECT last_insert_rowid() AS id").one().id;
  }

  /** Writes the counters a batch accumulated on a block (one row per block per batch). */
  saveCounters(block: BlockRow): void {
    this.sql.exec(
      `UPDATE blocks SET record_count = ?, content_bytes = ?, staged_bytes = ?, min_ts = ?, max_ts = ?, last_write_at_ms = ?
       WHERE id = ?`,
      block.record_count,
      block.content_bytes,
      block.staged_bytes,
      block.min_ts,
      block.max_ts,
      block.last_write_at_ms,
      block.id,
    );
  }

  setState(id: number, state: BlockRow["state"]): void {
    this.sql.exec("UPDATE blocks SET state = ? WHERE id = ?", state, id);
  }

  /** A block with nothing staged left is sealed without an object of its own. */
  markSealedWithoutObject(id: number): void {
    this.sql.exec("UPDATE blocks SET state = 'sealed', staged_bytes = 0 WHERE id = ?", id);
  }

  markSealed(id: number, key: string, objectBytes: number): void {
    this.sql.exec(
      "UPDATE blocks SET state = 'sealed', object_key = ?, object_bytes = ?, staged_bytes = 0 WHERE id = ?",
      key,
      objectBytes,
      id,
    );
  }

  shrink(id: number, records: number, contentBytes: number, stagedBytes: number): void {
    this.sql.exec(
      "UPDATE blocks SET record_count = record_count - ?, content_bytes = content_bytes - ?, staged_bytes = staged_bytes - ? WHERE id = ?",
      records,
      contentBytes,
      stagedBytes,
      id,
    );
  }

  delete(id: number): void {
    this.sql.exec("DELETE FROM blocks WHERE id = ?", id);
  }

  deleteOfEntry(entryId: number): void {
    this.sql.exec("DELETE FROM blocks WHERE entry_id = ?", entryId);
  }

  clear(): void {
    this.sql.exec("DELETE FROM blocks");
  }

  /** Object keys of an entry's sealed blocks. */
  objectKeysOf(entryId: number): string[] {
    return this.sql
      .exec<{ object_key: string | null }>("SELECT object_key FROM blocks WHERE entry_id = ?", entryId)
      .toArray()
      .flatMap((row) => (row.object_key ? [row.object_key] : []));
  }

  /** Blocks whose staged records should be written to R2 now: closed ones and idle open ones. */
  toSeal(idleBeforeMs: number, limit: number): BlockRow[] {
    return this.sql
      .exec<SelectedBlockRow>(
        `SELECT ${BLOCK_COLUMNS} FROM blocks
         WHERE state <> 'sealed' AND (state = 'full' OR (staged_bytes > 0 AND last_write_at_ms <= ?))
         ORDER BY last_write_at_ms LIMIT ?`,
        idleBeforeMs,
        limit,
      )
      .toArray()
      .map(toBlock);
  }

  /** How many blocks await sealing, and the last write of the longest-idle open block with staged bytes. */
  sealBacklog(): { full: number; idleSince: number | null } {
    const row = this.sql
      .exec<{ full: number; idle: number | null }>(
        `SELECT (SELECT count(*) FROM blocks WHERE state <> 'sealed' AND state = 'full') AS full,
                (SELECT min(last_write_at_ms) FROM blocks WHERE state <> 'sealed' AND state = 'open' AND staged_bytes > 0) AS idle`,
      )
      .one();
    return { full: row.full, idleSince: row.idle };
  }

  /** Oldest block with records outside the given entries (FIFO eviction order). */
  oldestWithRecords(excludedEntryIds: number[]): BlockRow | undefined {
    return this.sql
      .exec<SelectedBlockRow>(
        `SELECT ${BLOCK_COLUMNS} FROM blocks
         WHERE record_count > 0 AND entry_id NOT IN (SELECT value FROM json_each(?))
         ORDER BY min_ts, id LIMIT 1`,
        JSON.stringify(excludedEntryIds),
      )
      .toArray()
      .map(toBlock)[0];
  }
}
