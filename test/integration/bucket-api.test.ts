/**
 * Bucket API through the Worker's fetch: create, get, head, update, delete, rename.
 * Table-driven over the exact statuses and x-reduct-error strings of the contract.
 */
import { describe, expect, it } from "vitest";
import { API_VERSION } from "../../src/version";
import { api, expectError, uniqueName } from "../helpers/http";

const JSON_HEADERS = { "content-type": "application/json" };
const DEFAULT_SETTINGS = { max_block_size: 64000000, max_block_records: 1024, quota_type: "NONE", quota_size: 0 };
const NAME_ERROR = "Bucket or entry name can contain only letters, digests and [-,_] symbols";

interface BucketSettings {
  max_block_size: number;
  max_block_records: number;
  quota_type: string;
  quota_size: number;
}

async function send(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<Response> {
  return api(method, path, { body: body ?? null, headers });
}

async function expectOkEmpty(response: Response): Promise<void> {
  const text = await response.text();
  expect({ status: response.status, error: response.headers.get("x-reduct-error"), text }).toEqual({
    status: 200,
    error: null,
    text: "",
  });
  expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
}

async function createBucket(name: string, body?: unknown): Promise<void> {
  await expectOkEmpty(await send("POST", `/b/${name}`, body === undefined ? undefined : JSON.stringify(body)));
}

async function getBucket(name: string): Promise<{ info: Record<string, unknown>; settings: BucketSettings; entries: unknown[] }> {
  const response = await api("GET", `/b/${name}`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe("application/json");
  return (await response.json()) as { info: Record<string, unknown>; settings: BucketSettings; entries: unknown[] };
}

async function settingsOf(name: string): Promise<BucketSettings> {
  return (await getBucket(name)).settings;
}

/** Asserts a 422 whose message starts with `Invalid JSON: ` and is carried in header and body alike. */
async function expectInvalidJson(response: Response): Promise<void> {
  const text = await response.text();
  expect(response.status).toBe(422);
  expect(response.headers.get("content-type")).toBe("application/json");
  expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
  const message = response.headers.get("x-reduct-error") ?? "";
  expect(message).toMatch(/^Invalid JSON: .+/);
  expect(JSON.parse(text)).toEqual({ detail: message });
}

async function rename(oldName: string, newName: unknown, headers: Record<string, string> = JSON_HEADERS): Promise<Response> {
  return send("PUT", `/b/${oldName}/rename`, JSON.stringify({ new_name: newName }), headers);
}

async function listedNames(): Promise<string[]> {
  const response = await api("GET", "/list");
  expect(response.status).toBe(200);
  return ((await response.json()) as { buckets: { name: string }[] }).buckets.map((bucket) => bucket.name);
}

describe("POST /b/:bucket: create", () => {
  it("without a body creates a bucket with the default settings and an exact GET answer", async () => {
    const name = uniqueName();
    await createBucket(name);
    const body = await getBucket(name);
    expect(body).toStrictEqual({
      info: {
        name,
        entry_count: 0,
        size: 0,
        oldest_record: 0,
        latest_record: 0,
        is_provisioned: false,
        status: "READY",
      },
      settings: DEFAULT_SETTINGS,
      entries: [],
    });
  });

  const settingsCases: [string, string | undefined, Record<string, string> | undefined, BucketSettings][] = [
    ["an empty body", "", undefined, DEFAULT_SETTINGS],
    ["whitespace only", "  \n ", undefined, DEFAULT_SETTINGS],
    ["{}", "{}", undefined, DEFAULT_SETTINGS],
    ['{"quota_type": null}', '{"quota_type": null}', undefined, DEFAULT_SETTINGS],
    [
      "all fields null",
      '{"max_block_size":null,"max_block_records":null,"quota_type":null,"quota_size":null}',
      undefined,
      DEFAULT_SETTINGS,
    ],
    ['{"max_block_size":500}', '{"max_block_size":500}', undefined, { ...DEFAULT_SETTINGS, max_block_size: 500 }],
    [
      "FIFO with size and records",
      '{"quota_type":"FIFO","quota_size":1024,"max_block_records":1029}',
      undefined,
      { max_block_size: 64000000, max_block_records: 1029, quota_type: "FIFO", quota_size: 1024 },
    ],
    ["HARD", '{"quota_type":"HARD","quota_size":10}', undefined, { ...DEFAULT_SETTINGS, quota_type: "HARD", quota_size: 10 }],
    ["NONE", '{"quota_type":"NONE"}', undefined, DEFAULT_SETTINGS],
    [
      "zero values (no range checks)",
      '{"max_block_size":0,"max_block_records":0}',
      undefined,
      {
        ...DEFAULT_SETTINGS,
        max_block_size: 0,
        max_block_records: 0,
      },
    ],
    [
      "unknown keys ignored",
      '{"foo":1,"max_block_records":7,"bar":{"x":[]}}',
      undefined,
      {
        ...DEFAULT_SETTINGS,
        max_block_records: 7,
      },
    ],
    [
      "a text/plain body (reduct-js sends no JSON content type)",
      '{"quota_size":5}',
      { "content-type": "text/plain;charset=UTF-8" },
      { ...DEFAULT_SETTINGS, quota_size: 5 },
    ],
    [
      "the largest safe integer",
      `{"quota_size":${Number.MAX_SAFE_INTEGER}}`,
      undefined,
      { ...DEFAULT_SETTINGS, quota_size: Number.MAX_SAFE_INTEGER },
    ],
  ];
  it.each(settingsCases)("with %s → 200 and the right settings", async (_label, body, headers, expected) => {
    const name = uniqueName("create");
    await expectOkEmpty(await send("POST", `/b/${name}`, body, headers));
    expect(await settingsOf(name)).toStrictEqual(expected);
  });

  it.each([["FIFO"], ["HARD"], ["NONE"]])("quota type %s round-trips", async (quotaType) => {
    const name = uniqueName("quota");
    await createBucket(name, { quota_type: quotaType, quota_size: 2048 });
    expect(await settingsOf(name)).toStrictEqual({ ...DEFAULT_SETTINGS, quota_type: quotaType, quota_size: 2048 });
  });

  const invalidBodies: [string][] = [
    ["xxx"],
    ['{"quota_type":"UNKNOWN"}'],
    ['{"quota_type":"fifo"}'],
    ['{"quota_type":1}'],
    ['{"max_block_size":"500"}'],
    ['{"max_block_size":-1}'],
    ['{"max_block_records":1.5}'],
    ['{"quota_size":true}'],
    ['{"quota_size":[]}'],
    ["[]"],
    ["null"],
    ['"settings"'],
    ["123"],
    ['{"max_block_size":500'],
    ['{"max_block_size":500}}'],
  ];
  it.each(invalidBodies)("with body %s → 422 `Invalid JSON: …` and nothing is created", async (body) => {
    const name = uniqueName("badjson");
    await expectInvalidJson(await send("POST", `/b/${name}`, body));
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
  });

  const invalidNames: [string, string, string][] = [
    ["a dot", "my.bucket", NAME_ERROR],
    ["a non-ASCII letter", encodeURIComponent("bü"), NAME_ERROR],
    ["a space", encodeURIComponent("my bucket"), NAME_ERROR],
    ["a dollar (system names)", encodeURIComponent("$sys"), NAME_ERROR],
    ["an encoded slash", encodeURIComponent("a/b"), NAME_ERROR],
    ["a star", encodeURIComponent("bucket*"), NAME_ERROR],
    ["257 characters", "a".repeat(257), "Bucket name must be at most 256 characters"],
  ];
  it.each(invalidNames)("with a name containing %s → 422", async (_label, pathName, message) => {
    await expectError(await send("POST", `/b/${pathName}`), 422, message);
    expect(await listedNames()).not.toContain(decodeURIComponent(pathName));
  });

  it.each([["a"], ["A-b_9"], ["_"], ["-"], ["x".repeat(256)]])("accepts the valid name %s", async (stem) => {
    // Valid names may collide between runs of this suite: make them unique but keep their shape.
    const name =
      stem.length >= 256 ? `${uniqueName("n").replace(/-/g, "_")}${"x".repeat(256)}`.slice(0, 256) : `${stem}${uniqueName("")}`;
    expect(name.length).toBeLessThanOrEqual(256);
    await createBucket(name);
    expect((await getBucket(name)).info.name).toBe(name);
  });

  it("a settings body over 1 MiB is refused with 413 before it is buffered, declared or streamed", async () => {
    const huge = JSON.stringify({ quota_size: 1, padding: "x".repeat(1024 * 1024) });
    const message = `Request body is larger than ${1024 * 1024} bytes`;
    const declared = uniqueName("huge");
    await expectError(await send("POST", `/b/${declared}`, huge, { "content-length": String(huge.length) }), 413, message);
    const streamed = uniqueName("huge-stream");
    const bytes = new TextEncoder().encode(huge);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += 64 * 1024)
          controller.enqueue(bytes.slice(offset, offset + 64 * 1024));
        controller.close();
      },
    });
    await expectError(await api("POST", `/b/${streamed}`, { body }), 413, message);
    for (const name of [declared, streamed]) {
      await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
    }
  });

  it("refuses an existing name with 409 and keeps the first settings", async () => {
    const name = uniqueName("dup");
    await createBucket(name, { max_block_records: 11 });
    await expectError(await send("POST", `/b/${name}`), 409, `Bucket '${name}' already exists`);
    await expectError(await send("POST", `/b/${name}`, '{"max_block_records": 12}'), 409, `Bucket '${name}' already exists`);
    expect((await settingsOf(name)).max_block_records).toBe(11);
  });

  it("a 422 for bad JSON wins over a 409 for an existing name (body is parsed first)", async () => {
    const name = uniqueName("dup-json");
    await createBucket(name);
    await expectInvalidJson(await send("POST", `/b/${name}`, "xxx"));
  });
});

