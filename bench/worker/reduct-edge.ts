/**
 * Bench-only entry for reduct-edge: the product Worker (src/index.ts) unchanged, with counting
 * bindings and per-object attribution (see counting.ts) and the `/__bench/*` control routes.
 * Built by bench/lib/servers.ts with wrangler, never deployed.
 */
import { DurableObject } from "cloudflare:workers";
import worker, { BucketObject as ProductBucketObject } from "../../src/index.ts";
import { benchControl, count, countingEnv, inObjectScope, instrumentStorage, scopeMethods } from "./counting.ts";

const KINDS = { RECORDS: "r2", DB: "d1", BUCKETS: "do" };

export class BucketObject extends ProductBucketObject {
  // biome-ignore lint/correctness/noUnreachableSuper: super() runs synchronously inside the scope callback.
  constructor(ctx, env) {
    instrumentStorage(ctx.storage);
    inObjectScope(ctx, () => super(ctx, countingEnv(env, KINDS)));
  }

  async alarm(...args) {
    count("doAlarms");
    count("doRequests");
    return super.alarm(...args);
  }
}
scopeMethods(BucketObject, DurableObject);

export default {
  fetch(request, env, ctx) {
    const control = benchControl(request, env);
    if (control) return control;
    count("workerRequests");
    return worker.fetch(request, countingEnv(env, KINDS), ctx);
  },
};
