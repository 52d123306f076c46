/**
 * Names that are also properties of every JS object (`__proto__`, `constructor`, …) are plain data
 * on every path: entries with such names read, rename and remove like any other, and nothing a
 * request names can change the state of other requests (the isolate's `Object.prototype`).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeName } from "../../src/api/headers";
import { api, expectError, uniqueName } from "../helpers/http";
import { bucketInfo, createBucket, putRecord } from "../helpers/records";

const OBJECT_PROPERTY_NAMES = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "prototype",
  "__defineGetter__",
];

async function json<T>(response: Response, status = 200): Promise<T> {
  expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ status, error: null });
  return (await response.json()) as T;
}

async function entryQuery(bucket: string, entry: string, body: Record<string, unknown> = {}): Promise<number> {
  const response = await api("POST", `/b/${bucket}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  return (await json<{ id: number }>(response)).id;
}

async function ioQuery(bucket: string, entries: string[]): Promise<number> {
  const response = await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", entries }) });
  return (await json<{ id: number }>(response)).id;
}

/** Timestamps of a v1 batch (`x-reduct-time-<ts>` headers). */
async function v1Batch(method: "GET" | "HEAD", bucket: string, entry: string, id: number): Promise<number[]> {
  const response = await api(method, `/b/${bucket}/${entry}/batch?q=${id}`);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return [...response.headers.keys()]
    .filter((name) => name.startsWith("x-reduct-time-"))
    .map((name) => Number(name.slice(14)))
    .sort((a, b) => a - b);
}

/** Entries and record count of a v2 query, reading batches until the last one. */
async function ioReadAll(bucket: string, id: number): Promise<{ entries: string[]; records: number }> {
  const entries = new Set<string>();
  let records = 0;
  for (let batch = 0; batch < 20; batch++) {
    const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
    await response.arrayBuffer();
    if (response.status === 204) break;
    expect(response.status).toBe(200);
    for (const name of response.headers.get("x-reduct-entries")?.split(",") ?? []) entries.add(name);
    records += [...response.headers.keys()].filter((name) => /^x-reduct-\d+-\d+$/.test(name)).length;
    if (response.headers.get("x-reduct-last") === "true") break;
  }
  return { entries: [...entries].sort(), records };
}

/** The server still answers normally everywhere: nothing leaked into shared state. */
async function expectServerHealthy(otherBucket: string): Promise<void> {
  for (const path of ["/info", "/list", `/b/${otherBucket}`]) {
    const response = await api("GET", path);
    await response.arrayBuffer();
    expect({ path, status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
      path,
      status: 200,
      error: null,
    });
  }
  const id = await entryQuery(otherBucket, "plain");
  const read = await api("GET", `/b/${otherBucket}/plain?q=${id}`);
  expect(read.status).toBe(200);
  expect(await read.text()).toBe("plain");
  expect(({} as Record<string, unknown>).carry).toBeUndefined();
  expect(({} as Record<string, unknown>).after).toBeUndefined();
}

