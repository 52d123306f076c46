// The soak's baseline Worker (`npx tsx scripts/soak.ts --server noop`): answers the soak's request mix
// without storing anything, so the same load under the same Miniflare/workerd shows the runtime's own
// memory curve. It reads each request body (as reduct-edge does) and answers 200 with no body, except
// a query create (POST …/q: a query id) and a batched read of a query (GET …?q=: 204, no more data).
import { DurableObject } from "cloudflare:workers";

export default {
  async fetch(request) {
    if (request.body) await request.arrayBuffer();
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname.endsWith("/q")) return Response.json({ id: 1 });
    if (url.searchParams.has("q")) return new Response(null, { status: 204 });
    return new Response(null, { status: 200 });
  },
};

// The same bindings as reduct-edge (unused); Miniflare needs the class of the BUCKETS namespace.
export class BucketObject extends DurableObject {}
