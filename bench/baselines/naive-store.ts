/**
 * Baseline (c): the store a user would otherwise build — every record its own R2 object plus one
 * D1 row. POST /rec?ts=<µs> (body streamed into R2, then the row). PUT /raw?key=<k> is the bare
 * R2 put of the request body without the row (the reference for large streamed records).
 * PUT /raw-piped?key=<k> is a diagnostic: the same put, but the body goes through a JS
 * TransformStream that checks its length into a FixedLengthStream, the shape of reduct-edge's
 * streamToR2 (src/api/record-body.ts), so W3 can tell streaming cost from its other work.
 * Schema: naive-store.sql.
 */
import { benchControl, count, countingEnv } from "../worker/counting.ts";

const KINDS = { OBJECTS: "r2", DB: "d1" };

export default {
  async fetch(request, rawEnv) {
    const control = benchControl(request, rawEnv);
    if (control) return control;
    count("workerRequests");
    const env = countingEnv(rawEnv, KINDS);
    const url = new URL(request.url);
    const size = Number(request.headers.get("content-length"));
    if (request.method === "PUT" && url.pathname === "/raw") {
      await env.OBJECTS.put(`raw/${url.searchParams.get("key")}`, request.body);
      return new Response(null, { status: 200 });
    }
    if (request.method === "PUT" && url.pathname === "/raw-piped") {
      let seen = 0;
      const guard = new TransformStream({
        transform(chunk, controller) {
          seen += chunk.byteLength;
          if (seen > size) throw new Error("longer than announced");
          controller.enqueue(chunk);
        },
        flush() {
          if (seen !== size) throw new Error("shorter than announced");
        },
      });
      const fixed = new FixedLengthStream(size);
      const pump = request.body.pipeThrough(guard).pipeTo(fixed.writable);
      await Promise.all([pump, env.OBJECTS.put(`piped/${url.searchParams.get("key")}`, fixed.readable)]);
      return new Response(null, { status: 200 });
    }
    if (request.method === "POST" && url.pathname === "/rec") {
      const ts = Number(url.searchParams.get("ts"));
      const key = `rec/${ts}`;
      await env.OBJECTS.put(key, request.body);
      await env.DB.prepare("INSERT INTO records (ts, object_key, size) VALUES (?1, ?2, ?3)").bind(ts, key, size).run();
      return new Response(null, { status: 200 });
    }
    return new Response("not found", { status: 404 });
  },
};
