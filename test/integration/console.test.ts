/**
 * The web console's routes through the Worker entry point: `{base}` and `{base}ui` redirect to
 * `{base}ui/`, which serves the console's index.html without a token and with a strict CSP; its
 * files come from the ASSETS binding with the base stripped; the API around it is unchanged.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CONSOLE_CSP } from "../../src/console";
import worker from "../../src/index";
import { API_VERSION } from "../../src/version";

const EXECUTION_CONTEXT = {
  waitUntil() {},
  passThroughOnException() {},
  props: {},
} as unknown as ExecutionContext;

function workerFetch(overrides: Record<string, string>, method: string, url: string, headers: Record<string, string> = {}) {
  const request = new Request(url, { method, headers });
  return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, ...overrides }, EXECUTION_CONTEXT);
}

const BASES: Array<[string, string]> = [
  ["(default)", "/"],
  ["/base/", "/base/"],
  ["a/b", "/a/b/"],
];

describe("web console", () => {
  it("has the ASSETS binding of wrangler.toml", () => {
    expect(env.ASSETS).toBeDefined();
  });

  it.each(BASES)("base %s: GET {base} and {base}ui redirect (302) to {base}ui/", async (setting, base) => {
    const overrides: Record<string, string> = setting === "(default)" ? {} : { RS_API_BASE_PATH: setting };
    for (const path of [base, `${base}ui`]) {
      const response = await workerFetch(overrides, "GET", `http://localhost${path}`);
      expect(response.status, path).toBe(302);
      expect(response.headers.get("location"), path).toBe(`${base}ui/`);
      expect(response.headers.get("x-reduct-api"), path).toBe(API_VERSION);
      expect(await response.text(), path).toBe("");
    }
  });

  it.each(BASES)("base %s: GET {base}ui/ without a token is the console's index.html with a CSP", async (setting, base) => {
    const overrides: Record<string, string> = setting === "(default)" ? {} : { RS_API_BASE_PATH: setting };
    for (const path of [`${base}ui/`, `${base}ui/index.html`, `${base}ui/buckets/some-page`]) {
      const response = await workerFetch(overrides, "GET", `http://localhost${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-type"), path).toMatch(/^text\/html/);
      expect(response.headers.get("content-security-policy"), path).toBe(CONSOLE_CSP);
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
      const html = await response.text();
      expect(html, path).toContain('<script type="module" src="app.js"></script>');
    }
    const script = await workerFetch(overrides, "GET", `http://localhost${base}ui/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    expect((await script.text()).length).toBeGreaterThan(1000);
    const head = await workerFetch(overrides, "HEAD", `http://localhost${base}ui/app.css`);
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toMatch(/^text\/css/);
    await head.text();
  });

  it.each([
    ["RS_API_TOKEN set", {}, true],
    ["RS_INIT_API_TOKEN set", { RS_API_TOKEN: "", RS_INIT_API_TOKEN: "init-value" }, true],
    ["RS_DISABLE_AUTH=true", { RS_API_TOKEN: "", RS_INIT_API_TOKEN: "", RS_DISABLE_AUTH: "true" }, false],
    ["nothing configured", { RS_API_TOKEN: "", RS_INIT_API_TOKEN: "", RS_DISABLE_AUTH: "" }, true],
  ])("%s: GET {base}ui/auth.json tells the console whether to ask for a token", async (_, overrides, required) => {
    for (const base of ["/", "/base/"]) {
      const settings: Record<string, string> = base === "/" ? overrides : { ...overrides, RS_API_BASE_PATH: base };
      const response = await workerFetch(settings, "GET", `http://localhost${base}ui/auth.json`);
      expect(response.status, base).toBe(200);
      expect(response.headers.get("cache-control"), base).toBe("no-store");
      expect(await response.json(), base).toEqual({ token_required: required });
    }
  });

  it("the CSP allows no inline code and no other origin", () => {
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(CONSOLE_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });

  it.each([
    ["POST", "/ui/", 404],
    ["PUT", "/ui/app.js", 404],
    ["DELETE", "/", 404],
  ])("%s %s is no console route: %i Not found", async (method, path, status) => {
    const response = await workerFetch({}, method, `http://localhost${path}`);
    expect(response.status).toBe(status);
    expect(response.headers.get("x-reduct-error")).toBe("Not found");
    await response.text();
  });

  it("the console is not served outside the base path, and the API still needs its token", async () => {
    const overrides = { RS_API_BASE_PATH: "/base/" };
    for (const path of ["/ui/", "/", "/baseui/"]) {
      const response = await workerFetch(overrides, "GET", `http://localhost${path}`);
      expect(response.status, path).toBe(404);
      expect(response.headers.get("x-reduct-error"), path).toBe("Not found");
      await response.text();
    }
    const info = await workerFetch({}, "GET", "http://localhost/api/v1/info");
    expect(info.status).toBe(401);
    await info.text();
  });
});
