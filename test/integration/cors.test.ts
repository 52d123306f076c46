/**
 * CORS: allowed origins echoed, others served without Access-Control-Allow-Origin, every
 * OPTIONS answered as a preflight, and x-reduct-api on all of it. The test Worker is configured with
 * RS_CORS_ALLOW_ORIGIN="https://first-allowed-origin.com, https://second-allowed-origin.com".
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { API_VERSION } from "../../src/version";
import { api, apiWithEnv, authHeaders, uniqueName } from "../helpers/http";

const FIRST = "https://first-allowed-origin.com";
const SECOND = "https://second-allowed-origin.com";

describe("CORS with the configured allow list", () => {
  it.each([
    ["GET", "/info", FIRST, 200],
    ["GET", "/info", SECOND, 200],
    ["GET", "/list", FIRST, 200],
    ["GET", "/alive", SECOND, 200],
    ["HEAD", "/alive", FIRST, 200],
    ["GET", "/NOTEXIST", FIRST, 404],
    ["GET", "/b/cors-no-such-bucket", SECOND, 404],
  ])("%s %s from allowed origin %s → %i with the origin echoed", async (method, path, origin, status) => {
    const response = await api(method, path, { headers: { origin } });
    await response.text();
    expect(response.status).toBe(status);
    expect(response.headers.get("access-control-allow-origin")).toBe(origin);
    expect(response.headers.get("access-control-expose-headers")).toBe("*");
    expect(response.headers.get("vary")?.toLowerCase()).toContain("origin");
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
  });

  it.each([
    ["https://not-allowed-origin.com"],
    ["https://first-allowed-origin.com.evil.com"],
    ["http://first-allowed-origin.com"],
    ["https://FIRST-allowed-origin.com"],
    ["null"],
  ])("a disallowed origin %s still gets 200, without Access-Control-Allow-Origin", async (origin) => {
    const response = await api("GET", "/info", { headers: { origin } });
    expect(response.status).toBe(200);
    await response.json();
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
  });

  it("a request without Origin gets no Access-Control-Allow-Origin", async () => {
    const response = await api("GET", "/info");
    await response.json();
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("an allowed origin is echoed on errors and on writes too", async () => {
    const name = uniqueName("cors");
    const create = await api("POST", `/b/${name}`, { headers: { origin: FIRST } });
    expect(create.status).toBe(200);
    await create.text();
    expect(create.headers.get("access-control-allow-origin")).toBe(FIRST);
    const duplicate = await api("POST", `/b/${name}`, { headers: { origin: SECOND } });
    await duplicate.text();
    expect(duplicate.status).toBe(409);
    expect(duplicate.headers.get("access-control-allow-origin")).toBe(SECOND);
    const unauthorized = await api("GET", "/info", { token: null, headers: { origin: FIRST } });
    await unauthorized.text();
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("access-control-allow-origin")).toBe(FIRST);
  });
});

describe("CORS preflight: every OPTIONS", () => {
  it.each([
    ["/info", FIRST, FIRST],
    ["/info", SECOND, SECOND],
    ["/info", "https://not-allowed-origin.com", null],
    ["/info", undefined, null],
    ["/b/some-bucket", FIRST, FIRST],
    ["/b/some-bucket/entry/batch", FIRST, FIRST],
    ["/NOTEXIST", FIRST, FIRST],
    ["/tokens", SECOND, SECOND],
  ])("OPTIONS %s with origin %s → 200, `*` methods and headers, ACAO %s", async (path, origin, allowed) => {
    const headers: Record<string, string> = origin ? { origin } : {};
    const response = await api("OPTIONS", path, { token: null, headers });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("");
    expect(response.headers.get("access-control-allow-methods")).toBe("*");
    expect(response.headers.get("access-control-allow-headers")).toBe("*");
    expect(response.headers.get("access-control-allow-origin")).toBe(allowed);
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
    expect(response.headers.get("x-reduct-error")).toBeNull();
  });

  it("a browser-style preflight with request method and headers is answered without auth", async () => {
    const response = await api("OPTIONS", "/b/some-bucket", {
      token: null,
      headers: {
        origin: FIRST,
        "access-control-request-method": "DELETE",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(response.status).toBe(200);
    await response.text();
    expect(response.headers.get("access-control-allow-origin")).toBe(FIRST);
    expect(response.headers.get("access-control-allow-methods")).toBe("*");
  });
});

describe("CORS with other configurations", () => {
  it("`*` in the list allows every origin with `*`", async () => {
    const response = await apiWithEnv(
      { RS_CORS_ALLOW_ORIGIN: "*" },
      "GET",
      "/info",
      authHeaders(undefined, { origin: "https://x.example" }),
    );
    await response.json();
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
    const preflight = await apiWithEnv({ RS_CORS_ALLOW_ORIGIN: "https://a.example, *" }, "OPTIONS", "/info", {
      origin: "https://y.example",
    });
    await preflight.text();
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
  });

  it.each([[undefined], [""], [" , ,"]])("an unset or empty list (%s) allows no origin at all", async (value) => {
    const response = await apiWithEnv({ RS_CORS_ALLOW_ORIGIN: value }, "GET", "/info", authHeaders(undefined, { origin: FIRST }));
    await response.json();
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await apiWithEnv({ RS_CORS_ALLOW_ORIGIN: value }, "OPTIONS", "/info", { origin: FIRST });
    await preflight.text();
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(preflight.headers.get("access-control-allow-methods")).toBe("*");
  });

  it("list entries are trimmed", async () => {
    const response = await apiWithEnv({ RS_CORS_ALLOW_ORIGIN: "  https://a.example ,https://b.example  " }, "GET", "/alive", {
      origin: "https://b.example",
    });
    await response.text();
    expect(response.headers.get("access-control-allow-origin")).toBe("https://b.example");
  });

  it("a preflight is still answered while the configuration is invalid", async () => {
    const response = await apiWithEnv({ RS_DEFAULTS_BUCKET_QUOTA_TYPE: "UNKNOWN" }, "OPTIONS", "/info", { origin: FIRST });
    await response.text();
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-methods")).toBe("*");
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
  });
});

describe("CORS on responses with immutable headers", () => {
  it("a route answering with Response.redirect still gets CORS and API headers, not a 500", async () => {
    const app = createApp();
    app.get("/api/v1/test-immutable", () => Response.redirect("https://example.com/elsewhere", 302));
    const response = await app.fetch(
      new Request("http://localhost/api/v1/test-immutable", { headers: authHeaders(undefined, { origin: FIRST }) }),
      env,
      { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext,
    );
    await response.text();
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("https://example.com/elsewhere");
    expect(response.headers.get("access-control-allow-origin")).toBe(FIRST);
    expect(response.headers.get("access-control-expose-headers")).toBe("*");
    expect(response.headers.get("x-reduct-api")).toBe(API_VERSION);
  });
});
