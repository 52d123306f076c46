-- Lifecycle policies: the list spans buckets, so the registry lives here; each bucket's object
-- reads the policies of its own bucket when its alarm runs them.
CREATE TABLE lifecycles (
  name TEXT PRIMARY KEY,
  bucket TEXT NOT NULL,
  settings TEXT NOT NULL,
  is_provisioned INTEGER NOT NULL DEFAULT 0,
  last_run TEXT
);
CREATE INDEX lifecycles_by_bucket ON lifecycles (bucket);
