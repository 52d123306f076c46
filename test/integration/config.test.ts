/**
 * RS_* configuration seen through the API: bucket defaults applied to /info and new buckets, the
 * instance name, RS_API_BASE_PATH through the Worker entry point, and invalid values reported with
 * the variable's name while /alive keeps answering.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { API_VERSION } from "../../src/version";
import { api, apiWithEnv, authHeaders, expectError, TOKEN, uniqueName } from "../helpers/http";

const EXECUTION_CONTEXT = {
  waitUntil() {},
  passThroughOnException() {},
  props: {},
} as unknown as ExecutionContext;

/** Sends a request through the Worker's entry point (src/index.ts) with a modified environment. */
async function workerFetch(
  overrides: Record<string, string | undefined>,
  method: string,
  url: string,
  init: { headers?: Record<string, string>; body?: string | null; token?: string | null } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token !== null) headers.authorization ??= `Bearer ${init.token ?? TOKEN}`;
  const request = new Request(url, { method, headers, body: init.body ?? null });
  return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, ...overrides }, EXECUTION_CONTEXT);
}

async function infoWith(overrides: Record<string, string | undefined>): Promise<Record<string, unknown>> {
  const response = await apiWithEnv(overrides, "GET", "/info", authHeaders());
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

async function settingsOf(name: string): Promise<unknown> {
  const response = await api("GET", `/b/${name}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { settings: unknown }).settings;
}

describe("RS_DEFAULTS_BUCKET_* and the instance", () => {
  const cases: [string, Record<string, string>, Record<string, unknown>][] = [
    [
      "plain numbers and a lower-case quota type",
      {
        RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE: "1000",
        RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: "10",
        RS_DEFAULTS_BUCKET_QUOTA_TYPE: "fifo",
        RS_DEFAULTS_BUCKET_QUOTA_SIZE: "5000",
      },
      { max_block_size: 1000, max_block_records: 10, quota_type: "FIFO", quota_size: 5000 },
    ],
    [
      "sizes with units",
      {
        RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE: "1MB",
        RS_DEFAULTS_BUCKET_QUOTA_SIZE: "2 GiB",
        RS_DEFAULTS_BUCKET_QUOTA_TYPE: " HARD ",
      },
      { max_block_size: 1_000_000, max_block_records: 1024, quota_type: "HARD", quota_size: 2 * 1024 ** 3 },
    ],
    [
      "one variable only",
      { RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: "256" },
      { max_block_size: 64000000, max_block_records: 256, quota_type: "NONE", quota_size: 0 },
    ],
    [
      "empty strings (unset)",
      { RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE: "", RS_DEFAULTS_BUCKET_QUOTA_TYPE: "" },
      { max_block_size: 64000000, max_block_records: 1024, quota_type: "NONE", quota_size: 0 },
    ],
  ];
  it.each(cases)("%s: /info shows them and a new bucket gets them", async (_label, overrides, expected) => {
    expect((await infoWith(overrides)).defaults).toStrictEqual({ bucket: expected });
    const name = uniqueName("defaults");
    const create = await apiWithEnv(overrides, "POST", `/b/${name}`, authHeaders());
    expect(create.status).toBe(200);
    await create.text();
    expect(await settingsOf(name)).toStrictEqual(expected);
  });

  it("settings given on create override the configured defaults field by field", async () => {
    const overrides = { RS_DEFAULTS_BUCKET_QUOTA_TYPE: "FIFO", RS_DEFAULTS_BUCKET_QUOTA_SIZE: "100" };
    const name = uniqueName("defaults-partial");
    const app = await import("../../src/app");
    const response = await app.createApp().fetch(
      new Request(`http://localhost/api/v1/b/${name}`, {
        method: "POST",
        headers: authHeaders(),
        body: '{"quota_type": null, "max_block_size": 7}',
      }),
      { ...env, ...overrides },
      EXECUTION_CONTEXT,
    );
    expect(response.status).toBe(200);
    await response.text();
    expect(await settingsOf(name)).toStrictEqual({
      max_block_size: 7,
      max_block_records: 1024,
      quota_type: "FIFO",
      quota_size: 100,
    });
  });

  it("updates do not apply the defaults again", async () => {
    const name = uniqueName("defaults-update");
    const create = await api("POST", `/b/${name}`, { body: '{"quota_size": 3}' });
    expect(create.status).toBe(200);
    await create.text();
    const update = await apiWithEnv({ RS_DEFAULTS_BUCKET_QUOTA_SIZE: "999" }, "PUT", `/b/${name}`, authHeaders());
    expect(update.status).toBe(200);
    await update.text();
    expect(await settingsOf(name)).toStrictEqual({
      max_block_size: 64000000,
      max_block_records: 1024,
      quota_type: "NONE",
      quota_size: 3,
    });
  });

  it.each([
    [{ RS_INSTANCE_NAME: "edge-1" }, "edge-1"],
    [{ RS_INSTANCE_NAME: undefined }, "reduct-edge"],
    [{ RS_INSTANCE_NAME: "" }, "reduct-edge"],
  ])("instance name from %o → %s", async (overrides, expected) => {
    const info = await infoWith(overrides);
    expect(info.instance_name).toBe(expected);
    expect(info.instance_role).toBe("STANDALONE");
  });

  it("RS_INSTANCE_ROLE=standalone is accepted", async () => {
    expect((await infoWith({ RS_INSTANCE_ROLE: "standalone" })).instance_role).toBe("STANDALONE");
  });
});