describe("entries named like Object.prototype properties", () => {
  for (const name of OBJECT_PROPERTY_NAMES) {
    it(`${name}: every read path, remove by query, rename, delete; the server stays healthy`, async () => {
      const bucket = uniqueName("proto-entry");
      const other = uniqueName("proto-other");
      await createBucket(bucket);
      await createBucket(other);
      await putRecord(other, "plain", 1, "plain");
      for (const ts of [1, 2, 3]) await putRecord(bucket, name, ts, `r${ts}`);
      await putRecord(bucket, "zz", 1, "zz");

      // Single-record ?q= reads (GET and HEAD).
      const single = await entryQuery(bucket, name);
      for (const ts of [1, 2, 3]) {
        const response = await api("GET", `/b/${bucket}/${name}?q=${single}`);
        expect({ status: response.status, body: await response.text() }).toEqual({ status: 200, body: `r${ts}` });
      }
      const headId = await entryQuery(bucket, name);
      const head = await api("HEAD", `/b/${bucket}/${name}?q=${headId}`);
      expect({ status: head.status, ts: head.headers.get("x-reduct-time") }).toEqual({ status: 200, ts: "1" });

      // v1 batches (GET and HEAD).
      expect(await v1Batch("GET", bucket, name, await entryQuery(bucket, name))).toEqual([1, 2, 3]);
      expect(await v1Batch("HEAD", bucket, name, await entryQuery(bucket, name))).toEqual([1, 2, 3]);

      // v2: one entry, then a wildcard over both entries.
      expect(await ioReadAll(bucket, await ioQuery(bucket, [name]))).toEqual({ entries: [encodeName(name)], records: 3 });
      expect(await ioReadAll(bucket, await ioQuery(bucket, ["*"]))).toEqual({
        entries: [encodeName(name), "zz"].sort(),
        records: 4,
      });

      // Bucket info lists it.
      const info = await bucketInfo(bucket);
      expect(info.entries.find((entry) => entry.name === name)).toMatchObject({ name, record_count: 3 });

      // Remove by query (legacy DELETE and REMOVE query).
      const removed = await api("DELETE", `/b/${bucket}/${name}/q?start=3`);
      expect(await json(removed)).toEqual({ removed_records: 1 });
      const removeQuery = await api("POST", `/b/${bucket}/${name}/q`, {
        body: JSON.stringify({ query_type: "REMOVE", start: 2, stop: 3 }),
      });
      expect(await json(removeQuery)).toEqual({ removed_records: 1 });

      // Rename away and back; the record follows.
      const away = await api("PUT", `/b/${bucket}/${name}/rename`, { body: JSON.stringify({ new_name: "moved" }) });
      await away.arrayBuffer();
      expect(away.status).toBe(200);
      const back = await api("PUT", `/b/${bucket}/moved/rename`, { body: JSON.stringify({ new_name: name }) });
      await back.arrayBuffer();
      expect(back.status).toBe(200);
      const moved = await api("GET", `/b/${bucket}/${name}?ts=1`);
      expect({ status: moved.status, body: await moved.text() }).toEqual({ status: 200, body: "r1" });
      const afterRename = await api("GET", `/b/${bucket}/${name}?q=${await entryQuery(bucket, name)}`);
      expect({ status: afterRename.status, body: await afterRename.text() }).toEqual({ status: 200, body: "r1" });

      // Delete the entry.
      const deleted = await api("DELETE", `/b/${bucket}/${name}`);
      await deleted.arrayBuffer();
      expect(deleted.status).toBe(200);
      const gone = await api("GET", `/b/${bucket}/${name}?ts=1`);
      await gone.arrayBuffer();
      expect(gone.status).toBe(404);

      await expectServerHealthy(other);
    });
  }
});

describe("buckets and tokens named like Object.prototype properties", () => {
  for (const name of OBJECT_PROPERTY_NAMES) {
    it(`${name}`, async () => {
      // Bucket names are [A-Za-z0-9_-]; names outside that are refused as any other.
      const bucketName = /^[A-Za-z0-9_-]+$/.test(name) ? name : null;
      if (bucketName !== null) {
        const created = await api("POST", `/b/${bucketName}`);
        await created.arrayBuffer();
        expect([200, 409]).toContain(created.status);
        await putRecord(bucketName, "e", 1, "x");
        const read = await api("GET", `/b/${bucketName}/e?q=${await entryQuery(bucketName, "e")}`);
        expect({ status: read.status, body: await read.text() }).toEqual({ status: 200, body: "x" });
        const list = await json<{ buckets: { name: string }[] }>(await api("GET", "/list"));
        expect(list.buckets.filter((bucket) => bucket.name === bucketName)).toHaveLength(1);
        const removed = await api("DELETE", `/b/${bucketName}`);
        await removed.arrayBuffer();
        expect(removed.status).toBe(200);
      }
      const token = await api("POST", `/tokens/${name}`, {
        body: JSON.stringify({ full_access: false, read: [name, "*"], write: [name] }),
      });
      expect(token.status).toBe(200);
      const { value } = (await token.json()) as { value: string };
      const me = await json<{ name: string; permissions: { read: string[]; write: string[] } }>(
        await api("GET", "/me", { token: value }),
      );
      expect(me).toMatchObject({ name, permissions: { read: [name, "*"], write: [name] } });
      const shown = await json<{ name: string }>(await api("GET", `/tokens/${name}`));
      expect(shown.name).toBe(name);
      const listed = await json<{ tokens: { name: string }[] }>(await api("GET", "/tokens"));
      expect(listed.tokens.filter((entry) => entry.name === name)).toHaveLength(1);
      const removed = await api("DELETE", `/tokens/${name}`);
      await removed.arrayBuffer();
      expect(removed.status).toBe(200);
      const other = uniqueName("proto-healthy");
      await createBucket(other);
      await putRecord(other, "plain", 1, "plain");
      await expectServerHealthy(other);
    });
  }
});

