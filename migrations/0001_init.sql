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
  -- First 64 bits of sha256(value) in hex: finds the row; the secret is checked against `hash`.
  -- NULL for the provisioned init-token, which is authenticated against RS_API_TOKEN instead.
  lookup TEXT UNIQUE,
  -- sha256:<salt hex>:<sha256(salt || value) hex>; no column ever holds a token value.
  hash TEXT NOT NULL,
  -- RFC 3339 UTC (as returned by the API): creation, or the last rotation.
  created_at TEXT NOT NULL,
  is_provisioned INTEGER NOT NULL DEFAULT 0,
  full_access INTEGER NOT NULL DEFAULT 0,
  -- JSON arrays of bucket names / wildcards.
  read_buckets TEXT NOT NULL DEFAULT '[]',
  write_buckets TEXT NOT NULL DEFAULT '[]',
  -- RFC 3339 UTC or NULL.
  expires_at TEXT,
  -- Inactivity TTL in seconds or NULL.
  ttl INTEGER,
  -- RFC 3339 UTC or NULL; written at most once a minute per token (see src/auth/token-store.ts).
  last_access TEXT,
  -- JSON array of IP addresses / CIDR ranges; empty = any client.
  ip_allowlist TEXT NOT NULL DEFAULT '[]'
);