describe("invalid configuration", () => {
  const invalid: [string, string][] = [
    ["RS_DEFAULTS_BUCKET_QUOTA_TYPE", "UNKNOWN"],
    ["RS_DEFAULTS_BUCKET_QUOTA_TYPE", "FIFO,HARD"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "abc"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "0"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "-1"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "1.5MB"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "10XB"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_SIZE", "99999999999999999999"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "0"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "-5"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "1.5"],
    ["RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS", "many"],
    ["RS_DEFAULTS_BUCKET_QUOTA_SIZE", "lots"],
    ["RS_DEFAULTS_BUCKET_QUOTA_SIZE", "-1"],
    ["RS_MAX_RECORD_SIZE", "0"],
    ["RS_INSTANCE_ROLE", "REPLICA"],
    ["RS_DISABLE_AUTH", "maybe"],
    ["RS_API_BASE_PATH", "a b"],
    ["RS_API_BASE_PATH", "api?x=1"],
    ["RS_INSTANCE_NAME", "x".repeat(257)],
  ];

  it.each(invalid)("%s=%s → 500 naming the variable on API calls, /alive still 200", async (variable, value) => {
    const overrides = { [variable]: value };
    const info = await apiWithEnv(overrides, "GET", "/info", authHeaders());
    const message = info.headers.get("x-reduct-error") ?? "";
    expect(info.status).toBe(500);
    expect(message.startsWith(`Invalid value of ${variable}: `)).toBe(true);
    expect(message.length).toBeGreaterThan(`Invalid value of ${variable}: `.length);
    expect(info.headers.get("content-type")).toBe("application/json");
    expect(await info.json()).toEqual({ detail: message });
    expect(info.headers.get("x-reduct-api")).toBe(API_VERSION);

    for (const method of ["GET", "HEAD"]) {
      const alive = await apiWithEnv(overrides, method, "/alive");
      expect(alive.status).toBe(200);
      expect(await alive.text()).toBe("");
      expect(alive.headers.get("x-reduct-api")).toBe(API_VERSION);
    }
    // /ready does not claim readiness while the configuration is broken.
    const ready = await apiWithEnv(overrides, "GET", "/ready");
    await ready.text();
    expect(ready.status).toBe(500);
    expect(ready.headers.get("x-reduct-error")).toBe(message);
  });

  it("refuses to store anything while the configuration is invalid", async () => {
    const name = uniqueName("bad-config");
    const create = await apiWithEnv({ RS_DEFAULTS_BUCKET_QUOTA_TYPE: "UNKNOWN" }, "POST", `/b/${name}`, authHeaders());
    await create.text();
    expect(create.status).toBe(500);
    await expectError(await api("GET", `/b/${name}`), 404, `Bucket '${name}' is not found`);
  });
});

describe("RS_API_BASE_PATH", () => {
  it.each([["base"], ["/base"], ["/base/"], ["base/"], ["//base//"]])(
    "%s serves the API under /base/api/v1 and nowhere else",
    async (basePath) => {
      const overrides = { RS_API_BASE_PATH: basePath };
      const info = await workerFetch(overrides, "GET", "http://localhost/base/api/v1/info");
      expect(info.status).toBe(200);
      expect(((await info.json()) as { version: string }).version).toMatch(/^1\.\d+\.\d+$/);

      const alive = await workerFetch(overrides, "HEAD", "http://localhost/base/api/v1/alive", { token: null });
      expect(alive.status).toBe(200);
      expect(alive.headers.get("x-reduct-api")).toBe(API_VERSION);
      await alive.text();

      for (const url of [
        "http://localhost/api/v1/info",
        "http://localhost/baseX/api/v1/info",
        "http://localhost/other/api/v1/info",
        "http://localhost/base",
        "http://localhost/base/api/v1/NOTEXIST",
        "http://localhost/base/base/api/v1/info",
      ]) {
        const response = await workerFetch(overrides, "GET", url);
        expect(response.status, url).toBe(404);
        expect(response.headers.get("x-reduct-error"), url).toBe("Not found");
        expect(response.headers.get("x-reduct-api"), url).toBe(API_VERSION);
        await response.text();
      }
    },
  );

  it("a nested base path works for the whole bucket lifecycle, bodies included", async () => {
    const overrides = { RS_API_BASE_PATH: "/a/b/" };
    const name = uniqueName("base-path");
    const root = "http://localhost/a/b/api/v1";
    const create = await workerFetch(overrides, "POST", `${root}/b/${name}`, { body: '{"quota_size": 11}' });
    expect(create.status).toBe(200);
    await create.text();
    const get = await workerFetch(overrides, "GET", `${root}/b/${name}`);
    expect(get.status).toBe(200);
    expect(((await get.json()) as { settings: { quota_size: number } }).settings.quota_size).toBe(11);
    const renamed = `${name}-r`;
    const rename = await workerFetch(overrides, "PUT", `${root}/b/${name}/rename`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ new_name: renamed }),
    });
    expect(rename.status).toBe(200);
    await rename.text();
    const remove = await workerFetch(overrides, "DELETE", `${root}/b/${renamed}`);
    expect(remove.status).toBe(200);
    await remove.text();
  });

  it("CORS preflights and auth work under the base path", async () => {
    const overrides = { RS_API_BASE_PATH: "/base" };
    const preflight = await workerFetch(overrides, "OPTIONS", "http://localhost/base/api/v1/info", {
      token: null,
      headers: { origin: "https://first-allowed-origin.com" },
    });
    expect(preflight.status).toBe(200);
    await preflight.text();
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://first-allowed-origin.com");
    const unauthorized = await workerFetch(overrides, "GET", "http://localhost/base/api/v1/info", { token: null });
    await expectError(unauthorized, 401, "No bearer token in request header");
  });

  it("a bad value of another variable does not move the API: /alive answers under the base path", async () => {
    const overrides = { RS_API_BASE_PATH: "/base", RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: "none" };
    const alive = await workerFetch(overrides, "GET", "http://localhost/base/api/v1/alive", { token: null });
    expect(alive.status).toBe(200);
    await alive.text();
    const info = await workerFetch(overrides, "GET", "http://localhost/base/api/v1/info");
    await info.text();
    expect(info.status).toBe(500);
    expect(info.headers.get("x-reduct-error")).toMatch(/^Invalid value of RS_DEFAULTS_BUCKET_MAX_BLOCK_RECORDS: /);
  });

  it("an invalid base path keeps the API (and the error naming it) at /api/v1", async () => {
    const response = await workerFetch({ RS_API_BASE_PATH: "a b" }, "GET", "http://localhost/api/v1/info");
    await response.text();
    expect(response.status).toBe(500);
    expect(response.headers.get("x-reduct-error")).toMatch(/^Invalid value of RS_API_BASE_PATH: /);
  });

  it.each([[undefined], [""], ["/"]])("unset or root (%s) serves the API at /api/v1", async (basePath) => {
    const response = await workerFetch({ RS_API_BASE_PATH: basePath }, "GET", "http://localhost/api/v1/info");
    expect(response.status).toBe(200);
    await response.json();
  });
});
