/**
 * Query links through the Worker: creation, the anonymous GET/HEAD of a link, its signature,
 * expiry and issuer checks, record selection and byte ranges over small (staged or block) and
 * large (own R2 object) records.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Bindings } from "../../src/api/context";
import { contentDisposition, parseByteRange } from "../../src/api/links";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { api, expectError, uniqueName } from "../helpers/http";
import { instrumentR2 } from "../helpers/r2-counter";

const SMALL = "Hello, query links!";
const LARGE_BYTES = 200 * 1024;
const large = new Uint8Array(LARGE_BYTES).map((_, index) => (index * 7) % 251);

async function bucketWithRecords(): Promise<string> {
  const bucket = uniqueName("links");
  expect((await api("POST", `/b/${bucket}`)).status).toBe(200);
  const writes: Array<[string, number, BodyInit, string]> = [
    ["small", 1000, SMALL, "text/plain"],
    ["small", 2000, "second", "text/plain"],
    ["big", 1500, large, "application/octet-stream"],
  ];
  for (const [entry, ts, body, type] of writes) {
    const response = await api("POST", `/b/${bucket}/${entry}?ts=${ts}`, {
      body,
      headers: { "content-type": type, "x-reduct-label-kind": entry },
    });
    expect(response.status, await response.text()).toBe(200);
  }
  return bucket;
}

function linkBody(bucket: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    bucket,
    entry: "small",
    record_entry: "small",
    record_timestamp: 1000,
    query: { query_type: "QUERY" },
    expire_at: Math.floor(Date.now() / 1000) + 3600,
    ...extra,
  });
}

async function createLink(
  bucket: string,
  extra: Record<string, unknown> = {},
  token?: string,
  fileName = "file.txt",
): Promise<string> {
  const response = await api("POST", `/links/${fileName}`, { body: linkBody(bucket, extra), token });
  expect(response.status, await response.clone().text()).toBe(200);
  return ((await response.json()) as { link: string }).link;
}

/** Opens a link without a token. */
function open(link: string, headers: Record<string, string> = {}, method = "GET"): Promise<Response> {
  const url = new URL(link);
  return api(method, url.pathname.replace(/^\/api\/v1/, "") + url.search, { token: null, headers });
}

async function createToken(read: string[]): Promise<{ name: string; value: string }> {
  const name = uniqueName("link-token");
  const response = await api("POST", `/tokens/${name}`, { body: JSON.stringify({ permissions: { read } }) });
  expect(response.status).toBe(200);
  return { name, value: ((await response.json()) as { value: string }).value };
}

describe("creating a link", () => {
  it("returns a link under the request's origin with the file name", async () => {
    const bucket = await bucketWithRecords();
    const link = await createLink(bucket, {}, undefined, "custom-name.txt");
    expect(link).toMatch(/^http:\/\/localhost\/api\/v1\/links\/custom-name\.txt\?/);
  });

  it("uses base_url, adding the trailing slash", async () => {
    const bucket = await bucketWithRecords();
    expect(await createLink(bucket, { base_url: "https://example.com/base" })).toMatch(
      /^https:\/\/example\.com\/base\/api\/v1\/links\/file\.txt\?/,
    );
  });

  it.each([
    ["REMOVE query", { query: { query_type: "REMOVE" } }, 422, "Only 'Query' type is supported for query links"],
    [
      "bad base_url",
      { base_url: "ht!tp://invalid-url" },
      422,
      "Invalid base_url provided for query link: relative URL without a base",
    ],
    [
      "entry without timestamp",
      { record_timestamp: null },
      422,
      "Both record_entry and record_timestamp must be set to select a record",
    ],
    [
      "missing expire_at",
      { expire_at: undefined },
      422,
      "Invalid JSON: expire_at: Invalid input: expected number, received undefined",
    ],
    // Whole seconds only: 1.5 and 2^64 were accepted, 2^64 rounded to a link that never expires.
    ["fractional expire_at", { expire_at: 1.5 }, 422, "Invalid JSON: expire_at: Invalid input: expected int, received number"],
    [
      "expire_at beyond 2^53",
      { expire_at: 2 ** 64 },
      422,
      "Invalid JSON: expire_at: Too big: expected int to be <=9007199254740991",
    ],
    ["negative expire_at", { expire_at: -1 }, 422, "Invalid JSON: expire_at: Too small: expected number to be >=0"],
  ])("%s", async (_, extra, status, message) => {
    const bucket = await bucketWithRecords();
    await expectError(await api("POST", "/links/f.txt", { body: linkBody(bucket, extra) }), status, message);
  });

  it("needs read access to the bucket", async () => {
    const bucket = await bucketWithRecords();
    const token = await createToken(["other"]);
    await expectError(
      await api("POST", "/links/f.txt", { body: linkBody(bucket), token: token.value }),
      403,
      `Token '${token.name}' doesn't have read access to bucket '${bucket}'`,
    );
    await expectError(
      await api("POST", "/links/f.txt", { body: linkBody(bucket), token: null }),
      401,
      "No bearer token in request header",
    );
  });
});

