/**
 * Bugs the bad-input suite (bad-input.test.ts) found, each pinned by the request that failed.
 */
import { describe, expect, it } from "vitest";
import { stateDigest } from "../helpers/digest";
import { api, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

/** `{"$and": [{"$not": [ … {"&a": {"$eq": 1}} … ]}]}`, `levels` operators deep. */
function deepWhen(levels: number): unknown {
  let value: unknown = { "&a": { $eq: 1 } };
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? { $and: [value] } : { $not: [value] };
  return value;
}

describe("bad-input regressions", () => {
  it("a `when` nested thousands of levels deep is 422 at query creation, not a 500", async () => {
    const bucket = uniqueName("deep-when");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "kept", { labels: { a: "1" } });
    const before = await stateDigest([bucket]);
    for (const levels of [40, 1000, 2000, 5000, 20_000]) {
      for (const [path, extra] of [
        [`/b/${bucket}/e/q`, {}],
        [`/io/${bucket}/q`, { entries: ["e"] }],
      ] as const) {
        for (const queryType of ["QUERY", "REMOVE"]) {
          const body = JSON.stringify({ query_type: queryType, ...extra, when: deepWhen(levels) });
          const response = await api("POST", path, { body });
          const detail = await response.text();
          // Was a bug: the edge forwarded `when` unchecked over RPC to the bucket object, whose parser
          // caps nesting at 32 levels; from about 2,000 levels the RPC serialiser overflowed the stack
          // first: POST …/q → 500 `Internal server error: Maximum call stack size exceeded`.
          expect({ levels, path, queryType, status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
            levels,
            path,
            queryType,
            status: 422,
            error: "Condition is nested too deeply (more than 32 levels)",
          });
          expect(JSON.parse(detail)).toEqual({ detail: "Condition is nested too deeply (more than 32 levels)" });
        }
      }
    }
    expect(await stateDigest([bucket])).toEqual(before);
  });
});
