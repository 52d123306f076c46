/**
 * Server API through the Worker's fetch: /alive, /ready, /info, /list, /me, unknown paths, and
 * the headers every response carries. Exact statuses and x-reduct-error strings, table-driven.
 */
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import worker, { aliveFastPath } from "../../src/index";
import { API_VERSION, SERVER_VERSION } from "../../src/version";
import { api, expectError, uniqueName } from "../helpers/http";

const JSON_HEADERS = { "content-type": "application/json" };

async function createBucket(name: string, body?: unknown): Promise<void> {
  const response = await api("POST", `/b/${name}`, { body: body === undefined ? null : JSON.stringify(body) });
  expect(response.status).toBe(200);
  expect(await response.text()).toBe("");
}

async function deleteBucket(name: string): Promise<void> {
  const response = await api("DELETE", `/b/${name}`);
  expect(response.status).toBe(200);
  await response.text();
}

async function getJson(path: string): Promise<{ response: Response; body: Record<string, unknown> }> {
  const response = await api("GET", path);
  expect(response.status).toBe(200);
  return { response, body: (await response.json()) as Record<string, unknown> };
}

interface ListedBucket {
  name: string;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  is_provisioned: boolean;
  status: string;
}

async function listBuckets(): Promise<ListedBucket[]> {
  const { body } = await getJson("/list");
  expect(Object.keys(body)).toEqual(["buckets"]);
  return body.buckets as ListedBucket[];
}

describe("server API: /alive and /ready", () => {
  it.each([
    ["GET", "/alive"],
    ["HEAD", "/alive"],
    ["GET", "/ready"],
    ["HEAD", "/ready"],
  ])("%s %s answers 200 with an empty body, without a token", async (method, path) => {
    const response = await api(method, path, { token: null });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
    expect(response.headers.get("x-reduct-error")).toBeNull();
    expect(await response.text()).toBe("");
  });

  it.each([["/alive"], ["/ready"]])("%s also answers with a bad token (it never authenticates)", async (path) => {
    const response = await api("GET", path, { token: "not-a-token" });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
  });
});

describe("server API: the /alive fast path", () => {
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;
  const headersOf = (response: Response) => [...response.headers.entries()].sort();

  it.each([
    ["GET", "/api/v1/alive", {}, {}],
    ["HEAD", "/api/v1/alive", {}, {}],
    ["GET", "/api/v1/alive", { RS_CORS_ALLOW_ORIGIN: "https://a.example" }, { origin: "https://a.example" }],
    ["GET", "/api/v1/alive", { RS_CORS_ALLOW_ORIGIN: "https://a.example" }, { origin: "https://b.example" }],
    ["GET", "/api/v1/alive", { RS_CORS_ALLOW_ORIGIN: "*" }, { origin: "https://b.example" }],
    ["GET", "/base/api/v1/alive", { RS_API_BASE_PATH: "/base" }, {}],
    ["GET", "/api/v1/alive", { RS_API_BASE_PATH: "/base" }, {}],
    ["GET", "/api/v1/alive", { RS_QUOTA_TYPE: "nonsense" }, {}],
    ["GET", "/api/v1/alive/", {}, {}],
    ["POST", "/api/v1/alive", {}, {}],
  ] as const)("%s %s with %o and %o: the Worker answers exactly as the app", async (method, path, vars, headers) => {
    const testEnv = { ...env, ...vars } as typeof env;
    const request = () =>
      new Request(`http://localhost${path}`, { method, headers }) as Request<unknown, IncomingRequestCfProperties>;
    const viaWorker = await worker.fetch(request(), testEnv, ctx);
    const viaApp = await createApp().fetch(request(), testEnv, ctx);
    expect({ status: viaWorker.status, headers: headersOf(viaWorker), body: await viaWorker.text() }).toEqual({
      status: viaApp.status,
      headers: headersOf(viaApp),
      body: await viaApp.text(),
    });
    // The fast path answers only what it is for; everything else goes through the app.
    const fast = aliveFastPath(request(), testEnv);
    expect(fast !== null).toBe(viaApp.status === 200 && (method === "GET" || method === "HEAD") && path.endsWith("/alive"));
  });
});

describe("server API: /ready when D1 does not answer", () => {
  const failingDb = {
    prepare() {
      throw new Error("D1 is unavailable (injected by test)");
    },
  } as unknown as D1Database;

  async function withFailingDb(method: string, path: string): Promise<Response> {
    return createApp().fetch(new Request(`http://localhost/api/v1${path}`, { method }), { ...env, DB: failingDb }, {
      waitUntil() {},
      passThroughOnException() {},
      props: {},
    } as unknown as ExecutionContext);
  }

  it.each([["GET"], ["HEAD"]])("%s /ready → 503 `The server is starting up, please try again later`", async (method) => {
    const response = await withFailingDb(method, "/ready");
    expect(response.headers.get("content-type")).toBe("application/json");
    await expectError(response, 503, "The server is starting up, please try again later");
  });

  it("/alive stays 200: it touches no storage", async () => {
    const response = await withFailingDb("GET", "/alive");
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
  });
});

