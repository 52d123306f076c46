/**
 * Reading the next batch of a query, shared by single-record `?q=` reads, v1 `…/batch` and v2
 * `/io/:bucket/read`. The bucket object scans a bounded number of index rows per call, so other
 * requests to the bucket run in between; this loop calls again until the batch has records or
 * the query is done. The query's cursor advances only once the batch's bytes are in hand (or,
 * for a streamed body, fully written): a failed read sends the same records again.
 */
import type { Batch, BatchLimits, BatchRecord, QueryScope } from "../bucket/query-engine";
import { conflict, internal, unwrap } from "../errors";
import { recordsBucket } from "../storage/r2-binding";
import { batchBody, MissingBytesError } from "../storage/record-bodies";
import { bucketStub } from "./bucket-stub";
import type { AppContext } from "./context";
import { recordBytesResponse } from "./record-response";

/** 204 with the contract's marker: the query has no (more) records right now. */
export function noContent(): Response {
  return new Response(null, { status: 204, headers: { "x-reduct-error": "No content" } });
}

/** How long one batched read keeps scanning for a first record before it answers "ask again". */
export const BATCH_SCAN_BUDGET_MS = 5_000;
/** Reads retried when a concurrent read of the same query committed first. */
const COMMIT_ATTEMPTS = 3;

class CursorMoved extends Error {}

export interface BatchResponseParts {
  headers: Array<[string, string]> | Headers;
  /** The records whose bytes make the body, in body order. */
  parts: readonly BatchRecord[];
}

export interface ReadPlan {
  /** The path the id arrived on; a query created for another path is not found. */
  scope: QueryScope;
  limits: BatchLimits;
  /** Scan time before `pending()` answers; null: keep scanning until a record or the end. */
  budgetMs: number | null;
  /** Headers and body order of a batch; `withBody` false: the body is empty (HEAD, only_metadata). */
  render(batch: Batch, withBody: boolean): BatchResponseParts;
  /** The answer when the budget ran out with nothing found and the query is not done. */
  pending(): Response;
}

/** Runs one read of a query: 200 with records, 204 when it is done, or the plan's pending answer. */
export async function readQueryBatch(c: AppContext, bucket: string, id: number, plan: ReadPlan): Promise<Response> {
  const head = c.req.method === "HEAD";
  const stub = bucketStub(c.env, bucket);
  const commitOrThrow = async (commit: Parameters<typeof stub.commitQuery>[0] | null) => {
    if (commit && !unwrap(await stub.commitQuery(commit)).committed) throw new CursorMoved();
  };
  for (let attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
    const deadline = plan.budgetMs === null ? Number.POSITIVE_INFINITY : Date.now() + plan.budgetMs;
    let read = unwrap(await stub.readQuery(id, plan.scope, plan.limits, !head));
    // An empty batch that is not the last one means the call's scan budget ran out: scan on.
    while (read.batch.empty && !read.batch.last && Date.now() < deadline) {
      // Yield before the next call: where the Worker and the object share an isolate (local
      // runtime), a request that arrived meanwhile reaches the object first.
      await new Promise((resolve) => setTimeout(resolve, 1));
      read = unwrap(await stub.readQuery(id, plan.scope, plan.limits, !head));
    }
    const { batch, commit } = read;
    if (batch.empty) return batch.last ? noContent() : plan.pending();
    const withBody = !head && !batch.onlyMetadata;
    const { headers, parts } = plan.render(batch, withBody);
    try {
      if (!withBody) {
        await commitOrThrow(commit);
        return recordBytesResponse(null, headers);
      }
      const body = await batchBody(recordsBucket(c.env), parts, () => commitOrThrow(commit));
      return recordBytesResponse(body, headers);
    } catch (error) {
      if (error instanceof CursorMoved) continue;
      if (error instanceof MissingBytesError) throw internal(error.message);
      throw error;
    }
  }
  throw conflict(`Query ${id} is being read concurrently; try again`);
}
