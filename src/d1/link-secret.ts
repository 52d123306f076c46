/**
 * The only code that runs SQL on D1's `link_secret` table: the store-wide random secret that keys
 * query-link signatures. It is made on first use, so no deployment ever signs with a default.
 */
import { toHex } from "../auth/secrets";

export async function loadLinkSecret(db: D1Database): Promise<string> {
  const fresh = toHex(crypto.getRandomValues(new Uint8Array(32)));
  // Two first uses at once both insert; the ignored one reads the winner's value.
  await db.prepare("INSERT OR IGNORE INTO link_secret (id, secret) VALUES (1, ?1)").bind(fresh).run();
  const row = await db.prepare("SELECT secret FROM link_secret WHERE id = 1").first<{ secret: string }>();
  if (!row) throw new Error("link secret is missing after insert");
  return row.secret;
}