describe("server API: unknown paths", () => {
  it.each([
    ["GET", "/NOTEXIST"],
    ["GET", "/NOTEXIST/XXXX"],
    ["POST", "/NOTEXIST"],
    ["DELETE", "/info/extra"],
    ["GET", "/b"],
    ["GET", "/list/more"],
  ])("%s /api/v1%s → 404 `Not found`", async (method, path) => {
    await expectError(await api(method, path), 404, "Not found");
  });

  // GET / redirects to the web console (test/integration/console.test.ts); /uix is no console path.
  it.each([["http://localhost/uix"], ["http://localhost/NOTEXIST"], ["http://localhost/api/v2/info"], ["http://localhost/api"]])(
    "GET %s (outside /api/v1) → 404 `Not found` with the error contract",
    async (url) => {
      const response = await SELF.fetch(url);
      expect(response.headers.get("content-type")).toBe("application/json");
      await expectError(response, 404, "Not found");
    },
  );

  it.each([
    ["GET", "/NOTEXIST", null],
    ["GET", "/NOTEXIST/XXXX", ""],
    ["DELETE", "/list", "not-a-token"],
    ["PATCH", "/info", null],
  ])("%s /api/v1%s is 404 `Not found` whatever the token (%s): no route, nothing to authorise", async (method, path, token) => {
    await expectError(await api(method, path, { token }), 404, "Not found");
  });

  it.each([
    ["GET", "/info", "No bearer token in request header"],
    ["GET", "/list", "No bearer token in request header"],
    ["GET", "/b/any-bucket", "No bearer token in request header"],
    ["POST", "/b/any-bucket", "No bearer token in request header"],
  ])("an existing route %s %s still needs a token", async (method, path, message) => {
    await expectError(await api(method, path, { token: null }), 401, message);
  });

  it("HEAD of an unknown path is 404 with x-reduct-error and an empty body", async () => {
    const response = await api("HEAD", "/NOTEXIST");
    expect(response.status).toBe(404);
    expect(response.headers.get("x-reduct-error")).toBe("Not found");
    expect(await response.text()).toBe("");
  });
});

describe("server API: headers on every response", () => {
  const cases: [string, string, { token?: string | null; headers?: Record<string, string>; body?: string }][] = [
    ["GET", "/alive", { token: null }],
    ["HEAD", "/alive", { token: null }],
    ["GET", "/ready", {}],
    ["GET", "/info", {}],
    ["GET", "/list", {}],
    ["GET", "/me", {}],
    ["GET", "/info", { token: null }],
    ["GET", "/info", { token: "" }],
    ["GET", "/NOTEXIST", {}],
    ["HEAD", "/NOTEXIST", {}],
    ["OPTIONS", "/info", { token: null, headers: { origin: "https://first-allowed-origin.com" } }],
    ["OPTIONS", "/NOTEXIST", { token: null }],
    ["GET", "/b/no-such-bucket-for-headers", {}],
    ["HEAD", "/b/no-such-bucket-for-headers", {}],
    ["POST", "/b/bad.name", {}],
    ["POST", "/b/bad-json-for-headers", { body: "xxx" }],
  ];
  it.each(cases)("%s %s carries x-reduct-api and server", async (method, path, init) => {
    const response = await api(method, path, init);
    await response.text();
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
    expect(response.headers.get("x-reduct-api")).toMatch(/^1\.\d+$/);
    expect(response.headers.get("server")).toMatch(/^ReductStore 1\.\d+\.\d+$/);
  });
});

