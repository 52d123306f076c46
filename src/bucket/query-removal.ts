/**
 * REMOVE queries (`DELETE …/q`, `POST …/q` with REMOVE, `POST /io/:bucket/q`): every matching record
 * goes in one transaction, so a strict-mode error part way removes nothing.
 */
import { fail, type Result } from "../errors";
import { isMetaEntry } from "../model/entry-names";
import type { ItemOutcome } from "../model/records";
import type { QueryEngine, QuerySpec } from "./query-engine";
import type { OpsContext } from "./record-ops";

export function removeMatching(
  queries: QueryEngine,
  transact: (operation: (ops: OpsContext) => ItemOutcome) => ItemOutcome,
  spec: QuerySpec,
): Result<{ removed: number }> {
  const single = spec.kind === "entry" ? spec.entries[0] : undefined;
  if (single !== undefined && isMetaEntry(single)) {
    return fail(422, `Can't delete records from system entry '${single}'; use label update with remove=true`);
  }
  let removed = 0;
  const outcome = transact((ops) => {
    // The reference creates a missing entry here; we do not (it would be an empty entry with an
    // unvalidated name) and report 0 removed records.
    const result = queries.remove(spec, (rows) => ops.index.removeRecords(rows, ops.nowMs));
    if (!result.ok) return result;
    removed = result.removed;
    return { ok: true };
  });
  return outcome.ok ? { ok: true, removed } : outcome;
}
