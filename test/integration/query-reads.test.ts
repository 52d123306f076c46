/**
 * Query reads on every path (single `?q=`, v1 `…/batch`, v2 `/io/:bucket/read`; GET and HEAD):
 * a read answers 204 only when the query has nothing (more), a scan longer than one call of the
 * bucket object continues instead of ending early, only_metadata reads never need a body, a
 * failed read does not advance the cursor, and size directives of 0 still send one record.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { MAX_SCANNED_ROWS_PER_CALL } from "../../src/bucket/query-engine";
import { api, uniqueName } from "../helpers/http";
import { instrumentR2 } from "../helpers/r2-counter";
import { bytesOf, createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

let stopR2: (() => void) | undefined;
afterEach(() => {
  stopR2?.();
  stopR2 = undefined;
});

/** Writes `count` records of one byte labelled match=no through the object's RPC (fast setup). */
async function fillNonMatching(bucket: string, entry: string, first: number, count: number): Promise<void> {
  const stub = stubOf(bucket);
  for (let i = 0; i < count; i += 1000) {
    const items = Array.from({ length: Math.min(1000, count - i) }, (_, j) => ({
      meta: { entry, ts: first + i + j, size: 1, contentType: "text/plain", labels: { match: "no" } },
      payload: new Uint8Array([120]).buffer as ArrayBuffer,
    }));
    const result = await stub.writeRecords(items);
    expect(result.ok && result.outcomes.every((outcome) => outcome.ok)).toBe(true);
  }
}

type Path = "single" | "v1" | "v2";
interface Read {
  status: number;
  records: { entry: string; ts: number; size: number }[];
  last: string | null;
  contentLength: string | null;
  body: Uint8Array;
  error: string | null;
}

