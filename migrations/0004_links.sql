-- Query links: one random secret per store, created on first use. Link signatures are keyed by it
-- (together with the issuing token's stored hash), so links cannot be forged without D1 access.
CREATE TABLE IF NOT EXISTS link_secret (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  secret TEXT NOT NULL
);
