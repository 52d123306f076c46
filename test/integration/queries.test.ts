import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

const bytes = (text: string) => new TextEncoder().encode(text);

async function createQuery(bucket: string, entry: string, body: Record<string, unknown>): Promise<number> {
  const response = await api("POST", `/b/${bucket}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  const json = (await response.json()) as { id: number };
  expect(response.status).toBe(200);
  return json.id;
}

async function ioQuery(bucket: string, body: Record<string, unknown>): Promise<number> {
  const response = await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  const json = (await response.json()) as { id: number };
  expect(response.status).toBe(200);
  return json.id;
}

/** Reads a whole query through v1 batches: [ts, body] pairs. */
async function readAllV1(bucket: string, entry: string, id: number): Promise<[number, string][]> {
  const out: [number, string][] = [];
  for (let i = 0; i < 1000; i++) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
    if (response.status === 204) break;
    expect(response.status).toBe(200);
    const body = new TextDecoder().decode(await response.arrayBuffer());
    const times = [...response.headers]
      .filter(([name]) => name.startsWith("x-reduct-time-"))
      .map(([name, value]) => [Number(name.slice("x-reduct-time-".length)), Number(value.split(",")[0])] as const)
      .sort((a, b) => a[0] - b[0]);
    let offset = 0;
    for (const [ts, size] of times) {
      out.push([ts, body.slice(offset, offset + size)]);
      offset += size;
    }
    if (response.headers.get("x-reduct-last") === "true") break;
  }
  return out;
}

describe("entry-level queries and batch protocol v1", () => {
  it("returns a v1 batch exactly as the reference does", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry", 1000, bytes("some_data1"));
    await putRecord(bucket, "entry", 1100, bytes("some_data2"), { contentType: "text/plain", labels: { x: "[a,b]" } });
    const id = await createQuery(bucket, "entry", {});
    for (const method of ["HEAD", "GET"]) {
      const queryId = method === "HEAD" ? id : await createQuery(bucket, "entry", {});
      const response = await api(method, `/b/${bucket}/entry/batch?q=${queryId}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/octet-stream");
      expect(response.headers.get("content-length")).toBe("20");
      expect(response.headers.get("x-reduct-time-1000")).toBe("10,application/octet-stream");
      expect(response.headers.get("x-reduct-time-1100")).toBe('10,text/plain,x="[a,b]"');
      expect(response.headers.get("x-reduct-last")).toBe("true");
      expect(await response.text()).toBe(method === "GET" ? "some_data1some_data2" : "");
    }
  });

  it("splits 100 empty records into batches of 85 and 15", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (let i = 0; i < 100; i++) await putRecord(bucket, "e", 1000 + i, new Uint8Array());
    const id = await createQuery(bucket, "e", {});
    const counts: [number, string | null][] = [];
    for (let i = 0; i < 2; i++) {
      const response = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
      await response.arrayBuffer();
      counts.push([
        [...response.headers.keys()].filter((name) => name.startsWith("x-reduct-time-")).length,
        response.headers.get("x-reduct-last"),
      ]);
    }
    expect(counts).toEqual([
      [85, "false"],
      [15, "true"],
    ]);
    const after = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
    expect(after.status).toBe(204);
    expect(after.headers.get("x-reduct-error")).toBe("No content");
  });

  it("honours start (inclusive) and stop (exclusive), reading one record at a time then 204", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const ts of [1000, 1100, 1200]) await putRecord(bucket, "e", ts, bytes(`r${ts}`));
    const id = await createQuery(bucket, "e", { start: 1000, stop: 1200 });
    const first = await api("GET", `/b/${bucket}/e?q=${id}`);
    expect([first.headers.get("x-reduct-time"), await first.text()]).toEqual(["1000", "r1000"]);
    const second = await api("GET", `/b/${bucket}/e?q=${id}`);
    expect([second.headers.get("x-reduct-time"), await second.text()]).toEqual(["1100", "r1100"]);
    const done = await api("GET", `/b/${bucket}/e?q=${id}`);
    expect(done.status).toBe(204);
  });

  it("mixes single reads and batch reads of one query", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const ts of [1, 2, 3]) await putRecord(bucket, "e", ts, bytes(`r${ts}`));
    const id = await createQuery(bucket, "e", {});
    expect(await (await api("GET", `/b/${bucket}/e?q=${id}`)).text()).toBe("r1");
    expect(await readAllV1(bucket, "e", id)).toEqual([
      [2, "r2"],
      [3, "r3"],
    ]);
  });

  it("sorts belated writes by time and hands out increasing ids, including legacy GET …/q", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const ts of [10, 1, 11, 2, 3]) await putRecord(bucket, "e", ts, bytes(String(ts)));
    const ids = [await createQuery(bucket, "e", {})];
    for (const query of ["", "?start=1", "?stop=5"]) {
      const response = await api("GET", `/b/${bucket}/e/q${query}`);
      ids.push(((await response.json()) as { id: number }).id);
    }
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect((await readAllV1(bucket, "e", ids[0]!)).map(([ts]) => ts)).toEqual([1, 2, 3, 10, 11]);
    expect((await readAllV1(bucket, "e", ids[3]!)).map(([ts]) => ts)).toEqual([1, 2, 3]);
  });

  it("filters with when: $each_n, labels, $limit, and strict reference errors", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1000, bytes("a"), { labels: { label1: "true", score: "10" } });
    await putRecord(bucket, "e", 2000, bytes("b"), { labels: { label1: "false", score: "20" } });
    await putRecord(bucket, "e", 3000, bytes("c"), { labels: { label1: "true", score: "20" } });
    const ts = async (body: Record<string, unknown>) =>
      (await readAllV1(bucket, "e", await createQuery(bucket, "e", body))).map(([t]) => t);
    expect(await ts({ when: { $each_n: 2 } })).toEqual([2000]);
    expect(await ts({ when: { "&label1": { $and: true } } })).toEqual([1000, 3000]);
    expect(await ts({ when: { "&score": { $gt: 10 } } })).toEqual([2000, 3000]);
    expect(await ts({ when: { $limit: 1 } })).toEqual([1000]);
    expect(await ts({ when: { "&NOT_EXIST": { $gt: 10 } } })).toEqual([]);
    const strict = await createQuery(bucket, "e", { when: { "&NOT_EXIST": { $gt: 10 } }, strict: true });
    await expectError(await api("GET", `/b/${bucket}/e/batch?q=${strict}`), 404, "Reference 'NOT_EXIST' not found");
  });

  it("continuous queries deliver new records later and never finish", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, bytes("one"));
    const id = await createQuery(bucket, "e", { continuous: true, ttl: 60 });
    const first = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
    expect([first.status, first.headers.get("x-reduct-last"), await first.text()]).toEqual([200, "true", "one"]);
    const idle = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
    expect(idle.status).toBe(204);
    await putRecord(bucket, "e", 2, bytes("two"));
    const next = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
    expect([next.status, await next.text()]).toEqual([200, "two"]);
  });

  it("ttl 0 expires at once; an unknown id is 404", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, bytes("x"));
    const id = await createQuery(bucket, "e", { ttl: 0 });
    const message = `Query ${id} not found and it might have expired. Check TTL in your query request.`;
    await expectError(await api("GET", `/b/${bucket}/e/batch?q=${id}`), 404, message);
  });

  it("removes records by query (JSON and legacy) and reports how many", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const ts of [1, 2, 3, 4]) await putRecord(bucket, "e", ts, bytes("x"), { labels: { even: String(ts % 2 === 0) } });
    const removed = await api("POST", `/b/${bucket}/e/q`, {
      body: JSON.stringify({ query_type: "REMOVE", when: { "&even": { $eq: true } } }),
    });
    expect(await removed.json()).toEqual({ removed_records: 2 });
    const legacy = await api("DELETE", `/b/${bucket}/e/q?start=1&stop=2`);
    expect(await legacy.json()).toEqual({ removed_records: 1 });
    const { entries } = await bucketInfo(bucket);
    expect(entries[0]).toMatchObject({ record_count: 1, oldest_record: 3, latest_record: 3 });
  });
});