describe("GET and HEAD /b/:bucket", () => {
  it("GET of a missing bucket → 404 `Bucket 'x' is not found`", async () => {
    const name = uniqueName("missing");
    const response = await api("GET", `/b/${name}`);
    expect(response.headers.get("content-type")).toBe("application/json");
    await expectError(response, 404, `Bucket '${name}' is not found`);
  });

  it("GET of a name that could never be created is a plain 404", async () => {
    await expectError(await api("GET", "/b/my.bucket"), 404, "Bucket 'my.bucket' is not found");
  });

  // The runtime gives an object no name over 1,024 characters: these were 500 before.
  it.each([
    ["GET", "/b/{n}", undefined],
    ["HEAD", "/b/{n}", undefined],
    ["PUT", "/b/{n}", "{}"],
    ["DELETE", "/b/{n}", undefined],
    ["PUT", "/b/{n}/rename", '{"new_name": "b"}'],
    ["POST", "/b/{n}/e?ts=1", "x"],
    ["GET", "/b/{n}/e", undefined],
    ["POST", "/b/{n}/e/q", '{"query_type": "QUERY"}'],
    ["POST", "/io/{n}/q", '{"query_type": "QUERY"}'],
    ["GET", "/io/{n}/read", undefined],
  ] as const)("%s %s with a 1,025-character name (longer than any bucket) → 404", async (method, template, body) => {
    const name = "a".repeat(1025);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (template.startsWith("/io/") && method === "GET") headers["x-reduct-query-id"] = "1";
    const response = await api(method, template.replace("{n}", name), { body, headers });
    const text = await response.text();
    expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({
      status: 404,
      error: `Bucket '${name}' is not found`,
    });
    if (method !== "HEAD" && text !== "") expect(JSON.parse(text)).toEqual({ detail: `Bucket '${name}' is not found` });
  });

  it("HEAD of an existing bucket → 200 with an empty body", async () => {
    const name = uniqueName("head");
    await createBucket(name);
    const response = await api("HEAD", `/b/${name}`);
    await expectOkEmpty(response);
  });

  it("HEAD of a missing bucket → 404 with x-reduct-error and an empty body", async () => {
    const name = uniqueName("head-missing");
    const response = await api("HEAD", `/b/${name}`);
    expect(response.status).toBe(404);
    expect(response.headers.get("x-reduct-error")).toBe(`Bucket '${name}' is not found`);
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
    expect(await response.text()).toBe("");
  });
});