describe("opening a link", () => {
  it("serves the selected record anonymously with its headers", async () => {
    const bucket = await bucketWithRecords();
    const response = await open(await createLink(bucket, {}, undefined, "greeting.txt"), { "accept-encoding": "gzip, br, zstd" });
    expect(response.status).toBe(200);
    expect(Object.fromEntries(response.headers)).toMatchObject({
      "content-type": "text/plain",
      "content-length": String(SMALL.length),
      "content-disposition": 'attachment; filename="greeting.txt"',
      "accept-ranges": "bytes",
      "x-reduct-time": "1000",
      "x-reduct-label-kind": "small",
    });
    expect(await response.text()).toBe(SMALL);
  });

  it("HEAD has the headers and no body", async () => {
    const bucket = await bucketWithRecords();
    const response = await open(await createLink(bucket), {}, "HEAD");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe(String(SMALL.length));
    expect(await response.text()).toBe("");
  });

  it("selects by entry and timestamp across entries, or by legacy index", async () => {
    const bucket = await bucketWithRecords();
    const query = { query_type: "QUERY", entries: ["small", "big"] };
    const second = await open(await createLink(bucket, { query, record_timestamp: 2000 }));
    expect(await second.text()).toBe("second");
    const byIndex = await open(await createLink(bucket, { record_entry: null, record_timestamp: null, index: 1 }));
    expect(await byIndex.text()).toBe("second");
    const limited = await open(
      await createLink(bucket, { query: { query_type: "QUERY", when: { $limit: 1 } }, record_timestamp: 2000 }),
    );
    await expectError(limited, 404, "Record small/2000 not found in query result");
  });

  it("ignores the query's ttl and continuous flag: its GET runs a short one-off query of its own", async () => {
    const bucket = await bucketWithRecords();
    for (const query of [
      { query_type: "QUERY", ttl: 99_999_999 },
      { query_type: "QUERY", ttl: 86_401, continuous: true },
    ]) {
      const response = await open(await createLink(bucket, { query }));
      expect(response.status, await response.clone().text()).toBe(200);
      expect(await response.text()).toBe(SMALL);
    }
  });

  it("counts in usage the bytes it sends: a range's, none for a 416 or a HEAD", async () => {
    const bucket = await bucketWithRecords();
    const stub = env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
    // An hour-long usage window: the reads stay in the object's table while the test reads them.
    await runInDurableObject(stub, (instance) => {
      const holder = instance as unknown as { env: Bindings };
      holder.env = { ...holder.env, RS_SYSTEM_EVENTS_USAGE_INTERVAL: "3600" };
    });
    const reads = async () => {
      await runDurableObjectAlarm(stub);
      return runInDurableObject(stub, (_instance, state) =>
        state.storage.sql
          .exec<{ bytes: number; records: number }>(
            "SELECT coalesce(sum(read_bytes), 0) AS bytes, coalesce(sum(records_read), 0) AS records FROM usage_traffic WHERE entry = 'small'",
          )
          .one(),
      );
    };
    const link = await createLink(bucket);
    const before = await reads();
    const responses = [
      await open(link, { range: "bytes=0-4" }),
      await open(link, { range: "bytes=999-" }),
      await open(link, {}, "HEAD"),
      await open(link),
    ];
    for (const response of responses) await response.arrayBuffer();
    expect(responses.map((response) => response.status)).toEqual([206, 416, 200, 200]);
    const after = await reads();
    expect({ bytes: after.bytes - before.bytes, records: after.records - before.records }).toEqual({
      bytes: 5 + SMALL.length,
      records: 2,
    });
  });

  const none = { record_entry: null, record_timestamp: null };
  it.each([
    [
      "no record in the link nor the URL",
      none,
      "",
      422,
      "Both 'record_entry' and 'record_timestamp' must be provided in payload or URL parameters",
    ],
    ["the URL's e and ts", none, "&e=small&ts=2000", 200, "second"],
    ["the URL's e and ts over the link's record", {}, "&e=small&ts=2000", 200, "second"],
    ["the URL's e and ts over a legacy index", { ...none, index: 0 }, "&e=small&ts=2000", 200, "second"],
    ["e without ts", none, "&e=small", 422, "Both 'e' and 'ts' parameters must be provided together"],
    ["ts without e", {}, "&ts=2000", 422, "Both 'e' and 'ts' parameters must be provided together"],
    ["a ts that is no number", none, "&e=small&ts=abc", 422, "Invalid 'ts' parameter: invalid digit found in string"],
    ["an empty ts", none, "&e=small&ts=", 422, "Invalid 'ts' parameter: cannot parse integer from empty string"],
    [
      "a ts past 2^53",
      none,
      "&e=small&ts=18446744073709551615",
      422,
      "Invalid 'ts' parameter: number too large to fit in target type",
    ],
    ["a record the query does not select", none, "&e=small&ts=3000", 404, "Record small/3000 not found in query result"],
    ["a legacy index", { ...none, index: 1 }, "", 200, "second"],
    ["a legacy index past the result", { ...none, index: 5 }, "", 404, "Record number out of range"],
  ] as const)("selects by %s: %j, URL +%s → %i", async (_title, extra, search, status, expected) => {
    const bucket = await bucketWithRecords();
    const response = await open(`${await createLink(bucket, extra)}${search}`);
    if (status === 200) {
      expect(response.status).toBe(200);
      expect(await response.text()).toBe(expected);
    } else {
      await expectError(response, status, expected);
    }
  });

  it("streams a large record whole and by ranges, reading only the range", async () => {
    const bucket = await bucketWithRecords();
    const link = await createLink(bucket, { entry: "big", record_entry: "big", record_timestamp: 1500 });
    const whole = await open(link, { "accept-encoding": "gzip, br, zstd" });
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-length")).toBe(String(LARGE_BYTES));
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(large);
    const cases: Array<[string, number, number]> = [
      ["bytes=0-99", 0, 99],
      ["bytes=-100", LARGE_BYTES - 100, LARGE_BYTES - 1],
      ["bytes=150000-", 150000, LARGE_BYTES - 1],
      ["bytes=100-999999999", 100, LARGE_BYTES - 1],
    ];
    for (const [range, start, end] of cases) {
      const response = await open(link, { range });
      expect(response.status, range).toBe(206);
      expect(response.headers.get("content-range")).toBe(`bytes ${start}-${end}/${LARGE_BYTES}`);
      expect(response.headers.get("content-length")).toBe(String(end - start + 1));
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(large.slice(start, end + 1));
    }
  });

  it("a ranged read asks R2 for the range only", async () => {
    const bucket = await bucketWithRecords();
    const link = await createLink(bucket, { entry: "big", record_entry: "big", record_timestamp: 1500 });
    const { counts, stop } = instrumentR2();
    try {
      const response = await open(link, { range: "bytes=1000-1099" });
      expect(response.status).toBe(206);
      expect((await response.arrayBuffer()).byteLength).toBe(100);
    } finally {
      stop();
    }
    expect({ gets: counts.gets, bytesRead: counts.bytesRead }).toEqual({ gets: 1, bytesRead: 100 });
  });

  it("serves a record of a sealed block, whole and by range", async () => {
    const bucket = uniqueName("links-sealed");
    // Blocks of two records: the first two are sealed into one R2 block object when the third arrives.
    expect((await api("POST", `/b/${bucket}`, { body: JSON.stringify({ max_block_records: 2 }) })).status).toBe(200);
    for (const [ts, text] of [
      [1000, "first-record"],
      [2000, "second-record"],
      [3000, "third"],
    ] as const) {
      expect(
        (await api("POST", `/b/${bucket}/e?ts=${ts}`, { body: text, headers: { "content-type": "text/plain" } })).status,
      ).toBe(200);
    }
    await (await api("GET", `/b/${bucket}`)).arrayBuffer();
    const link = await createLink(bucket, { entry: "e", record_entry: "e", record_timestamp: 2000 });
    const { counts, stop } = instrumentR2();
    try {
      expect(await (await open(link)).text()).toBe("second-record");
      const part = await open(link, { range: "bytes=7-12" });
      expect(part.status).toBe(206);
      expect(part.headers.get("content-range")).toBe("bytes 7-12/13");
      expect(await part.text()).toBe("record");
    } finally {
      stop();
    }
    // Both reads came from the sealed block, by ranges of the record's bytes only.
    expect({ gets: counts.gets, bytesRead: counts.bytesRead }).toEqual({ gets: 2, bytesRead: 13 + 6 });
  });

  it("serves ranges of a small record", async () => {
    const bucket = await bucketWithRecords();
    const link = await createLink(bucket);
    const response = await open(link, { range: "bytes=0-4" });
    expect(response.status).toBe(206);
    expect(response.headers.get("content-range")).toBe(`bytes 0-4/${SMALL.length}`);
    expect(await response.text()).toBe("Hello");
    const unsatisfiable = await open(link, { range: `bytes=${SMALL.length}-` });
    // The 416 tells the record's length, so a client can ask again.
    expect(unsatisfiable.headers.get("content-range")).toBe(`bytes */${SMALL.length}`);
    await expectError(unsatisfiable, 416, `Range bytes=${SMALL.length}- is not satisfiable for ${SMALL.length} bytes`);
    const ignored = await open(link, { range: "bytes=abc" });
    expect(ignored.status).toBe(200);
    expect(await ignored.text()).toBe(SMALL);
  });

  it.each([
    ["missing signature", (link: string) => link.replace(/&s=[^&]*/, ""), 422, "Missing 's' parameter"],
    ["missing parameters", (link: string) => link.replace(/\?.*/, ""), 422, "Missing 'p' parameter"],
    [
      "tampered parameters",
      (link: string) => link.replace(/p=./, (m) => (m.endsWith("A") ? "p=B" : "p=A")),
      422,
      "Invalid query link: the signature does not match",
    ],
    [
      "forged signature",
      (link: string) => link.replace(/s=[^&]*/, "s=AAAA"),
      422,
      "Invalid query link: the signature does not match",
    ],
    ["unknown issuer", (link: string) => link.replace(/i=[^&]*/, "i=nobody"), 404, "Token 'nobody' doesn't exist"],
  ])("%s → %i", async (_, change, status, message) => {
    const bucket = await bucketWithRecords();
    await expectError(await open(change(await createLink(bucket))), status, message);
  });

  it("an expired issuing token → 401", async () => {
    const bucket = await bucketWithRecords();
    const token = await createToken([bucket]);
    const link = await createLink(bucket, {}, token.value);
    await env.DB.prepare("UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z' WHERE name = ?1").bind(token.name).run();
    await expectError(await open(link), 401, "Token has expired");
  });

  it("an expired link → 422", async () => {
    const bucket = await bucketWithRecords();
    const link = await createLink(bucket, { expire_at: Math.floor(Date.now() / 1000) - 10 });
    await expectError(await open(link), 422, "Query link has expired");
  });

  it("dies with its token: deleted, rotated, or lost read access", async () => {
    const bucket = await bucketWithRecords();
    const deleted = await createToken([bucket]);
    const deletedLink = await createLink(bucket, {}, deleted.value);
    expect((await open(deletedLink)).status).toBe(200);
    expect((await api("DELETE", `/tokens/${deleted.name}`)).status).toBe(200);
    await expectError(await open(deletedLink), 404, `Token '${deleted.name}' doesn't exist`);

    const rotated = await createToken([bucket]);
    const rotatedLink = await createLink(bucket, {}, rotated.value);
    expect((await api("POST", `/tokens/${rotated.name}/rotate`)).status).toBe(200);
    await expectError(await open(rotatedLink), 422, "Invalid query link: the signature does not match");

    // Tokens have no update endpoint; a permission change is written to the row as a store would.
    const narrowed = await createToken([bucket]);
    const narrowedLink = await createLink(bucket, {}, narrowed.value);
    expect((await open(narrowedLink)).status).toBe(200);
    await env.DB.prepare("UPDATE tokens SET read_buckets = '[]' WHERE name = ?1").bind(narrowed.name).run();
    await expectError(await open(narrowedLink), 403, `Token '${narrowed.name}' doesn't have read access to bucket '${bucket}'`);
  });
});