describe("multi-entry queries and batch protocol v2", () => {
  it("orders entries by first record and the body by entry then time", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "x/0", 1010, bytes("AA"), { contentType: "text/plain" });
    await putRecord(bucket, "x/1", 1000, bytes("BBB"), { contentType: "text/plain" });
    const id = await ioQuery(bucket, { entries: ["x/0", "x/1"] });
    const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-entries")).toBe("x%2F1,x%2F0");
    expect(response.headers.get("x-reduct-start-ts")).toBe("1000");
    expect(response.headers.get("x-reduct-0-0")).toBe("3,text/plain");
    expect(response.headers.get("x-reduct-1-10")).toBe("2,text/plain");
    expect(response.headers.get("content-length")).toBe("5");
    expect(response.headers.get("x-reduct-last")).toBe("true");
    expect(await response.text()).toBe("BBBAA");
    const after = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
    expect(after.status).toBe(204);
  });

  it("breaks ties by entry name and matches entry patterns; $meta only by exact name", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "z-entry", 1000, bytes("ZZ"));
    await putRecord(bucket, "a-entry", 1000, bytes("AA"));
    await putRecord(bucket, "a-entry/$meta", 5, bytes("{}"), { labels: { key: "k" } });
    const id = await ioQuery(bucket, { entries: ["*"] });
    const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
    expect(response.headers.get("x-reduct-entries")).toBe("a-entry,z-entry");
    expect(await response.text()).toBe("AAZZ");
    const meta = await ioQuery(bucket, { entries: ["a-entry/$meta"] });
    const metaRead = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(meta) } });
    expect(metaRead.headers.get("x-reduct-entries")).toBe("a-entry%2F$meta");
    expect(await metaRead.text()).toBe("{}");
  });

  it("never interleaves two entries inside one batch", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const [entry, ts] of [
      ["a", 1],
      ["b", 2],
      ["a", 3],
      ["b", 4],
    ] as const)
      await putRecord(bucket, entry, ts, bytes(`${entry}${ts}`));
    const id = await ioQuery(bucket, { entries: ["a", "b"] });
    const bodies: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
      if (response.status === 204) break;
      bodies.push(await response.text());
    }
    // a1,b2 agree in both orders; adding a3 would interleave a and b, so the batch ends before it.
    expect(bodies.join("|")).toBe("a1b2|a3b4");
  });

  it("removes by query across entries", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry-1", 1_000_000, bytes("x"));
    for (const ts of [2_000_000, 3_000_000, 4_000_000]) await putRecord(bucket, "entry-2", ts, bytes("y"));
    const response = await api("POST", `/io/${bucket}/q`, {
      body: JSON.stringify({ query_type: "REMOVE", entries: ["entry-1", "entry-2"], start: 0, stop: 3_000_000 }),
    });
    expect(await response.json()).toEqual({ removed_records: 2 });
    const left = await readAllV1(bucket, "entry-2", await createQuery(bucket, "entry-2", {}));
    expect(left.map(([ts]) => ts)).toEqual([3_000_000, 4_000_000]);
  });

  it("streams large records across batches byte for byte", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const payloads = [bytesOf(2 * 1024 * 1024, 1), bytesOf(300_000, 2), bytesOf(1000, 3)];
    for (const [i, payload] of payloads.entries()) await putRecord(bucket, "big", i + 1, payload);
    const id = await ioQuery(bucket, { entries: ["big"], when: { "#batch_size": 1000 } });
    const hashes: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
      if (response.status === 204) break;
      hashes.push(await sha256(await response.arrayBuffer()));
    }
    expect(hashes).toEqual(await Promise.all(payloads.map((payload) => sha256(payload))));
  });
});