describe("PUT /b/:bucket: update settings", () => {
  const updates: [string, BucketSettings, string | undefined, BucketSettings][] = [
    [
      "a partial update keeps the other fields",
      DEFAULT_SETTINGS,
      '{"max_block_size":1000,"quota_type":"FIFO"}',
      { max_block_size: 1000, max_block_records: 1024, quota_type: "FIFO", quota_size: 0 },
    ],
    [
      "records and quota type keep size and quota size",
      { max_block_size: 5000, max_block_records: 10, quota_type: "HARD", quota_size: 777 },
      '{"max_block_records":1024,"quota_type":"FIFO"}',
      { max_block_size: 5000, max_block_records: 1024, quota_type: "FIFO", quota_size: 777 },
    ],
    [
      "null fields keep the current value (not the defaults)",
      { max_block_size: 5000, max_block_records: 10, quota_type: "HARD", quota_size: 777 },
      '{"quota_type":null,"max_block_size":null,"quota_size":1}',
      { max_block_size: 5000, max_block_records: 10, quota_type: "HARD", quota_size: 1 },
    ],
    [
      "an empty body changes nothing",
      { max_block_size: 5000, max_block_records: 10, quota_type: "FIFO", quota_size: 777 },
      undefined,
      { max_block_size: 5000, max_block_records: 10, quota_type: "FIFO", quota_size: 777 },
    ],
    [
      "{} changes nothing",
      { max_block_size: 5000, max_block_records: 10, quota_type: "FIFO", quota_size: 777 },
      "{}",
      { max_block_size: 5000, max_block_records: 10, quota_type: "FIFO", quota_size: 777 },
    ],
    [
      "every field at once",
      DEFAULT_SETTINGS,
      '{"max_block_size":1,"max_block_records":2,"quota_type":"HARD","quota_size":3,"unknown":4}',
      { max_block_size: 1, max_block_records: 2, quota_type: "HARD", quota_size: 3 },
    ],
    [
      "back to NONE",
      { ...DEFAULT_SETTINGS, quota_type: "FIFO", quota_size: 10 },
      '{"quota_type":"NONE"}',
      { ...DEFAULT_SETTINGS, quota_type: "NONE", quota_size: 10 },
    ],
  ];
  it.each(updates)("%s", async (_label, initial, body, expected) => {
    const name = uniqueName("update");
    await createBucket(name, initial);
    expect(await settingsOf(name)).toStrictEqual(initial);
    await expectOkEmpty(await send("PUT", `/b/${name}`, body));
    expect(await settingsOf(name)).toStrictEqual(expected);
  });

  it.each([['{"quota_type":"UNKNOWN"}'], ["xxx"], ['{"max_block_size":"1"}'], ['{"quota_size":-5}'], ["[1]"]])(
    "body %s → 422 `Invalid JSON: …` and the settings stay",
    async (body) => {
      const name = uniqueName("update-bad");
      await createBucket(name, { quota_type: "FIFO", quota_size: 9 });
      await expectInvalidJson(await send("PUT", `/b/${name}`, body));
      expect(await settingsOf(name)).toStrictEqual({ ...DEFAULT_SETTINGS, quota_type: "FIFO", quota_size: 9 });
    },
  );

  it("a missing bucket → 404", async () => {
    const name = uniqueName("update-missing");
    await expectError(await send("PUT", `/b/${name}`, '{"quota_size":1}'), 404, `Bucket '${name}' is not found`);
    // ... and the update did not create it.
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
  });
});

