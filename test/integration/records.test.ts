import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

describe("single-record API: write and read", () => {
  it("round-trips bytes, content type and labels; HEAD has the size and no body", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry", 1_000_000, "somedata1", {
      contentType: "text/plain",
      labels: { label1: "label1", label2: "100", label3: "true" },
    });

    const get = await api("GET", `/b/${bucket}/entry?ts=1000000`);
    expect(get.status).toBe(200);
    expect(await get.text()).toBe("somedata1");
    expect(get.headers.get("x-reduct-time")).toBe("1000000");
    expect(get.headers.get("content-type")).toBe("text/plain");
    expect(get.headers.get("content-length")).toBe("9");
    expect(get.headers.get("x-reduct-label-label2")).toBe("100");
    expect(get.headers.get("x-reduct-label-label3")).toBe("true");

    const head = await api("HEAD", `/b/${bucket}/entry?ts=1000000`);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe("9");
    expect(await head.text()).toBe("");
  });

  it("defaults the content type and reads the latest record without ts", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const text = (value: string) => new TextEncoder().encode(value); // no content type: fetch sets none for bytes
    await putRecord(bucket, "e", 1000, text("first"));
    await putRecord(bucket, "e", 1010, text("second"));
    await putRecord(bucket, "e", 5, text("belated"));
    const latest = await api("GET", `/b/${bucket}/e`);
    expect(await latest.text()).toBe("second");
    expect(latest.headers.get("x-reduct-time")).toBe("1010");
    expect(latest.headers.get("content-type")).toBe("application/octet-stream");
  });

  it("stores empty records", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 7, "");
    const get = await api("GET", `/b/${bucket}/e?ts=7`);
    expect(get.status).toBe(200);
    expect(get.headers.get("content-length")).toBe("0");
    expect(await get.text()).toBe("");
  });

  it("streams large records through R2 byte for byte", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const payload = bytesOf(3 * 1024 * 1024, 7);
    await putRecord(bucket, "blob", 100, payload);
    await putRecord(bucket, "blob", 200, payload.subarray(0, 200_000));
    const get = await api("GET", `/b/${bucket}/blob?ts=100`);
    expect(get.headers.get("content-length")).toBe(String(payload.byteLength));
    expect(await sha256(await get.arrayBuffer())).toBe(await sha256(payload));
    const second = await api("GET", `/b/${bucket}/blob?ts=200`);
    expect(await sha256(await second.arrayBuffer())).toBe(await sha256(payload.subarray(0, 200_000)));
    const head = await api("HEAD", `/b/${bucket}/blob?ts=100`);
    expect(head.headers.get("content-length")).toBe(String(payload.byteLength));
    await head.text();
  });

  it("accepts a streamed body announced by x-reduct-content-length", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (const size of [10, 300_000]) {
      const payload = bytesOf(size, size);
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(payload);
          controller.close();
        },
      });
      const response = await api("POST", `/b/${bucket}/s?ts=${size}`, {
        headers: { "x-reduct-content-length": String(size) },
        body: stream,
      });
      expect(response.status).toBe(200);
      await response.text();
      const get = await api("GET", `/b/${bucket}/s?ts=${size}`);
      expect(await sha256(await get.arrayBuffer())).toBe(await sha256(payload));
    }
  });

  it("creates parent entries of a path and lists them", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "a/b/c", 1, "x");
    const { entries } = await bucketInfo(bucket);
    expect(entries.map((entry) => entry.name)).toEqual(["a", "a/b", "a/b/c"]);
    const read = await api("GET", `/b/${bucket}/a/b/c?ts=1`);
    expect(await read.text()).toBe("x");
  });
});

