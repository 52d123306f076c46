-- Replications: the list spans buckets, so the registry lives here; the edge hands each source
-- bucket's object the replications whose src_bucket it is. `settings` is the JSON of the
-- validated settings, destination token included (never shown back by the API).
CREATE TABLE replications (
  name TEXT PRIMARY KEY,
  src_bucket TEXT NOT NULL,
  settings TEXT NOT NULL,
  is_provisioned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX replications_by_src_bucket ON replications (src_bucket);
