/**
 * A query id belongs to one bucket incarnation and one read scope: an entry query is read only
 * through its own entry (single `?q=` and v1 `…/batch`), a v2 query only through
 * `/io/:bucket/read`. Anything else, and any read after the bucket was deleted or renamed away,
 * is the unknown-query 404 and leaves the cursor where it was. Stale queries never hold a slot of
 * the open-query cap.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { MAX_OPEN_QUERIES } from "../../src/bucket/query-engine";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const notFound = (id: number) => `Query ${id} not found and it might have expired. Check TTL in your query request.`;

/** Evicts the object: the next call constructs it again from storage only. */
async function evict(stub: DurableObjectStub<BucketObject>): Promise<void> {
  await expect(
    runInDurableObject(stub, (_instance, state) => {
      state.abort("evicted by test");
    }),
  ).rejects.toThrow();
}

type ReadPath = "single" | "v1" | "v2";

async function entryQuery(bucket: string, entry: string, extra: Record<string, unknown> = {}): Promise<number> {
  const response = await api("POST", `/b/${bucket}/${entry}/q`, {
    body: JSON.stringify({ query_type: "QUERY", ttl: 600, ...extra }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: number }).id;
}

async function ioQuery(bucket: string, entries: string[], extra: Record<string, unknown> = {}): Promise<number> {
  const response = await api("POST", `/io/${bucket}/q`, {
    body: JSON.stringify({ query_type: "QUERY", ttl: 600, entries, ...extra }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: number }).id;
}

function read(path: ReadPath, method: string, bucket: string, entry: string, id: number): Promise<Response> {
  if (path === "single") return api(method, `/b/${bucket}/${entry}?q=${id}`);
  if (path === "v1") return api(method, `/b/${bucket}/${entry}/batch?q=${id}`);
  return api(method, `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
}

/** Every record timestamp a successful read carries, on any path. */
async function timestampsOf(response: Response): Promise<number[]> {
  await response.arrayBuffer();
  const single = response.headers.get("x-reduct-time");
  if (single !== null) return [Number(single)];
  const start = Number(response.headers.get("x-reduct-start-ts") ?? 0);
  const out: number[] = [];
  for (const [name] of response.headers) {
    const v1 = /^x-reduct-time-(\d+)$/.exec(name);
    if (v1) out.push(Number(v1[1]));
    const v2 = /^x-reduct-(\d+)-(\d+)$/.exec(name);
    if (v2) out.push(start + Number(v2[2]));
  }
  return out.sort((a, b) => a - b);
}

async function bucketWithTwoEntries(): Promise<string> {
  const bucket = uniqueName("qscope");
  await createBucket(bucket);
  for (const ts of [1, 2]) {
    await putRecord(bucket, "e", ts, `E${ts}`);
    await putRecord(bucket, "f", ts, `F${ts}`);
  }
  return bucket;
}

describe("a query id is read only through the scope it was created for", () => {
  const cases: { name: string; create: "entry-e" | "io-e"; path: ReadPath; entry: string }[] = [
    { name: "entry query of e read as f single", create: "entry-e", path: "single", entry: "f" },
    { name: "entry query of e read as f v1 batch", create: "entry-e", path: "v1", entry: "f" },
    { name: "entry query read through /io", create: "entry-e", path: "v2", entry: "e" },
    { name: "v2 query read as e single", create: "io-e", path: "single", entry: "e" },
    { name: "v2 query read as e v1 batch", create: "io-e", path: "v1", entry: "e" },
    { name: "v2 query read as f single", create: "io-e", path: "single", entry: "f" },
  ];
  for (const { name, create, path, entry } of cases) {
    for (const method of ["GET", "HEAD"]) {
      it(`${name} (${method}): 404 and the cursor stays`, async () => {
        const bucket = await bucketWithTwoEntries();
        const id = create === "entry-e" ? await entryQuery(bucket, "e") : await ioQuery(bucket, ["e"]);
        await expectError(await read(path, method, bucket, entry, id), 404, notFound(id));
        // The owner still gets every record from the start.
        const own: ReadPath = create === "entry-e" ? "v1" : "v2";
        const response = await read(own, "GET", bucket, "e", id);
        expect(response.status).toBe(200);
        expect(await timestampsOf(response)).toEqual([1, 2]);
      });
    }
  }

  it("an entry query still reads through both of its own paths", async () => {
    const bucket = await bucketWithTwoEntries();
    const id = await entryQuery(bucket, "e");
    const first = await read("single", "GET", bucket, "e", id);
    expect(first.status).toBe(200);
    expect(await first.text()).toBe("E1");
    const rest = await read("v1", "GET", bucket, "e", id);
    expect(await timestampsOf(rest)).toEqual([2]);
  });

  it("a query of another bucket is unknown here", async () => {
    const a = await bucketWithTwoEntries();
    const b = await bucketWithTwoEntries();
    const entryId = await entryQuery(a, "e");
    const ioId = await ioQuery(a, ["*"]);
    await expectError(await read("single", "GET", b, "e", entryId), 404, notFound(entryId));
    await expectError(await read("v1", "GET", b, "e", entryId), 404, notFound(entryId));
    await expectError(await read("v2", "GET", b, "e", ioId), 404, notFound(ioId));
  });
});

describe("queries do not outlive their bucket", () => {
  const ends: { name: string; end: (bucket: string) => Promise<void> }[] = [
    {
      name: "deleted",
      end: async (bucket) => {
        expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
      },
    },
    {
      name: "renamed away",
      end: async (bucket) => {
        const response = await api("PUT", `/b/${bucket}/rename`, {
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ new_name: `${bucket}-moved` }),
        });
        expect(response.status).toBe(200);
      },
    },
  ];
  for (const { name, end } of ends) {
    it(`${name} and re-created: old ids answer 404 on every path`, async () => {
      const bucket = uniqueName("qgone");
      await createBucket(bucket);
      await putRecord(bucket, "e", 1, "OLD");
      const singleId = await entryQuery(bucket, "e");
      const batchId = await entryQuery(bucket, "e");
      const ioId = await ioQuery(bucket, ["*"], { continuous: true });
      await end(bucket);
      await createBucket(bucket);
      await putRecord(bucket, "e", 1, "NEW");
      await putRecord(bucket, "e", 2, "NEW2");
      await expectError(await read("single", "GET", bucket, "e", singleId), 404, notFound(singleId));
      await expectError(await read("v1", "GET", bucket, "e", batchId), 404, notFound(batchId));
      await expectError(await read("v2", "GET", bucket, "e", ioId), 404, notFound(ioId));
      // Nothing of them is left in the object.
      const rows = await runInDurableObject(
        stubOf(bucket),
        (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM queries").one().n,
      );
      expect(rows).toBe(0);
    });

    it(`${name} and re-created: the old bucket's queries do not count against the cap`, async () => {
      const bucket = uniqueName("qcap");
      await createBucket(bucket);
      await putRecord(bucket, "e", 1, "x");
      const stub = stubOf(bucket);
      const spec = {
        kind: "entry" as const,
        entries: ["e"],
        start: null,
        stop: null,
        ttlSeconds: 600,
        continuous: false,
        onlyMetadata: false,
        strict: false,
        when: null,
      };
      for (let i = 0; i < MAX_OPEN_QUERIES; i++) expect((await stub.createQuery(spec)).ok).toBe(true);
      const full = await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY" }) });
      expect(full.status).toBe(429);
      await full.arrayBuffer();
      await end(bucket);
      await createBucket(bucket);
      await putRecord(bucket, "e", 1, "x");
      const id = await entryQuery(bucket, "e");
      expect(await (await read("single", "GET", bucket, "e", id)).text()).toBe("x");
    });
  }
});

