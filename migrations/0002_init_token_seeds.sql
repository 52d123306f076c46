-- RS_INIT_API_TOKEN creates `init-token` once per value: this remembers which values (by their
-- lookup digest, never the value) already did, so deleting or replacing the token sticks while
-- the variable is still set.
CREATE TABLE init_token_seeds (
  lookup TEXT PRIMARY KEY,
  seeded_at TEXT NOT NULL
);