describe("DELETE /b/:bucket", () => {
  it("answers 200 empty, then the bucket is 404 at once for GET, HEAD, PUT, DELETE and rename", async () => {
    const name = uniqueName("delete");
    await createBucket(name);
    await expectOkEmpty(await api("DELETE", `/b/${name}`));
    const message = `Bucket '${name}' is not found`;
    await expectError(await api("GET", `/b/${name}`), 404, message);
    const head = await api("HEAD", `/b/${name}`);
    expect({ status: head.status, error: head.headers.get("x-reduct-error"), body: await head.text() }).toEqual({
      status: 404,
      error: message,
      body: "",
    });
    await expectError(await send("PUT", `/b/${name}`, "{}"), 404, message);
    await expectError(await api("DELETE", `/b/${name}`), 404, message);
    await expectError(await rename(name, uniqueName("delete-target")), 404, message);
    expect(await listedNames()).not.toContain(name);
  });

  it("a missing bucket → 404", async () => {
    const name = uniqueName("delete-missing");
    await expectError(await api("DELETE", `/b/${name}`), 404, `Bucket '${name}' is not found`);
  });

  it("frees the name: it can be created again, with fresh settings and no entries", async () => {
    const name = uniqueName("recreate");
    await createBucket(name, { quota_type: "HARD", quota_size: 1000, max_block_records: 3 });
    await expectOkEmpty(await api("POST", `/b/${name}/entry-1?ts=1000000`, { body: "somedata" }));
    expect((await getBucket(name)).entries.map((entry) => (entry as { name: string }).name)).toEqual(["entry-1"]);
    await expectOkEmpty(await api("DELETE", `/b/${name}`));
    await createBucket(name);
    const body = await getBucket(name);
    expect(body.settings).toStrictEqual(DEFAULT_SETTINGS);
    expect(body.entries).toEqual([]);
    expect(body.info).toMatchObject({ name, entry_count: 0, size: 0, status: "READY" });
    const record = await api("GET", `/b/${name}/entry-1?ts=1000000`);
    await record.text();
    expect(record.status).toBe(404);
    expect((await listedNames()).filter((listed) => listed === name)).toEqual([name]);
  });
});

