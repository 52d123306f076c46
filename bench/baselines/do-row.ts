/**
 * Baseline (b): the Worker reads the record body and makes one RPC call to a SQLite-backed
 * Durable Object, which inserts one row (timestamp + payload). POST /rec?ts=<µs>.
 */
import { DurableObject } from "cloudflare:workers";
import { benchControl, count, countingEnv, inObjectScope, instrumentStorage, scopeMethods } from "../worker/counting.ts";

const KINDS = { ROWS: "do" };

export class Rows extends DurableObject {
  // super() runs synchronously inside the scope callback, which TypeScript cannot see.
  // @ts-expect-error TS2377
  // biome-ignore lint/correctness/noUnreachableSuper: see above.
  constructor(ctx, env) {
    instrumentStorage(ctx.storage);
    inObjectScope(ctx, () => {
      // @ts-expect-error TS2337
      super(ctx, env);
      ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS records (ts INTEGER PRIMARY KEY, payload BLOB NOT NULL)");
    });
  }

  insert(ts, payload) {
    this.ctx.storage.sql.exec("INSERT INTO records (ts, payload) VALUES (?, ?)", ts, payload);
    return true;
  }
}
scopeMethods(Rows, DurableObject);

export default {
  async fetch(request, rawEnv) {
    const control = benchControl(request, rawEnv);
    if (control) return control;
    count("workerRequests");
    const env = countingEnv(rawEnv, KINDS);
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/rec") return new Response("not found", { status: 404 });
    const ts = Number(url.searchParams.get("ts"));
    const payload = await request.arrayBuffer();
    await env.ROWS.getByName("bench").insert(ts, payload);
    return new Response(null, { status: 200 });
  },
};
