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
  // super() runs synchronously inside the scope callback, which TypeScript cannot see.
  // @ts-expect-error TS2377
  // biome-ignore lint/correctness/noUnreachableSuper: see above.
  constructor(ctx, env) {
    instrumentStorage(ctx.storage);
    // @ts-expect-error TS2337
    inObjectScope(ctx, () => super(ctx, countingEnv(env, KINDS)));
  }

  override async alarm(...args: Parameters<ProductBucketObject["alarm"]>) {
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
