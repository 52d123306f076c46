/**
 * Entry-level queries: create (JSON or legacy query string), remove by query,
 * and read the next batch with batch protocol v1. Single-record reads of a query (`GET …?q=`)
 * live with the record routes in entries.ts and use `readOneOfQuery` from here.
 */
import { Hono } from "hono";
import { requireRead, requireWrite } from "../auth/policy";
import type { BatchRecord } from "../bucket/query-engine";
import { unavailable, unprocessable, unwrap } from "../errors";
import { readJsonBody } from "./body";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv } from "./context";
import { renderBatchV1 } from "./headers/batch-v1";
import { answerQueryRequest } from "./query-create";
import { BATCH_SCAN_BUDGET_MS, readQueryBatch } from "./query-read";
import { batchLimits, checkedTtl, legacySpec, parseQueryEntry, parseQueryId } from "./query-request";
import { recordHeaders } from "./record-response";

export const queryRoutes = new Hono<AppEnv>();

// POST /api/v1/b/:bucket_name/:entry_name/q — QUERY (read) or REMOVE (write)
queryRoutes.post("/:bucket/:entry{.+}/q", async (c) => {
  const { bucket, entry } = c.req.param();
  return answerQueryRequest(c, bucket, parseQueryEntry(await readJsonBody(c.req.raw, undefined)), "entry", [entry]);
});

// GET /api/v1/b/:bucket_name/:entry_name/q?start=&stop=&ttl=&continuous= — legacy create
queryRoutes.get("/:bucket/:entry{.+}/q", async (c) => {
  const { bucket, entry } = c.req.param();
  requireRead(c.get("caller"), bucket);
  const spec = legacySpec(c.req.query(), entry);
  checkedTtl(spec.ttlSeconds);
  const { id } = unwrap(await bucketStub(c.env, bucket).createQuery(spec));
  return c.json({ id });
});

// DELETE /api/v1/b/:bucket_name/:entry_name/q?start=&stop= — legacy remove by query
queryRoutes.delete("/:bucket/:entry{.+}/q", async (c) => {
  const { bucket, entry } = c.req.param();
  requireWrite(c.get("caller"), bucket);
  const query = c.req.query();
  if (Object.keys(query).length === 0) throw unprocessable("Define at least one query parameter to delete records");
  const spec = legacySpec(query, entry);
  const { removed } = unwrap(await bucketStub(c.env, bucket).removeByQuery(spec));
  return c.json({ removed_records: removed });
});

// GET|HEAD /api/v1/b/:bucket_name/:entry_name/batch?q=<id> — next batch, protocol v1
queryRoutes.get("/:bucket/:entry{.+}/batch", async (c) => {
  const { bucket, entry } = c.req.param();
  requireRead(c.get("caller"), bucket);
  const q = c.req.query("q");
  if (q === undefined) throw unprocessable("'q' parameter is required for batched reads");
  const id = parseQueryId(q, "'query' must be a number");
  return readQueryBatch(c, bucket, id, {
    scope: { kind: "entry", entry },
    limits: batchLimits(c.get("config"), false),
    budgetMs: BATCH_SCAN_BUDGET_MS,
    render: (batch, withBody) => {
      const total = batch.records.reduce((sum, record) => sum + record.size, 0);
      const head = c.req.method === "HEAD";
      // Header pairs straight into the Response: a Headers object first would copy ~90 lines twice.
      const headers: Array<[string, string]> = [
        ...renderBatchV1(batch.records),
        ["content-type", "application/octet-stream"],
        ["content-length", String(withBody || head ? total : 0)],
        ["x-reduct-last", String(batch.last)],
      ];
      return { headers, parts: batch.records };
    },
    // reduct-js reads a batch without records and not last as "ask again".
    pending: () => emptyBatchV1(),
  });
});

/** A v1 batch without records that is not the last: the client asks again at once. */
function emptyBatchV1(): Response {
  return new Response(null, {
    status: 200,
    headers: { "content-type": "application/octet-stream", "content-length": "0", "x-reduct-last": "false" },
  });
}

/** Scan time of a single-record read before it answers 503 "try again" (it has no empty answer). */
export const SINGLE_READ_SCAN_BUDGET_MS = 20_000;

/** GET|HEAD …/:entry?q=<id>: the next record of a query, or 204 when there is none. */
export async function readOneOfQuery(c: AppContext, bucket: string, entry: string, queryId: string): Promise<Response> {
  const id = parseQueryId(queryId, "'query' must be a number");
  return readQueryBatch(c, bucket, id, {
    scope: { kind: "entry", entry },
    limits: { ...batchLimits(c.get("config"), false), maxRecords: 1 },
    budgetMs: SINGLE_READ_SCAN_BUDGET_MS,
    render: (batch, withBody) => {
      const [record] = batch.records as [BatchRecord];
      const headers = recordHeaders(record);
      headers.set("x-reduct-last", String(batch.last));
      if (!withBody && c.req.method !== "HEAD") headers.set("content-length", "0");
      return { headers, parts: [record] };
    },
    pending: () => {
      throw unavailable(`Query ${id} is still scanning for its next record; try again`);
    },
  });
}
