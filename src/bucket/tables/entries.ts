/**
 * The only SQL on `entries`: an entry's id and name and its stats, maintained incrementally (a
 * batch of records updates each touched entry once).
 */

import type { TableCopySpec } from "./table-copy";

/** How bucket rename copies `entries` to the object of the new name. */
export const ENTRIES_COPY: TableCopySpec = {
  table: "entries",
  key: ["id"],
  columns: ["id", "name", "size", "record_count", "block_count", "oldest_record", "latest_record"],
};

export interface EntryRef {
  id: number;
  name: string;
}

export interface EntryRow extends EntryRef {
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number | null;
  latest_record: number | null;
}

/** Changes of an entry's stats by one batch of new records. */
export interface EntryDelta {
  size: number;
  records: number;
  minTs: number;
  maxTs: number;
}

/** Usage over the visible entries (counts, time bounds) and all of them (size). */
export interface EntriesUsage {
  size: number;
  entryCount: number;
  oldest: number | null;
  latest: number | null;
  /** Records and blocks of the visible entries (the usage snapshot of `$system`). */
  records: number;
  blocks: number;
}

const ENTRY_COLUMNS = "id, name, size, record_count, block_count, oldest_record, latest_record";
const IS_ATTACHMENTS = "(name = '$meta' OR name LIKE '%/$meta')";
/** An entry and all its descendants (names never contain LIKE-safe text, so no LIKE here). */
const SUBTREE = "(name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/')";

export class EntriesTable {
  constructor(private readonly sql: SqlStorage) {}

  byName(name: string): EntryRef | undefined {
    return this.sql.exec<{ id: number; name: string }>("SELECT id, name FROM entries WHERE name = ?", name).toArray()[0];
  }

  byId(id: number): EntryRef | undefined {
    return this.sql.exec<{ id: number; name: string }>("SELECT id, name FROM entries WHERE id = ?", id).toArray()[0];
  }

  /** An entry with its latest ready timestamp (a record after it cannot be a duplicate). */
  latestOf(name: string): (EntryRef & { latestRecord: number | null }) | undefined {
    const row = this.sql
      .exec<{ id: number; name: string; latest_record: number | null }>(
        "SELECT id, name, latest_record FROM entries WHERE name = ?",
        name,
      )
      .toArray()[0];
    return row && { id: row.id, name: row.name, latestRecord: row.latest_record };
  }

  insertIfMissing(name: string): void {
    this.sql.exec("INSERT OR IGNORE INTO entries (name) VALUES (?)", name);
  }

  all(): EntryRow[] {
    return this.sql
      .exec<{
        id: number;
        name: string;
        size: number;
        record_count: number;
        block_count: number;
        oldest_record: number | null;
        latest_record: number | null;
      }>(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY name`)
      .toArray()
      .map((row) => ({ ...row }));
  }

  refs(): EntryRef[] {
    return this.sql.exec<{ id: number; name: string }>("SELECT id, name FROM entries ORDER BY name").toArray();
  }

  subtree(name: string): EntryRef[] {
    return this.sql
      .exec<{ id: number; name: string }>(`SELECT id, name FROM entries WHERE ${SUBTREE} ORDER BY name`, name)
      .toArray();
  }

  rename(id: number, newName: string): void {
    this.sql.exec("UPDATE entries SET name = ? WHERE id = ?", newName, id);
  }

  delete(id: number): void {
    this.sql.exec("DELETE FROM entries WHERE id = ?", id);
  }

  clear(): void {
    this.sql.exec("DELETE FROM entries");
  }

  /** Adds a batch of new records to an entry's stats (one row written per entry per batch). */
  addRecords(entryId: number, delta: EntryDelta): void {
    this.sql.exec(
      `UPDATE entries SET size = size + ?1, record_count = record_count + ?2,
         oldest_record = min(coalesce(oldest_record, ?3), ?3), latest_record = max(coalesce(latest_record, ?4), ?4)
       WHERE id = ?5`,
      delta.size,
      delta.records,
      delta.minTs,
      delta.maxTs,
      entryId,
    );
  }

  removeRecords(entryId: number, size: number, records: number): void {
    this.sql.exec("UPDATE entries SET size = size - ?, record_count = record_count - ? WHERE id = ?", size, records, entryId);
  }

  addSize(entryId: number, delta: number): void {
    this.sql.exec("UPDATE entries SET size = size + ? WHERE id = ?", delta, entryId);
  }

  addBlocks(entryId: number, delta: number): void {
    this.sql.exec("UPDATE entries SET block_count = block_count + ? WHERE id = ?", delta, entryId);
  }

  setTimeBounds(entryId: number, oldest: number | null, latest: number | null): void {
    this.sql.exec("UPDATE entries SET oldest_record = ?, latest_record = ? WHERE id = ?", oldest, latest, entryId);
  }

  /** Oldest record over some entries (a continuous query without start begins there). */
  oldestOf(ids: number[]): number | null {
    if (ids.length === 0) return null;
    return this.sql
      .exec<{ oldest: number | null }>(
        `SELECT min(oldest_record) AS oldest FROM entries WHERE id IN (${ids.map(() => "?").join(",")})`,
        ...ids,
      )
      .one().oldest;
  }

  usage(): EntriesUsage {
    const row = this.sql
      .exec<{
        size: number | null;
        entry_count: number;
        oldest: number | null;
        latest: number | null;
        records: number | null;
        blocks: number | null;
      }>(
        `SELECT (SELECT sum(size) FROM entries) AS size, count(*) AS entry_count, min(oldest_record) AS oldest,
           max(latest_record) AS latest, sum(record_count) AS records, sum(block_count) AS blocks
         FROM entries WHERE NOT ${IS_ATTACHMENTS}`,
      )
      .one();
    return {
      size: row.size ?? 0,
      entryCount: row.entry_count,
      oldest: row.oldest,
      latest: row.latest,
      records: row.records ?? 0,
      blocks: row.blocks ?? 0,
    };
  }

  /** Stored size of every entry. */
  totalSize(): number {
    return this.sql.exec<{ size: number | null }>("SELECT sum(size) AS size FROM entries").one().size ?? 0;
  }

  /** Bytes of `$meta` entries: FIFO never evicts them. */
  attachmentSize(): number {
    return (
      this.sql.exec<{ size: number | null }>(`SELECT sum(size) AS size FROM entries WHERE ${IS_ATTACHMENTS}`).one().size ?? 0
    );
  }

  /** Bytes FIFO eviction could free: everything but `$meta` entries. */
  evictableSize(): number {
    return (
      this.sql.exec<{ size: number | null }>(`SELECT sum(size) AS size FROM entries WHERE NOT ${IS_ATTACHMENTS}`).one().size ?? 0
    );
  }

  /** Ids of `$meta` entries (FIFO skips their blocks). */
  attachmentIds(): number[] {
    return this.sql
      .exec<{ id: number }>(`SELECT id FROM entries WHERE ${IS_ATTACHMENTS}`)
      .toArray()
      .map((row) => row.id);
  }
}
