-- Usage windows: each bucket's object adds one row per usage window in which it saw traffic or
-- changed, after the window ended (final values, so a retried write repeats the same row). The
-- `$system` object reads the rows of ended windows, writes them as `usage/<instance>/...` records
-- and deletes them, so the table holds only windows not yet reported.
CREATE TABLE usage_windows (
  bucket TEXT NOT NULL,
  window_end_ms INTEGER NOT NULL,
  write_bytes INTEGER NOT NULL DEFAULT 0,
  read_bytes INTEGER NOT NULL DEFAULT 0,
  records_written INTEGER NOT NULL DEFAULT 0,
  records_read INTEGER NOT NULL DEFAULT 0,
  written_entries INTEGER NOT NULL DEFAULT 0,
  read_entries INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, window_end_ms)
);
CREATE INDEX usage_windows_by_end ON usage_windows (window_end_ms);

-- The storage snapshot of a usage record needs these next to size and entry_count.
ALTER TABLE buckets ADD COLUMN record_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE buckets ADD COLUMN block_count INTEGER NOT NULL DEFAULT 0;