async function createQuery(path: Path, bucket: string, entries: string[], body: Record<string, unknown>): Promise<number> {
  const response =
    path === "v2"
      ? await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", entries, ...body }) })
      : await api("POST", `/b/${bucket}/${entries[0]}/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { id: number }).id;
}

/** One read of a query on `path`, its records decoded from the path's headers. */
async function readOnce(path: Path, method: string, bucket: string, entry: string, id: number): Promise<Read> {
  const response =
    path === "single"
      ? await api(method, `/b/${bucket}/${entry}?q=${id}`)
      : path === "v1"
        ? await api(method, `/b/${bucket}/${entry}/batch?q=${id}`)
        : await api(method, `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
  const body = new Uint8Array(await response.arrayBuffer());
  const records: Read["records"] = [];
  if (response.status === 200) {
    if (path === "single") {
      records.push({
        entry: response.headers.get("x-reduct-entry") ?? "",
        ts: Number(response.headers.get("x-reduct-time")),
        size: Number(response.headers.get("content-length")),
      });
    } else if (path === "v1") {
      for (const [name, value] of response.headers) {
        if (name.startsWith("x-reduct-time-"))
          records.push({ entry, ts: Number(name.slice(14)), size: Number(value.split(",")[0]) });
      }
    } else {
      const entries = (response.headers.get("x-reduct-entries") ?? "").split(",").filter((name) => name !== "");
      const start = Number(response.headers.get("x-reduct-start-ts"));
      for (const [name, value] of response.headers) {
        const match = /^x-reduct-(\d+)-(\d+)$/.exec(name);
        if (match)
          records.push({
            entry: entries[Number(match[1])] ?? "?",
            ts: start + Number(match[2]),
            size: Number(value.split(",")[0]),
          });
      }
    }
  }
  records.sort((a, b) => a.ts - b.ts || a.entry.localeCompare(b.entry));
  return {
    status: response.status,
    records,
    last: response.headers.get("x-reduct-last"),
    contentLength: response.headers.get("content-length"),
    body,
    error: response.headers.get("x-reduct-error"),
  };
}

/** Reads until 204 (or `limit` reads); a 200 without records (scan still running) is asked again. */
async function readAll(path: Path, method: string, bucket: string, entry: string, id: number, limit = 20): Promise<Read[]> {
  const reads: Read[] = [];
  for (let i = 0; i < limit; i++) {
    const read = await readOnce(path, method, bucket, entry, id);
    reads.push(read);
    if (read.status !== 200) break;
  }
  return reads;
}

const PATHS: { path: Path; method: "GET" | "HEAD" }[] = [
  { path: "single", method: "GET" },
  { path: "single", method: "HEAD" },
  { path: "v1", method: "GET" },
  { path: "v1", method: "HEAD" },
  { path: "v2", method: "GET" },
  { path: "v2", method: "HEAD" },
];

describe("a selective query scanning past one call's budget", () => {
  const bucket = uniqueName("scan");
  /** Non-matching rows before the one match: more than any single call of the object scans. */
  const SKIPPED = Math.max(51_000, 2 * MAX_SCANNED_ROWS_PER_CALL + 1_000);
  const START = 1_000_000;
  const MATCH_TS = START + SKIPPED;

  beforeAll(async () => {
    await createBucket(bucket);
    await fillNonMatching(bucket, "big", START, SKIPPED);
    await putRecord(bucket, "big", MATCH_TS, "found", { labels: { match: "yes" } });
    // A second entry for the multi-entry case: non-matching rows inside the same time range.
    await fillNonMatching(bucket, "other", START + 5, 2_000);
  }, 300_000);

  const cases = PATHS.flatMap(({ path, method }) =>
    [false, true].flatMap((continuous) =>
      (path === "v2" ? [["big"], ["big", "other"]] : [["big"]]).map((entries) => ({ path, method, continuous, entries })),
    ),
  );

  it.each(cases)(
    "$method $path entries=$entries continuous=$continuous returns the last record, then 204",
    async ({ path, method, continuous, entries }) => {
      const id = await createQuery(path, bucket, entries, { when: { "&match": { $eq: "yes" } }, continuous });
      const reads = await readAll(path, method, bucket, entries[0]!, id);
      const found = reads.flatMap((read) => read.records);
      expect(found).toEqual([{ entry: "big", ts: MATCH_TS, size: 5 }]);
      const withRecord = reads.find((read) => read.records.length > 0)!;
      if (method === "GET") expect(new TextDecoder().decode(withRecord.body)).toBe("found");
      const final = reads[reads.length - 1]!;
      expect({ status: final.status, error: final.error }).toEqual({ status: 204, error: "No content" });
    },
    120_000,
  );

  it("a concurrent GET /b/:bucket is answered while a single-record read scans", async () => {
    const id = await createQuery("single", bucket, ["big"], { when: { "&match": { $eq: "yes" } } });
    const started = Date.now();
    let readMs = 0;
    let infoMs = 0;
    const read = readOnce("single", "GET", bucket, "big", id).then((result) => {
      readMs = Date.now() - started;
      return result;
    });
    // Let the read's first call reach the object, then ask for the bucket.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const infoStarted = Date.now();
    const info = await api("GET", `/b/${bucket}`);
    await info.arrayBuffer();
    infoMs = Date.now() - infoStarted;
    const result = await read;
    expect(info.status).toBe(200);
    expect(result.records.map((record) => record.ts)).toEqual([MATCH_TS]);
    // The info request waits for at most one call of the scan, not for all of it.
    expect(infoMs).toBeLessThan(readMs * 0.75);
  }, 120_000);
});

describe("only_metadata queries read with GET", () => {
  it.each(PATHS)("$method $path returns metadata of every record, without bodies", async ({ path, method }) => {
    const bucket = uniqueName("meta");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, "aaaa", { labels: { k: "1" } });
    await putRecord(bucket, "e", 2000, bytesOf(200_000), { labels: { k: "2" } }); // its own R2 object
    await putRecord(bucket, "e", 3000, "cc", { labels: { k: "3" } });
    const id = await createQuery(path, bucket, ["e"], { only_metadata: true });
    const reads = await readAll(path, method, bucket, "e", id);
    expect(reads.map((read) => read.status).slice(-1)).toEqual([204]);
    expect(reads.flatMap((read) => read.records)).toEqual([
      { entry: "e", ts: 1000, size: path === "single" && method === "GET" ? 0 : 4 },
      { entry: "e", ts: 2000, size: path === "single" && method === "GET" ? 0 : 200_000 },
      { entry: "e", ts: 3000, size: path === "single" && method === "GET" ? 0 : 2 },
    ]);
    for (const read of reads) expect(read.body.byteLength).toBe(0);
  });
});

describe("a failed read does not advance the query", () => {
  const cases = PATHS.filter(({ method }) => method === "GET").flatMap(({ path }) =>
    (["block", "object"] as const).map((storage) => ({ path, storage })),
  );
  it.each(cases)(
    "$path: an R2 get failing for a record in a $storage sends the same record next time",
    async ({ path, storage }) => {
      const bucket = uniqueName("fail");
      // Tiny blocks: the first records are sealed into R2 objects as soon as the block is full.
      await createBucket(bucket, { max_block_records: 2 });
      const size = storage === "object" ? 200_000 : 10;
      for (const ts of [1000, 2000, 3000, 4000]) await putRecord(bucket, "e", ts, bytesOf(size, ts));
      const sealed = await api("GET", `/b/${bucket}`);
      await sealed.arrayBuffer();
      const id = await createQuery(path, bucket, ["e"], { when: { "#batch_records": 1, $limit: 100 } });
      let failGets = true;
      const { stop } = instrumentR2((operation) => {
        if (operation === "get" && failGets) throw new Error("injected R2 get failure");
      });
      stopR2 = stop;
      const failed = await readOnce(path, "GET", bucket, "e", id).catch(() => null);
      expect(failed === null || failed.status === 500 || failed.body.byteLength < size).toBe(true);
      failGets = false;
      const reads = await readAll(path, "GET", bucket, "e", id);
      expect(reads.flatMap((read) => read.records.map((record) => record.ts))).toEqual([1000, 2000, 3000, 4000]);
      expect(reads.filter((read) => read.records.length > 0).every((read) => read.body.byteLength === size)).toBe(true);
    },
  );
});