describe("PUT /b/:bucket/rename", () => {
  it("moves the bucket: old name 404, new name 200 with the same settings", async () => {
    const oldName = uniqueName("rename-old");
    const newName = uniqueName("rename-new");
    const settings = { max_block_size: 4096, max_block_records: 12, quota_type: "FIFO", quota_size: 99 };
    await createBucket(oldName, settings);
    await expectOkEmpty(await rename(oldName, newName));
    await expectError(await api("GET", `/b/${oldName}`), 404, `Bucket '${oldName}' is not found`);
    const head = await api("HEAD", `/b/${oldName}`);
    expect(head.status).toBe(404);
    await head.text();
    const body = await getBucket(newName);
    expect(body.settings).toStrictEqual(settings);
    expect(body.info.name).toBe(newName);
    const names = await listedNames();
    expect(names).toContain(newName);
    expect(names).not.toContain(oldName);
  });

  it("records written before a rename are read back under the new name", async () => {
    const oldName = uniqueName("rename-records");
    const newName = uniqueName("rename-records-new");
    await createBucket(oldName);
    await expectOkEmpty(await api("POST", `/b/${oldName}/entry-1?ts=1000000`, { body: "somedata1" }));
    await expectOkEmpty(await api("POST", `/b/${oldName}/entry-1?ts=2000000`, { body: "somedata2" }));
    const before = await getBucket(oldName);
    await expectOkEmpty(await rename(oldName, newName));
    const after = await getBucket(newName);
    expect(after.entries).toStrictEqual(before.entries);
    expect(after.info).toStrictEqual({ ...before.info, name: newName });
    for (const [ts, data] of [
      [1000000, "somedata1"],
      [2000000, "somedata2"],
    ] as const) {
      const record = await api("GET", `/b/${newName}/entry-1?ts=${ts}`);
      expect({ status: record.status, body: await record.text() }).toEqual({ status: 200, body: data });
    }
    const old = await api("GET", `/b/${oldName}/entry-1?ts=1000000`);
    await old.text();
    expect(old.status).toBe(404);
  });

  it("the old name is free afterwards and the renamed bucket can be renamed again", async () => {
    const first = uniqueName("rename-a");
    const second = uniqueName("rename-b");
    const third = uniqueName("rename-c");
    await createBucket(first, { quota_size: 1 });
    await expectOkEmpty(await rename(first, second));
    await createBucket(first, { quota_size: 2 });
    await expectOkEmpty(await rename(second, third));
    expect((await settingsOf(first)).quota_size).toBe(2);
    expect((await settingsOf(third)).quota_size).toBe(1);
    await expectError(await api("GET", `/b/${second}`), 404, `Bucket '${second}' is not found`);
  });

  it.each([["application/json"], ["application/json; charset=utf-8"], ["Application/JSON"], ["application/vnd.reduct+json"]])(
    "accepts content type %s",
    async (contentType) => {
      const oldName = uniqueName("rename-ct");
      const newName = uniqueName("rename-ct");
      await createBucket(oldName);
      await expectOkEmpty(await rename(oldName, newName, { "content-type": contentType }));
      await getBucket(newName);
    },
  );

  const errorCases: [
    string,
    (old: string, taken: string) => [string, Record<string, string>],
    number,
    (old: string, taken: string) => string,
  ][] = [
    [
      "without a content type",
      () => ['{"new_name":"x-new"}', {}],
      415,
      () => "Expected request with `Content-Type: application/json`",
    ],
    [
      "with text/plain",
      () => ['{"new_name":"x-new"}', { "content-type": "text/plain" }],
      415,
      () => "Expected request with `Content-Type: application/json`",
    ],
    [
      "with application/jsonx",
      () => ['{"new_name":"x-new"}', { "content-type": "application/jsonx" }],
      415,
      () => "Expected request with `Content-Type: application/json`",
    ],
    [
      "to an existing name",
      (_old, taken) => [JSON.stringify({ new_name: taken }), JSON_HEADERS],
      409,
      (_old, taken) => `Bucket '${taken}' already exists`,
    ],
    [
      "to its own name",
      (old) => [JSON.stringify({ new_name: old }), JSON_HEADERS],
      409,
      (old) => `Bucket '${old}' already exists`,
    ],
    ["to a name with a dot", () => ['{"new_name":"my.bucket"}', JSON_HEADERS], 422, () => NAME_ERROR],
    ["to a non-ASCII name", () => ['{"new_name":"bü"}', JSON_HEADERS], 422, () => NAME_ERROR],
    ["to a name with a space", () => ['{"new_name":"my bucket"}', JSON_HEADERS], 422, () => NAME_ERROR],
    ["to an empty name", () => ['{"new_name":""}', JSON_HEADERS], 422, () => NAME_ERROR],
    [
      "to a name too long",
      () => [JSON.stringify({ new_name: "a".repeat(257) }), JSON_HEADERS],
      422,
      () => "Bucket name must be at most 256 characters",
    ],
  ];
  it.each(errorCases)("%s → the exact error, and nothing moves", async (_label, request, status, message) => {
    const oldName = uniqueName("rename-err");
    const taken = uniqueName("rename-taken");
    await createBucket(oldName, { quota_size: 42 });
    await createBucket(taken, { quota_size: 43 });
    const [body, headers] = request(oldName, taken);
    await expectError(await send("PUT", `/b/${oldName}/rename`, body, headers), status, message(oldName, taken));
    expect((await settingsOf(oldName)).quota_size).toBe(42);
    expect((await settingsOf(taken)).quota_size).toBe(43);
  });

  it.each([["xxx"], ["{}"], ['{"new_name":5}'], ['{"new_name":null}'], ["[]"], [""]])(
    "body %s → 422 `Invalid JSON: …`",
    async (body) => {
      const oldName = uniqueName("rename-json");
      await createBucket(oldName);
      await expectInvalidJson(await send("PUT", `/b/${oldName}/rename`, body, JSON_HEADERS));
      await getBucket(oldName);
    },
  );

  it("a missing bucket → 404 `Bucket 'old' is not found` and the new name stays free", async () => {
    const oldName = uniqueName("rename-missing");
    const newName = uniqueName("rename-missing-new");
    await expectError(await rename(oldName, newName), 404, `Bucket '${oldName}' is not found`);
    await expectError(await api("GET", `/b/${newName}`), 404, `Bucket '${newName}' is not found`);
    await createBucket(newName);
  });
});