describe("server API: GET /info", () => {
  it("returns every field with the contract's types and exact bucket defaults", async () => {
    const { response, body } = await getJson("/info");
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("server")).toMatch(/ReductStore 1\.\d+\.\d+/);
    expect(response.headers.get("server")).toBe(`ReductStore ${SERVER_VERSION}`);
    expect(Object.keys(body).sort()).toEqual(
      [
        "version",
        "instance_name",
        "instance_role",
        "bucket_count",
        "usage",
        "uptime",
        "oldest_record",
        "latest_record",
        "defaults",
        "license",
      ].sort(),
    );
    expect(body.version).toBe(SERVER_VERSION);
    expect(typeof body.version === "string" && body.version >= "1.11.0").toBe(true);
    expect(body.instance_name).toBe("reduct-edge-test");
    expect(body.instance_role).toBe("STANDALONE");
    for (const field of ["bucket_count", "usage", "uptime", "oldest_record", "latest_record"]) {
      expect(Number.isSafeInteger(body[field]), field).toBe(true);
      expect(body[field] as number, field).toBeGreaterThanOrEqual(0);
    }
    expect(body.defaults).toStrictEqual({
      bucket: { max_block_size: 64000000, max_block_records: 1024, quota_type: "NONE", quota_size: 0 },
    });
    expect(body.license).toBeNull();
  });

  it("counts created buckets and stops counting deleted ones", async () => {
    const before = (await getJson("/info")).body.bucket_count as number;
    const names = [uniqueName("info"), uniqueName("info")];
    for (const name of names) await createBucket(name);
    const during = (await getJson("/info")).body.bucket_count as number;
    expect(during).toBeGreaterThanOrEqual(before + 2);
    expect(during).toBeGreaterThan(0);
    const listed = (await listBuckets()).map((bucket) => bucket.name);
    for (const name of names) expect(listed).toContain(name);
    for (const name of names) await deleteBucket(name);
    const listedAfter = (await listBuckets()).map((bucket) => bucket.name);
    for (const name of names) expect(listedAfter).not.toContain(name);
  });

  it("uptime is a whole number of seconds that never goes backwards", async () => {
    const first = (await getJson("/info")).body.uptime as number;
    const second = (await getJson("/info")).body.uptime as number;
    expect(second).toBeGreaterThanOrEqual(first);
  });

  /** /info when the running version was created at `timestamp`. */
  async function uptimeWithVersion(timestamp: string): Promise<unknown> {
    const request = new Request("http://localhost/api/v1/info", { headers: { authorization: "Bearer test-init-token" } });
    const version = { id: "00000000-0000-0000-0000-000000000001", tag: "", timestamp };
    const response = await createApp().fetch(request, { ...env, CF_VERSION_METADATA: version }, {
      waitUntil() {},
      passThroughOnException() {},
      props: {},
    } as unknown as ExecutionContext);
    expect(response.status).toBe(200);
    return ((await response.json()) as { uptime: unknown }).uptime;
  }

  it("uptime counts from the running version's start, not from this isolate's first /info", async () => {
    const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
    const cases: Array<[string, string, (uptime: number) => boolean]> = [
      ["an hour ago", ago(3_600_000), (uptime) => uptime >= 3_600 && uptime <= 3_605],
      ["5 s ago", ago(5_000), (uptime) => uptime >= 5 && uptime <= 10],
      ["in the future (clock skew)", new Date(Date.now() + 60_000).toISOString(), (uptime) => uptime === 0],
    ];
    for (const [name, timestamp, expected] of cases) {
      const uptime = await uptimeWithVersion(timestamp);
      expect(typeof uptime === "number" && Number.isSafeInteger(uptime) && expected(uptime), `${name}: ${uptime}`).toBe(true);
    }
    // An unreadable timestamp falls back to this isolate's clock instead of failing /info.
    const fallback = await uptimeWithVersion("not a date");
    expect(typeof fallback === "number" && fallback >= 0, `fallback: ${fallback}`).toBe(true);
  });
});

describe("server API: GET /list", () => {
  it("lists created buckets with exactly the BucketInfo keys, sorted by name in byte order", async () => {
    const stem = uniqueName("list");
    // Upper case sorts before lower case and '-' before digits in byte order.
    const names = [`${stem}-b`, `${stem}-a`, `${stem}-B`, `${stem}-_`, `${stem}-0`];
    for (const name of names) await createBucket(name);
    const { response } = await getJson("/info");
    expect(response.headers.get("content-type")).toBe("application/json");

    const listResponse = await api("GET", "/list");
    expect(listResponse.status).toBe(200);
    expect(listResponse.headers.get("content-type")).toBe("application/json");
    const buckets = ((await listResponse.json()) as { buckets: ListedBucket[] }).buckets;

    const allNames = buckets.map((bucket) => bucket.name);
    const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    expect(allNames).toEqual([...allNames].sort(byteOrder));
    expect(new Set(allNames).size).toBe(allNames.length);

    const ours = buckets.filter((bucket) => names.includes(bucket.name));
    expect(ours.map((bucket) => bucket.name)).toEqual([...names].sort(byteOrder));
    for (const bucket of ours) {
      expect(bucket).toStrictEqual({
        name: bucket.name,
        entry_count: 0,
        size: 0,
        oldest_record: 0,
        latest_record: 0,
        is_provisioned: false,
        status: "READY",
      });
    }
    for (const name of names) await deleteBucket(name);
  });

  it("shows a renamed bucket under its new name only", async () => {
    const oldName = uniqueName("list-old");
    const newName = uniqueName("list-new");
    await createBucket(oldName);
    const response = await api("PUT", `/b/${oldName}/rename`, {
      headers: JSON_HEADERS,
      body: JSON.stringify({ new_name: newName }),
    });
    expect(response.status).toBe(200);
    await response.text();
    const listed = (await listBuckets()).map((bucket) => bucket.name);
    expect(listed).toContain(newName);
    expect(listed).not.toContain(oldName);
    await deleteBucket(newName);
  });
});

describe("server API: GET /me", () => {
  it("returns the init token with full access and an empty value", async () => {
    const { response, body } = await getJson("/me");
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(body).toMatchObject({
      name: "init-token",
      value: "",
      permissions: { full_access: true, read: [], write: [] },
      ip_allowlist: [],
    });
  });
});
