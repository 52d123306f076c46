/**
 * A query's stored position grows with the entries it reads (one cursor per entry, keyed by name),
 * and storing it must never fail: a v2 query over 64 entries with the longest names allowed reads
 * to its end, batch after batch, with every record exactly once.
 */
import { describe, expect, it } from "vitest";
import { MAX_ENTRY_NAME_LENGTH } from "../../src/api/headers/entry-name";
import { api, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const ENTRIES = 64;
const RECORDS_PER_ENTRY = 3;

/** Entry `i` with a name of exactly the longest allowed length, in path segments. */
const longName = (i: number) => {
  const head = `e${String(i).padStart(3, "0")}/`;
  return `${head}${"n".repeat(MAX_ENTRY_NAME_LENGTH - head.length)}`;
};

async function queryId(bucket: string, body: Record<string, unknown>): Promise<Response> {
  return api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
}

describe("stored query positions stay storable", () => {
  it(`a v2 query over ${ENTRIES} entries with ${MAX_ENTRY_NAME_LENGTH}-character names reads every record once`, async () => {
    const bucket = uniqueName("cursor-size");
    await createBucket(bucket);
    const names = Array.from({ length: ENTRIES }, (_, i) => longName(i));
    for (const [i, name] of names.entries()) {
      for (let r = 0; r < RECORDS_PER_ENTRY; r++) {
        const response = await api("POST", `/b/${bucket}/${name}?ts=${1000 + r * 100 + i}`, { body: "x" });
        await response.arrayBuffer();
        expect(response.status).toBe(200);
      }
    }
    for (const [what, when] of [
      ["no condition", undefined],
      ["#ctx_before", { "#ctx_before": 2, "&missing": { $eq: "x" } }],
      ["small batches", { "#batch_records": 5 }],
    ] as const) {
      const created = await queryId(bucket, { entries: names, ...(when ? { when } : {}) });
      expect(created.status, created.headers.get("x-reduct-error") ?? "").toBe(200);
      const id = String(((await created.json()) as { id: number }).id);
      let seen = 0;
      for (let round = 0; round < 200; round++) {
        const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": id } });
        await response.arrayBuffer();
        if (response.status === 204) break;
        expect(response.status, `${what}: ${response.headers.get("x-reduct-error")}`).toBe(200);
        seen += [...response.headers.keys()].filter((name) => /^x-reduct-\d+-\d+$/.test(name)).length;
      }
      expect(seen, what).toBe(when && "&missing" in when ? 0 : ENTRIES * RECORDS_PER_ENTRY);
    }
  });
});
