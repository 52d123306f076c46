/**
 * The answer to a query request body, shared by `POST …/:entry/q` (v1, one entry) and
 * `POST /io/:bucket/q` (v2, entry patterns): QUERY needs read access and returns the new query's
 * `{id}`; REMOVE needs write access and returns `{removed_records}`.
 */
import { requireRead, requireWrite } from "../auth/policy";
import type { QuerySpec } from "../bucket/query-engine";
import { unwrap } from "../errors";
import { bucketStub } from "./bucket-stub";
import type { AppContext } from "./context";
import { assertRemoveHasParameters, type QueryEntry, toSpec } from "./query-request";

export async function answerQueryRequest(
  c: AppContext,
  bucket: string,
  request: QueryEntry,
  kind: QuerySpec["kind"],
  entries: string[],
): Promise<Response> {
  const stub = bucketStub(c.env, bucket);
  if (request.query_type === "REMOVE") {
    requireWrite(c.get("caller"), bucket);
    // v2 may narrow a removal by its entry patterns alone; v1 names its entry in the path.
    assertRemoveHasParameters(request, kind === "multi");
    const { removed } = unwrap(await stub.removeByQuery(toSpec(request, kind, entries)));
    return c.json({ removed_records: removed });
  }
  requireRead(c.get("caller"), bucket);
  const { id } = unwrap(await stub.createQuery(toSpec(request, kind, entries)));
  return c.json({ id });
}