describe("size directives of 0 still send one record per batch", () => {
  const directives = [
    { "#batch_size": 0 },
    { "#batch_size": "0KB" },
    { "#batch_metadata_size": 0 },
    { "#batch_metadata_size": "0KB" },
  ];
  const cases = PATHS.flatMap(({ path, method }) => directives.map((directive) => ({ path, method, directive })));
  it.each(cases)("$method $path $directive", async ({ path, method, directive }) => {
    const bucket = uniqueName("zero");
    await createBucket(bucket);
    for (const ts of [1000, 2000, 3000]) await putRecord(bucket, "e", ts, "abc");
    const id = await createQuery(path, bucket, ["e"], { when: { ...directive, $limit: 10 } });
    const reads = await readAll(path, method, bucket, "e", id);
    expect(reads.filter((read) => read.status === 200).map((read) => read.records.map((record) => record.ts))).toEqual([
      [1000],
      [2000],
      [3000],
    ]);
    expect(reads[reads.length - 1]?.status).toBe(204);
  });
});

describe("stored query state is bounded", () => {
  const bigWhen = { $and: Array.from({ length: 2_000 }, (_, i) => ({ [`&label_${i}`]: { $eq: "x".repeat(20) } })) };
  const cases = [
    {
      name: "v1 ttl above a day",
      path: "v1",
      body: { ttl: 86_401 },
      status: 422,
      error: "Query TTL must be at most 86400 seconds",
    },
    {
      name: "v2 ttl above a day",
      path: "v2",
      body: { ttl: 2 ** 53 - 1 },
      status: 422,
      error: "Query TTL must be at most 86400 seconds",
    },
    {
      name: "legacy ttl above a day",
      path: "legacy",
      body: { ttl: 86_401 },
      status: 422,
      error: "Query TTL must be at most 86400 seconds",
    },
    { name: "v1 ttl of a day", path: "v1", body: { ttl: 86_400 }, status: 200, error: null },
    { name: "legacy ttl of a day", path: "legacy", body: { ttl: 86_400 }, status: 200, error: null },
    {
      name: "v1 when above 64 KiB",
      path: "v1",
      body: { when: bigWhen },
      status: 422,
      error: `Query condition is too large: ${JSON.stringify(bigWhen).length} bytes of JSON, at most 65536`,
    },
    {
      name: "v2 when above 64 KiB",
      path: "v2",
      body: { when: bigWhen },
      status: 422,
      error: `Query condition is too large: ${JSON.stringify(bigWhen).length} bytes of JSON, at most 65536`,
    },
    {
      name: "v2 REMOVE with a when above 64 KiB",
      path: "v2-remove",
      body: { when: bigWhen },
      status: 422,
      error: `Query condition is too large: ${JSON.stringify(bigWhen).length} bytes of JSON, at most 65536`,
    },
  ] as const;

  it.each(cases)("$name → $status", async ({ path, body, status, error }) => {
    const bucket = uniqueName("limits");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, "a");
    const response =
      path === "legacy"
        ? await api("GET", `/b/${bucket}/e/q?ttl=${(body as { ttl: number }).ttl}`)
        : path === "v1"
          ? await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) })
          : await api("POST", `/io/${bucket}/q`, {
              body: JSON.stringify({ query_type: path === "v2" ? "QUERY" : "REMOVE", entries: ["e"], ...body }),
            });
    await response.arrayBuffer();
    expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ status, error });
    const stored = await runInDurableObject(
      stubOf(bucket),
      (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM queries").one().n,
    );
    expect(stored).toBe(status === 200 ? 1 : 0);
  });

  it("at most 1,000 open queries per bucket: 429 beyond, and expired ones free their slot and storage", async () => {
    const bucket = uniqueName("many");
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, "a");
    const create = async (ttl: number) => {
      const response = await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY", ttl }) });
      await response.arrayBuffer();
      return { status: response.status, error: response.headers.get("x-reduct-error") };
    };
    expect((await create(60)).status).toBe(200);
    // Fast setup: 994 more copies of that stored query, then the last 5 through the API.
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      for (let i = 1; i < 995; i++) {
        state.storage.sql.exec(
          `INSERT INTO queries (id, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms, cursors, finished,
             generation)
           SELECT id - ?, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms, cursors, finished,
             generation
           FROM queries ORDER BY id DESC LIMIT 1`,
          i,
        );
      }
    });
    for (let i = 0; i < 5; i++) expect((await create(60)).status).toBe(200);
    expect(await create(60)).toEqual({
      status: 429,
      error: "Too many open queries in this bucket (1000); wait until some expire (their TTL) and try again",
    });
    const v2 = await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", entries: ["e"] }) });
    await v2.arrayBuffer();
    expect(v2.status).toBe(429);
    // Let every query's TTL pass (as if 61 s went by).
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      state.storage.sql.exec("UPDATE queries SET last_access_ms = last_access_ms - 61000");
    });
    // The alarm frees expired queries' storage without any request.
    await runDurableObjectAlarm(stubOf(bucket));
    const left = await runInDurableObject(
      stubOf(bucket),
      (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM queries").one().n,
    );
    expect(left).toBe(0);
    expect((await create(60)).status).toBe(200);
  }, 120_000);

  it("at the cap, a query read to its end gives its slot to a new one; unfinished ones keep theirs", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, "a");
    const create = async () => {
      const response = await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY", ttl: 600 }) });
      const text = await response.text();
      return { status: response.status, id: response.status === 200 ? (JSON.parse(text) as { id: number }).id : 0 };
    };
    const finished = await create();
    const readAll = await api("GET", `/b/${bucket}/e/batch?q=${finished.id}`);
    expect({ status: readAll.status, last: readAll.headers.get("x-reduct-last"), body: await readAll.text() }).toEqual({
      status: 200,
      last: "true",
      body: "a",
    });
    const unfinished = await create();
    // Fill the bucket to the cap with copies of the unfinished query.
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      for (let i = 1; i <= 998; i++) {
        state.storage.sql.exec(
          `INSERT INTO queries (id, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms, cursors, finished,
             generation)
           SELECT id + ?, kind, entries, start_ts, stop_ts, continuous, only_metadata, strict, when_json, ttl_s, last_access_ms, cursors, finished,
             generation
           FROM queries WHERE id = ?`,
          i,
          unfinished.id,
        );
      }
    });
    const replacement = await create();
    expect(replacement.status).toBe(200);
    const gone = await api("GET", `/b/${bucket}/e/batch?q=${finished.id}`);
    await gone.arrayBuffer();
    expect(gone.status).toBe(404);
    const kept = await api("GET", `/b/${bucket}/e/batch?q=${unfinished.id}`);
    expect({ status: kept.status, body: await kept.text() }).toEqual({ status: 200, body: "a" });
    // Now every query is unfinished but one: the cap refuses again once that one's slot is used.
    expect((await create()).status).toBe(200);
    expect((await create()).status).toBe(429);
  }, 120_000);
});