describe("parseByteRange", () => {
  it.each([
    [undefined, 10, null],
    ["bytes=0-0", 10, { start: 0, end: 0 }],
    ["bytes=-3", 10, { start: 7, end: 9 }],
    ["bytes=-30", 10, { start: 0, end: 9 }],
    ["bytes=5-", 10, { start: 5, end: 9 }],
    ["bytes=2-1", 10, null],
    ["bytes=0-1,3-4", 10, null],
    ["items=0-1", 10, null],
    // Units compare case-insensitively; whitespace around the range is allowed.
    ["BYTES=0-1", 10, { start: 0, end: 1 }],
    ["bytes= 0-1", 10, { start: 0, end: 1 }],
    ["Bytes = 2 - 3", 10, { start: 2, end: 3 }],
  ])("%s of %i bytes", (header, size, expected) => {
    expect(parseByteRange(header, size)).toEqual(expected);
  });

  it.each([
    ["bytes=10-", 10],
    ["bytes=-0", 10],
    ["bytes=0-", 0],
  ])("%s of %i bytes → 416", (header, size) => {
    expect(() => parseByteRange(header, size)).toThrow(/not satisfiable/);
  });
});

describe("contentDisposition", () => {
  it.each([
    ["file.txt", 'attachment; filename="file.txt"'],
    ['a"b.bin', "attachment; filename=\"a_b.bin\"; filename*=UTF-8''a%22b.bin"],
    ["café.mcap", "attachment; filename=\"caf_.mcap\"; filename*=UTF-8''caf%C3%A9.mcap"],
    // Inside filename* only RFC 8187's attr-char stays as is: ' ( ) * and the rest are encoded.
    ["café's(1)*.txt", "attachment; filename=\"caf_'s(1)*.txt\"; filename*=UTF-8''caf%C3%A9%27s%281%29%2A.txt"],
    ["é!#$&+-.^_`|~", "attachment; filename=\"_!#$&+-.^_`|~\"; filename*=UTF-8''%C3%A9!#$&+-.^_`|~"],
    ["é a,b;c=d", "attachment; filename=\"_ a,b;c=d\"; filename*=UTF-8''%C3%A9%20a%2Cb%3Bc%3Dd"],
    [
      "é%20/\\?[]{}<>@:",
      "attachment; filename=\"_%20/_?[]{}<>@:\"; filename*=UTF-8''%C3%A9%2520%2F%5C%3F%5B%5D%7B%7D%3C%3E%40%3A",
    ],
    ["日本.txt", "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"],
    ["😀\u00a0.bin", "attachment; filename=\"__.bin\"; filename*=UTF-8''%F0%9F%98%80%C2%A0.bin"],
    // A lone surrogate cannot be UTF-8: it is sent as U+FFFD instead of failing the response.
    ["a\ud800.bin", "attachment; filename=\"a_.bin\"; filename*=UTF-8''a%EF%BF%BD.bin"],
  ])("%j", (name, expected) => {
    expect(contentDisposition(name)).toBe(expected);
  });
});