describe("query errors (table)", () => {
  const cases: {
    name: string;
    request: (bucket: string) => Promise<Response>;
    status: number;
    message: (bucket: string) => string;
  }[] = [
    {
      name: "batch read without q",
      request: (b) => api("GET", `/b/${b}/e/batch`),
      status: 422,
      message: () => "'q' parameter is required for batched reads",
    },
    {
      name: "batch read with q=abc",
      request: (b) => api("GET", `/b/${b}/e/batch?q=abc`),
      status: 422,
      message: () => "'query' must be a number",
    },
    {
      name: "batch read of an unknown query",
      request: (b) => api("GET", `/b/${b}/e/batch?q=999999`),
      status: 404,
      message: () => "Query 999999 not found and it might have expired. Check TTL in your query request.",
    },
    {
      name: "v2 read without query id",
      request: (b) => api("GET", `/io/${b}/read`),
      status: 422,
      message: () => "x-reduct-query-id header is required for batched reads",
    },
    {
      name: "v2 read with a bad id",
      request: (b) => api("GET", `/io/${b}/read`, { headers: { "x-reduct-query-id": "x" } }),
      status: 422,
      message: () => "Invalid query id",
    },
    {
      name: "query on a missing entry",
      request: (b) => api("POST", `/b/${b}/nothing/q`, { body: JSON.stringify({ query_type: "QUERY" }) }),
      status: 404,
      message: (b) => `Entry 'nothing' not found in bucket '${b}'`,
    },
    {
      name: "start after stop",
      request: (b) => api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "QUERY", start: 10, stop: 5 }) }),
      status: 422,
      message: () => "Start time must be before stop time",
    },
    {
      name: "remove with nothing but the type",
      request: (b) => api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "REMOVE" }) }),
      status: 422,
      message: () => "Define at least one query parameter to delete records",
    },
    {
      name: "legacy remove without parameters",
      request: (b) => api("DELETE", `/b/${b}/e/q`),
      status: 422,
      message: () => "Define at least one query parameter to delete records",
    },
    {
      name: "unknown operator",
      request: (b) => api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "QUERY", when: { "&x": { $foo: 1 } } }) }),
      status: 422,
      message: () => "Operator '$foo' not supported",
    },
    {
      name: "extension requested",
      request: (b) => api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "QUERY", ext: { test: {} } }) }),
      status: 422,
      message: () => "Unknown extension 'test': no extensions are installed",
    },
    {
      name: "legacy ttl not a number",
      request: (b) => api("GET", `/b/${b}/e/q?ttl=a`),
      status: 422,
      message: () => "'ttl' must be in seconds as an unsigned integer",
    },
    {
      name: "legacy continuous not a bool",
      request: (b) => api("GET", `/b/${b}/e/q?continuous=maybe`),
      status: 422,
      message: () => "'continue' must be a bool value",
    },
  ];
  for (const testCase of cases) {
    it(`${testCase.name} → ${testCase.status}`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      await putRecord(bucket, "e", 1, bytes("x"));
      await expectError(await testCase.request(bucket), testCase.status, testCase.message(bucket));
    });
  }
});