describe("a query is bound to the bucket generation it was created on", () => {
  it("a query row of an earlier generation never matches, also after an eviction", async () => {
    const bucket = uniqueName("qgen");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "OLD");
    const entryId = await entryQuery(bucket, "e");
    const ioId = await ioQuery(bucket, ["e"]);
    const stub = stubOf(bucket);
    // As if a delete had left the rows behind: the bucket gets a new generation, rows stay.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE bucket SET generation = ? WHERE id = 1", crypto.randomUUID());
    });
    await evict(stub);
    await expectError(await read("single", "GET", bucket, "e", entryId), 404, notFound(entryId));
    await expectError(await read("v1", "GET", bucket, "e", entryId), 404, notFound(entryId));
    await expectError(await read("v2", "GET", bucket, "e", ioId), 404, notFound(ioId));
  });

  it("a query survives an eviction between create and read", async () => {
    const bucket = uniqueName("qevict");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "ONE");
    const entryId = await entryQuery(bucket, "e");
    const ioId = await ioQuery(bucket, ["e"]);
    const stub = stubOf(bucket);
    await evict(stub);
    const single = await read("single", "GET", bucket, "e", entryId);
    expect(await single.text()).toBe("ONE");
    expect(await timestampsOf(await read("v2", "GET", bucket, "e", ioId))).toEqual([1]);
  });
});
