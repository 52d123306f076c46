/**
 * Multi-entry queries: create or remove-by-query over entry patterns, and read
 * the next batch with batch protocol v2. Batches never let two entries' time ranges interleave, so
 * the server's body order (entry, then time) and reduct-js's (time, then entry) always agree.
 */
import { Hono } from "hono";
import { requireRead } from "../auth/policy";
import { unprocessable } from "../errors";
import { readJsonBody } from "./body";
import type { AppEnv } from "./context";
import { renderBatchV2 } from "./headers/batch-v2";
import { answerQueryRequest } from "./query-create";
import { BATCH_SCAN_BUDGET_MS, readQueryBatch } from "./query-read";
import { batchLimits, parseQueryEntry, parseQueryId } from "./query-request";

export const ioReadRoutes = new Hono<AppEnv>();

// POST /api/v1/io/:bucket_name/q — QUERY (read) returns {id}; REMOVE (write) returns {removed_records}
ioReadRoutes.post("/:bucket/q", async (c) => {
  const { bucket } = c.req.param();
  const request = parseQueryEntry(await readJsonBody(c.req.raw, undefined));
  return answerQueryRequest(c, bucket, request, "multi", request.entries ?? []);
});

// GET|HEAD /api/v1/io/:bucket_name/read — next batch of x-reduct-query-id, protocol v2
ioReadRoutes.get("/:bucket/read", async (c) => {
  const { bucket } = c.req.param();
  requireRead(c.get("caller"), bucket);
  const header = c.req.header("x-reduct-query-id");
  if (header === undefined) throw unprocessable("x-reduct-query-id header is required for batched reads");
  const id = parseQueryId(header.trim(), "Invalid query id");
  return readQueryBatch(c, bucket, id, {
    scope: { kind: "multi" },
    limits: batchLimits(c.get("config"), true),
    budgetMs: BATCH_SCAN_BUDGET_MS,
    render: (batch, withBody) => {
      const rendered = renderBatchV2(batch.records);
      const byPosition = new Map(batch.records.map((record) => [`${record.entry}\u0000${record.ts}`, record]));
      const ordered = rendered.records.map((record) => {
        const found = byPosition.get(`${record.entry}\u0000${record.ts}`);
        if (!found) throw new Error("rendered batch lost a record");
        return found;
      });
      const total = ordered.reduce((sum, record) => sum + record.size, 0);
      const head = c.req.method === "HEAD";
      // Continuous queries never say last: reduct-js would end the subscription.
      const continuous = batch.continuous;
      // Header pairs straight into the Response: a Headers object first would copy ~90 lines twice.
      const headers: Array<[string, string]> = [
        ...rendered.headers,
        ["content-type", "application/octet-stream"],
        ["content-length", String(withBody || head ? total : 0)],
        ["x-reduct-last", String(batch.last && !continuous)],
      ];
      return { headers, parts: ordered };
    },
    // reduct-js reads an empty batch (empty x-reduct-entries) as "ask again at once".
    pending: () =>
      new Response(null, {
        status: 200,
        headers: {
          "x-reduct-entries": "",
          "x-reduct-start-ts": "0",
          "content-type": "application/octet-stream",
          "content-length": "0",
          "x-reduct-last": "false",
        },
      }),
  });
});
