/**
 * Computed `@labels` come from extensions, and none are installed: as in ReductStore without
 * extensions, a query referring to one is created, selects no record, and in strict mode its read
 * answers 404 `Reference '@<name>' not found`. Requests naming an extension get 422.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

type Protocol = "v1" | "v2";

async function createQuery(protocol: Protocol, bucket: string, body: Record<string, unknown>): Promise<Response> {
  return protocol === "v1"
    ? api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify(body) })
    : api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ entries: ["e"], ...body }) });
}

async function readNext(protocol: Protocol, bucket: string, id: number): Promise<Response> {
  return protocol === "v1"
    ? api("GET", `/b/${bucket}/e/batch?q=${id}`)
    : api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
}

const WHEN_CASES: Array<[string, Record<string, unknown>]> = [
  ["object notation", { "@size": { $gt: 1 } }],
  ["array notation", { $gt: ["@size", 1] }],
  ["nested in $and", { $and: [{ "&kind": { $eq: "a" } }, { "@class": { $eq: "cat" } }] }],
];

describe("computed @labels without extensions", () => {
  for (const protocol of ["v1", "v2"] as const) {
    for (const [name, when] of WHEN_CASES) {
      it(`${protocol}, ${name}: created, matches nothing; strict reads answer 404`, async () => {
        const bucket = uniqueName("computed");
        await createBucket(bucket);
        await putRecord(bucket, "e", 1000, "abc", { labels: { kind: "a" } });
        const reference = JSON.stringify(when).match(/"@(\w+)"/)?.[1];

        const lenient = await createQuery(protocol, bucket, { query_type: "QUERY", when });
        expect(lenient.status).toBe(200);
        const lenientRead = await readNext(protocol, bucket, ((await lenient.json()) as { id: number }).id);
        await expectError(lenientRead, 204, "No content");

        const strict = await createQuery(protocol, bucket, { query_type: "QUERY", when, strict: true });
        expect(strict.status).toBe(200);
        const strictRead = await readNext(protocol, bucket, ((await strict.json()) as { id: number }).id);
        await expectError(strictRead, 404, `Reference '@${reference}' not found`);

        const removal = await createQuery(protocol, bucket, { query_type: "REMOVE", when });
        expect(removal.status).toBe(200);
        expect(await removal.json()).toEqual({ removed_records: 0 });
        expect((await api("GET", `/b/${bucket}/e?ts=1000`)).status).toBe(200);
      });
    }

    it(`${protocol}: an extension request gets 422`, async () => {
      const bucket = uniqueName("computed");
      await createBucket(bucket);
      await putRecord(bucket, "e", 1000, "abc");
      await expectError(
        await createQuery(protocol, bucket, { query_type: "QUERY", ext: { select: {} } }),
        422,
        "Unknown extension 'select': no extensions are installed",
      );
    });
  }
});