describe("context directives", () => {
  it("#ctx_before and #ctx_after add neighbours of each match, each record once", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (let ts = 1; ts <= 10; ts++)
      await putRecord(bucket, "e", ts, bytes(String(ts)), { labels: { hit: String(ts === 5 || ts === 6) } });
    const read = async (when: Record<string, unknown>) =>
      (await readAllV1(bucket, "e", await createQuery(bucket, "e", { when }))).map(([ts]) => ts);
    expect(await read({ "&hit": { $eq: true } })).toEqual([5, 6]);
    expect(await read({ "&hit": { $eq: true }, "#ctx_before": 2 })).toEqual([3, 4, 5, 6]);
    expect(await read({ "&hit": { $eq: true }, "#ctx_after": 2 })).toEqual([5, 6, 7, 8]);
    expect(await read({ "&hit": { $eq: true }, "#ctx_before": "2us", "#ctx_after": "1us" })).toEqual([3, 4, 5, 6, 7]);
  });
});

describe("context bursts and single-record reads", () => {
  it("a single-record read of a #ctx_before query loses no record (the burst is carried over)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (let ts = 1; ts <= 4; ts++) await putRecord(bucket, "e", ts, bytes(String(ts)), { labels: { hit: String(ts === 3) } });
    const id = await createQuery(bucket, "e", { when: { "&hit": { $eq: true }, "#ctx_before": 2 } });
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) {
      const response = await api("GET", `/b/${bucket}/e?q=${id}`);
      if (response.status === 204) break;
      seen.push(response.headers.get("x-reduct-time") ?? "?");
      await response.arrayBuffer();
    }
    expect(seen).toEqual(["1", "2", "3"]);
  });

  it("a batch never exceeds the record limit with context bursts", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (let ts = 1; ts <= 6; ts++) await putRecord(bucket, "e", ts, bytes(String(ts)), { labels: { hit: String(ts === 6) } });
    const id = await createQuery(bucket, "e", { when: { "&hit": { $eq: true }, "#ctx_before": 5, "#batch_records": 2 } });
    const batches: number[][] = [];
    for (let i = 0; i < 10; i++) {
      const response = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
      if (response.status === 204) break;
      await response.arrayBuffer();
      batches.push(
        [...response.headers.keys()]
          .filter((name) => name.startsWith("x-reduct-time-"))
          .map((name) => Number(name.slice(14)))
          .sort((a, b) => a - b),
      );
    }
    expect(batches).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
  });
});
