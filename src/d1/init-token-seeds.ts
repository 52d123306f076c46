/**
 * The only SQL on D1's `init_token_seeds`: the RS_INIT_API_TOKEN values (by lookup digest) that
 * have already created `init-token` once.
 */

export async function wasSeeded(db: D1Database, lookup: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS seeded FROM init_token_seeds WHERE lookup = ?1")
    .bind(lookup)
    .first<{ seeded: number }>();
  return row !== null;
}

export async function recordSeed(db: D1Database, lookup: string, seededAt: string): Promise<void> {
  await db
    .prepare("INSERT INTO init_token_seeds (lookup, seeded_at) VALUES (?1, ?2) ON CONFLICT (lookup) DO NOTHING")
    .bind(lookup, seededAt)
    .run();
}
