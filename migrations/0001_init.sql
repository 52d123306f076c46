-- D1 holds what spans buckets: the bucket registry with usage (written by each bucket's Durable
-- Object, off the request path for record writes) and the API tokens (hashed).

CREATE TABLE buckets (
  name TEXT PRIMARY KEY,
  generation TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'READY',
  is_provisioned INTEGER NOT NULL DEFAULT 0,
  entry_count INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  oldest_record INTEGER NOT NULL DEFAULT 0,
  latest_record INTEGER NOT NULL DEFAULT 0,
  updated_at_ms INTEGER NOT NULL
);

CREATE TABLE tokens (
  name TEXT PRIMARY KEY,
  -- First 64 bits of sha256(value): an index to find the row; the secret is checked against `hash`.
  lookup TEXT NOT NULL UNIQUE,
  -- sha256:<salt hex>:<sha256(salt || value) hex>
  hash TEXT NOT NULL,
  created_at TEXT NOT NULL,
  full_access INTEGER NOT NULL DEFAULT 0,
  read_buckets TEXT NOT NULL DEFAULT '[]',
  write_buckets TEXT NOT NULL DEFAULT '[]',
  expires_at TEXT,
  ttl INTEGER,
  last_access TEXT,
  ip_allowlist TEXT NOT NULL DEFAULT '[]'
);