describe("size accounting", () => {
  it("matches the reference server's exact entry and bucket sizes", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry_1", 1_000_000, "12345678");
    await putRecord(bucket, "entry_2", 2_000_000, "12345678901");
    const { info, entries } = await bucketInfo(bucket);
    expect(entries).toEqual([
      {
        name: "entry_1",
        size: 40,
        record_count: 1,
        block_count: 1,
        oldest_record: 1_000_000,
        latest_record: 1_000_000,
        status: "READY",
      },
      {
        name: "entry_2",
        size: 43,
        record_count: 1,
        block_count: 1,
        oldest_record: 2_000_000,
        latest_record: 2_000_000,
        status: "READY",
      },
    ]);
    expect(info).toEqual({
      name: bucket,
      entry_count: 2,
      size: 83,
      oldest_record: 1_000_000,
      latest_record: 2_000_000,
      is_provisioned: false,
      status: "READY",
    });
  });

  it("matches the reduct-js fixture: 90 + 127 = 217", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { max_block_records: 256 });
    await putRecord(bucket, "entry-1", 1_000_000, "somedata1", { labels: { label1: "label1", label2: "100", label3: "true" } });
    for (const ts of [2_000_000, 3_000_000, 4_000_000]) await putRecord(bucket, "entry-2", ts, "somedata2");
    const { info, entries } = await bucketInfo(bucket);
    expect(entries.map((entry) => [entry.name, entry.size, entry.record_count, entry.block_count])).toEqual([
      ["entry-1", 90, 1, 1],
      ["entry-2", 127, 3, 1],
    ]);
    expect(info.size).toBe(217);
  });

  it("keeps sizes exact through label updates and removals", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1_000_000, "12345678");
    const patch = await api("PATCH", `/b/${bucket}/e?ts=1000000`, { headers: { "x-reduct-label-x": "y" } });
    expect(patch.status).toBe(200);
    // 8 bytes + descriptor 32 + label x=y (1 tag + 1 length + 2×3) + finished state (2)
    expect((await bucketInfo(bucket)).entries[0]?.size).toBe(50);
    const removed = await api("DELETE", `/b/${bucket}/e?ts=1000000`);
    expect(removed.status).toBe(200);
    const after = await bucketInfo(bucket);
    expect(after.entries[0]).toMatchObject({ size: 0, record_count: 0, block_count: 0, oldest_record: 0, latest_record: 0 });
    expect(after.info.size).toBe(0);
  });
});

describe("labels, removal, entries", () => {
  it("updates labels: sets, overwrites and deletes with empty values", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "x", { labels: { a: "1", b: "2" } });
    const patch = await api("PATCH", `/b/${bucket}/e?ts=1`, {
      headers: { "x-reduct-label-x": "z", "x-reduct-label-a": "", "x-reduct-label-1": "2" },
    });
    expect(patch.status).toBe(200);
    const get = await api("HEAD", `/b/${bucket}/e?ts=1`);
    expect(get.headers.get("x-reduct-label-x")).toBe("z");
    expect(get.headers.get("x-reduct-label-a")).toBeNull();
    expect(get.headers.get("x-reduct-label-b")).toBe("2");
    expect(get.headers.get("x-reduct-label-1")).toBe("2");
  });

  it("removes an entry with its descendants and renames a subtree", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "a/b/c", 1, "c");
    await putRecord(bucket, "a/b/d", 1, "d");
    await putRecord(bucket, "keep", 1, "k");
    expect((await api("PUT", `/b/${bucket}/a/rename`, { body: JSON.stringify({ new_name: "renamed" }) })).status).toBe(200);
    const names = (await bucketInfo(bucket)).entries.map((entry) => entry.name);
    expect(names).toEqual(["keep", "renamed", "renamed/b", "renamed/b/c", "renamed/b/d"]);
    expect(await (await api("GET", `/b/${bucket}/renamed/b/c?ts=1`)).text()).toBe("c");

    expect((await api("DELETE", `/b/${bucket}/renamed`)).status).toBe(200);
    expect((await bucketInfo(bucket)).entries.map((entry) => entry.name)).toEqual(["keep"]);
    await expectError(
      await api("GET", `/b/${bucket}/renamed/b/c?ts=1`),
      404,
      `Entry 'renamed/b/c' not found in bucket '${bucket}'`,
    );
  });

  it("frees a removed record's timestamp for a new write", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 5, "old");
    expect((await api("DELETE", `/b/${bucket}/e?ts=5`)).status).toBe(200);
    await putRecord(bucket, "e", 5, "new");
    expect(await (await api("GET", `/b/${bucket}/e?ts=5`)).text()).toBe("new");
  });
});

describe("attachments ($meta)", () => {
  it("upserts by key and hides $meta from the entry list while counting its bytes", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "a/$meta", 1, "{}", { labels: { key: "k1" } });
    await putRecord(bucket, "a/$meta", 2, "{1}", { labels: { key: "k1" } });
    await expectError(await api("GET", `/b/${bucket}/a/$meta?ts=1`), 404, `Record 1 not found in entry ${bucket}/a/$meta`);
    expect(await (await api("GET", `/b/${bucket}/a/$meta?ts=2`)).text()).toBe("{1}");
    const { info, entries } = await bucketInfo(bucket);
    expect(entries.map((entry) => entry.name)).toEqual(["a"]);
    expect(info.entry_count).toBe(1);
    expect(info.size).toBeGreaterThan(0);
  });
});