describe("the header budget counts entry names", () => {
  it("a v2 batch over entries with long names stays within the metadata budget, and no record is lost", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    // 24 entries whose names are ~1 KB once percent-encoded, one record each: more than one batch's
    // budget of names alone.
    const names = Array.from({ length: 24 }, (_, i) => `${String(i).padStart(2, "0")}/${"a/".repeat(250)}x`);
    const stub = stubOf(bucket);
    for (const [i, entry] of names.entries()) {
      const items = [
        {
          meta: { entry, ts: 1000 + i, size: 1, contentType: "text/plain", labels: {} },
          payload: new Uint8Array([1]).buffer as ArrayBuffer,
        },
      ];
      const written = await stub.writeRecords(items);
      expect(written.ok).toBe(true);
    }
    const id = await createQuery("v2", bucket, ["*"], {});
    const seen: string[] = [];
    for (let read = 0; read < 50; read++) {
      const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
      await response.arrayBuffer();
      if (response.status === 204) break;
      expect(response.status).toBe(200);
      let headerBytes = 0;
      for (const [name, value] of response.headers)
        if (name.startsWith("x-reduct-")) headerBytes += name.length + value.length + 4;
      // The default budget is 16,000 bytes of record metadata (README); the fixed headers are small.
      expect(headerBytes).toBeLessThanOrEqual(16_500);
      const listed = response.headers.get("x-reduct-entries") ?? "";
      if (listed !== "") seen.push(...listed.split(",").map((name) => decodeURIComponent(name)));
    }
    expect(seen.sort()).toEqual([...names].sort());
  }, 120_000);
});