describe("size directives", () => {
  it("a unit named like an Object.prototype property is refused, not read as NaN", async () => {
    const bucket = uniqueName("proto-directive");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "x");
    for (const unit of ["constructor", "__proto__", "toString"]) {
      const response = await api("POST", `/b/${bucket}/e/q`, {
        body: JSON.stringify({ query_type: "QUERY", when: { "#batch_size": `1${unit}` } }),
      });
      await expectError(response, 422, `#batch_size must be a positive integer or string: invalid size '1${unit}'`);
    }
  });
});

describe("label updates", () => {
  it("v2 update refuses a label named __proto__ per record, as it refuses every label a record cannot hold", async () => {
    const bucket = uniqueName("proto-update");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "x", { labels: { a: "1" } });
    await putRecord(bucket, "e", 2, "x", { labels: { a: "1" } });
    const write = await api("POST", `/io/${bucket}/write`, {
      headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "5", "x-reduct-0-0": "1,text/plain,__proto__=p" },
      body: "x",
    });
    await expectError(write, 422, "Label name '__proto__' is reserved");
    // Ops accumulate per entry: the second record also gets the first one's ops.
    for (const [set, remove, refused] of [
      ["__proto__=p", "b=2", ["0-0", "0-1"]],
      ["b=2", "__proto__=p", ["0-1"]],
    ] as const) {
      const response = await api("PATCH", `/io/${bucket}/update`, {
        headers: {
          "x-reduct-entries": "e",
          "x-reduct-start-ts": "1",
          "x-reduct-0-0": `0,,${set}`,
          "x-reduct-0-1": `0,,${remove}`,
        },
      });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      const errors = [...response.headers].filter(([name]) => name.startsWith("x-reduct-error-"));
      expect(errors).toEqual(refused.map((record) => [`x-reduct-error-${record}`, "422,Label name '__proto__' is reserved"]));
    }
    const labelNames = async (ts: number) => {
      const head = await api("HEAD", `/b/${bucket}/e?ts=${ts}`);
      return [...head.headers.keys()].filter((name) => name.startsWith("x-reduct-label-"));
    };
    expect(await labelNames(1)).toEqual(["x-reduct-label-a", "x-reduct-label-b"]);
    expect(await labelNames(2)).toEqual(["x-reduct-label-a"]);
  });
});

describe("property: any entry name that writes reads back through a query", () => {
  it("names drawn from Object.prototype's own properties and random tokens", async () => {
    const prototypeNames = Object.getOwnPropertyNames(Object.prototype);
    const bucket = uniqueName("proto-property");
    await createBucket(bucket);
    let ts = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constantFrom(...prototypeNames), fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)), async (name) => {
        ts += 1;
        await putRecord(bucket, name, ts, `v${ts}`);
        const id = await entryQuery(bucket, name, { start: ts });
        const response = await api("GET", `/b/${bucket}/${name}?q=${id}`);
        expect({ status: response.status, body: await response.text() }).toEqual({ status: 200, body: `v${ts}` });
      }),
      { numRuns: 30 },
    );
    const info = await api("GET", "/info");
    await info.arrayBuffer();
    expect(info.status).toBe(200);
  });
});