describe("record API errors (table)", () => {
  const cases: {
    name: string;
    request: (bucket: string) => Promise<Response>;
    status: number;
    message: (bucket: string) => string;
  }[] = [
    {
      name: "write without ts",
      request: (b) => api("POST", `/b/${b}/e`, { body: "x" }),
      status: 422,
      message: () => "'ts' parameter is required",
    },
    ...["-1", "1.5", "1e3", "abc", "", " 1", "18446744073709551616", "9007199254740992"].map((ts) => ({
      name: `write with ts=${JSON.stringify(ts)}`,
      request: (b: string) => api("POST", `/b/${b}/e?ts=${encodeURIComponent(ts)}`, { body: "x" }),
      status: 422,
      message: () => "'ts' must be an unix timestamp in microseconds",
    })),
    {
      name: "write to a missing bucket",
      request: () => api("POST", "/b/no-such-bucket-xyz/e?ts=1", { body: "x" }),
      status: 404,
      message: () => "Bucket 'no-such-bucket-xyz' is not found",
    },
    {
      name: "duplicate timestamp",
      request: async (b) => {
        await putRecord(b, "e", 1_000_000, "x");
        return api("POST", `/b/${b}/e?ts=1000000`, { body: "y" });
      },
      status: 409,
      message: () => "A record with timestamp 1000000 already exists",
    },
    {
      name: "duplicate timestamp of a large record",
      request: async (b) => {
        await putRecord(b, "e", 2, bytesOf(200_000));
        return api("POST", `/b/${b}/e?ts=2`, { body: bytesOf(200_000) });
      },
      status: 409,
      message: () => "A record with timestamp 2 already exists",
    },
    ...["e.1", "a b", "ü"].map((entry) => ({
      name: `write to entry ${entry}`,
      request: (b: string) => api("POST", `/b/${b}/${encodeURIComponent(entry)}?ts=1`, { body: "x" }),
      status: 422,
      message: () => "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'",
    })),
    {
      name: "write to entry with an empty segment",
      request: (b) => api("POST", `/b/${b}/a//b?ts=1`, { body: "x" }),
      status: 422,
      message: () => "Entry name must be non-empty and must not contain empty path segments",
    },
    {
      name: "non-numeric x-reduct-content-length",
      request: (b) =>
        api("POST", `/b/${b}/e?ts=1`, {
          headers: { "x-reduct-content-length": "abc" },
          body: new ReadableStream({ start: (c) => c.close() }),
        }),
      status: 422,
      message: () => "x-reduct-content-length header must be a number",
    },
    {
      name: "chunked body without any length",
      request: (b) =>
        api("POST", `/b/${b}/e?ts=1`, {
          body: new ReadableStream({
            start: (c) => {
              c.enqueue(new Uint8Array([1]));
              c.close();
            },
          }),
        }),
      status: 422,
      message: () => "content-length header is required",
    },
    {
      name: "body shorter than x-reduct-content-length (small)",
      request: (b) => streamed(b, 10, 5),
      status: 400,
      message: () => "Content is shorter than expected: no more data to read",
    },
    {
      name: "body shorter than x-reduct-content-length (large)",
      request: (b) => streamed(b, 500_000, 400_000),
      status: 400,
      message: () => "Content is shorter than expected: no more data to read",
    },
    {
      name: "body longer than x-reduct-content-length (large)",
      request: (b) => streamed(b, 500_000, 600_000),
      status: 400,
      message: () => "Content is bigger than expected in content-length header",
    },
    {
      name: "record larger than RS_MAX_RECORD_SIZE (100 MiB by default)",
      request: (b) =>
        api("POST", `/b/${b}/e?ts=1`, {
          headers: { "x-reduct-content-length": String(100 * 1024 * 1024 + 1) },
          body: new ReadableStream({ start: (c) => c.close() }),
        }),
      status: 413,
      message: () => `Record of ${100 * 1024 * 1024 + 1} bytes is larger than the limit of ${100 * 1024 * 1024} bytes`,
    },
    {
      name: "read from a missing entry",
      request: (b) => api("GET", `/b/${b}/nothing?ts=1`),
      status: 404,
      message: (b) => `Entry 'nothing' not found in bucket '${b}'`,
    },
    {
      name: "read a missing record",
      request: async (b) => {
        await putRecord(b, "e", 1, "x");
        return api("GET", `/b/${b}/e?ts=2`);
      },
      status: 404,
      message: (b) => `Record 2 not found in entry ${b}/e`,
    },
    {
      name: "read with a bad ts",
      request: (b) => api("GET", `/b/${b}/e?ts=x`),
      status: 422,
      message: () => "'ts' must be an unix timestamp in microseconds",
    },
    {
      name: "update labels of a missing record",
      request: async (b) => {
        await putRecord(b, "e", 1, "x");
        return api("PATCH", `/b/${b}/e?ts=3`, { headers: { "x-reduct-label-a": "b" } });
      },
      status: 404,
      message: (b) => `Record 3 not found in entry ${b}/e`,
    },
    {
      name: "update labels without ts",
      request: (b) => api("PATCH", `/b/${b}/e`, { headers: { "x-reduct-label-a": "b" } }),
      status: 422,
      message: () => "'ts' parameter is required",
    },
    {
      name: "remove a missing record",
      request: async (b) => {
        await putRecord(b, "e", 1, "x");
        return api("DELETE", `/b/${b}/e?ts=9`);
      },
      status: 404,
      message: (b) => `Record 9 not found in entry ${b}/e`,
    },
    {
      name: "remove a missing entry",
      request: (b) => api("DELETE", `/b/${b}/ghost`),
      status: 404,
      message: (b) => `Entry 'ghost' not found in bucket '${b}'`,
    },
    {
      name: "remove a record of a $meta entry",
      request: async (b) => {
        await putRecord(b, "a/$meta", 1, "{}", { labels: { key: "k" } });
        return api("DELETE", `/b/${b}/a/$meta?ts=1`);
      },
      status: 422,
      message: () => "Can't delete records from system entry 'a/$meta'; use label update with remove=true",
    },
    {
      name: "$meta record without key",
      request: (b) => api("POST", `/b/${b}/a/$meta?ts=1`, { body: "{}" }),
      status: 422,
      message: () => "System entry 'a/$meta' records must contain label 'key'",
    },
    {
      name: "rename an entry onto an existing one",
      request: async (b) => {
        await putRecord(b, "x", 1, "x");
        await putRecord(b, "y", 1, "y");
        return api("PUT", `/b/${b}/x/rename`, { body: JSON.stringify({ new_name: "y" }) });
      },
      status: 409,
      message: (b) => `Entry 'y' already exists in bucket '${b}'`,
    },
    {
      name: "rename a missing entry",
      request: (b) => api("PUT", `/b/${b}/nope/rename`, { body: JSON.stringify({ new_name: "y" }) }),
      status: 404,
      message: (b) => `Entry 'nope' not found in bucket '${b}'`,
    },
    {
      name: "rename to an invalid name",
      request: async (b) => {
        await putRecord(b, "x", 1, "x");
        return api("PUT", `/b/${b}/x/rename`, { body: JSON.stringify({ new_name: "a.b" }) });
      },
      status: 422,
      message: () => "Entry name can contain only letters, digits and [-,_,/] symbols or end with '/$meta'",
    },
  ];

  for (const testCase of cases) {
    it(`${testCase.name} → ${testCase.status}`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      await expectError(await testCase.request(bucket), testCase.status, testCase.message(bucket));
    });
  }
});

/** A streamed upload announcing `declared` bytes but sending `actual`. */
function streamed(bucket: string, declared: number, actual: number): Promise<Response> {
  return api("POST", `/b/${bucket}/e?ts=1`, {
    headers: { "x-reduct-content-length": String(declared) },
    body: new ReadableStream({
      start(controller) {
        controller.enqueue(bytesOf(actual));
        controller.close();
      },
    }),
  });
}

describe("rejected writes leave no trace", () => {
  it("a short large upload is absent afterwards and its timestamp writable again", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await expectError(await streamed(bucket, 500_000, 10), 400, "Content is shorter than expected: no more data to read");
    await expectError(await api("GET", `/b/${bucket}/e?ts=1`), 404, `Record 1 not found in entry ${bucket}/e`);
    const { info } = await bucketInfo(bucket);
    expect(info.size).toBe(0);
    await putRecord(bucket, "e", 1, bytesOf(500_000));
  });
});
