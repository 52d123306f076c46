/**
 * Structured request logs through the Worker's fetch: the shape of the line, RS_LOG_LEVEL filtering
 * (DEBUG for every request, ERROR for 5xx, as in ReductStore), and what must never be logged.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import worker from "../../src/index";
import { TOKEN } from "../helpers/http";

const METHODS = ["log", "info", "debug", "warn", "error"] as const;
type ConsoleMethod = (typeof METHODS)[number];
let spies: Record<ConsoleMethod, MockInstance>;

beforeEach(() => {
  spies = {} as Record<ConsoleMethod, MockInstance>;
  for (const method of METHODS) spies[method] = vi.spyOn(console, method).mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Every console call made while handling the request, as [method, first argument]. */
async function logsOf(
  path: string,
  vars: Record<string, string>,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; calls: [ConsoleMethod, string][] }> {
  const request = new Request(`http://localhost${path}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
  });
  const response = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...env, ...vars } as typeof env,
    createExecutionContext(),
  );
  await response.arrayBuffer();
  const calls: [ConsoleMethod, string][] = [];
  for (const method of METHODS) {
    for (const args of spies[method].mock.calls) calls.push([method, String(args[0])]);
  }
  return { status: response.status, calls };
}

describe("request logs", () => {
  it.each([
    // level, path, extra vars, expected status, expected console method (undefined: nothing logged)
    ["DEBUG", "/api/v1/alive", {}, 200, "debug"],
    ["DEBUG", "/api/v1/info", {}, 200, "debug"],
    ["DEBUG", "/api/v1/b/no-such-bucket", {}, 404, "debug"],
    ["TRACE", "/api/v1/b/no-such-bucket", {}, 404, "debug"],
    ["debug", "/api/v1/info", {}, 200, "debug"],
    ["INFO", "/api/v1/alive", {}, 200, undefined],
    ["INFO", "/api/v1/info", {}, 200, undefined],
    ["INFO", "/api/v1/b/no-such-bucket", {}, 404, undefined],
    ["WARN", "/api/v1/b/no-such-bucket", {}, 404, undefined],
    ["ERROR", "/api/v1/info", {}, 200, undefined],
    ["INFO", "/api/v1/info", { RS_IO_BATCH_MAX_RECORDS: "many" }, 500, "error"],
    ["ERROR", "/api/v1/info", { RS_IO_BATCH_MAX_RECORDS: "many" }, 500, "error"],
    ["", "/api/v1/info", { RS_IO_BATCH_MAX_RECORDS: "many" }, 500, "error"],
    ["", "/api/v1/info", {}, 200, undefined],
    ["LOUD", "/api/v1/info", {}, 500, "error"],
  ] as const)("RS_LOG_LEVEL=%s, GET %s with %o → %i, logged with console.%s", async (level, path, vars, status, method) => {
    const { status: answered, calls } = await logsOf(path, { RS_LOG_LEVEL: level, ...vars });
    expect(answered).toBe(status);
    const requestLines = calls.filter(([, text]) => text.includes('"msg":"request"'));
    expect(requestLines.map(([called]) => called)).toEqual(method ? [method] : []);
  });

  it("a line is one JSON object: method, path, status, duration, bucket, request id", async () => {
    const { calls } = await logsOf(
      "/api/v1/b/sensors/cam-1?ts=1700000000000000",
      { RS_LOG_LEVEL: "DEBUG" },
      {
        headers: { "cf-ray": "8f00aa11bb22cc33-FRA" },
      },
    );
    expect(calls).toHaveLength(1);
    const [method, text] = calls[0] as [ConsoleMethod, string];
    expect(method).toBe("debug");
    const line = JSON.parse(text);
    expect(line).toStrictEqual({
      level: "DEBUG",
      msg: "request",
      method: "GET",
      path: "/api/v1/b/sensors/cam-1",
      status: 404,
      duration_ms: expect.any(Number),
      bucket: "sensors",
      request_id: "8f00aa11bb22cc33-FRA",
      error: expect.stringMatching(/^Bucket 'sensors' is not found$/),
    });
    expect(line.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it.each([
    ["/api/v1/io/sensors/q", {}, "sensors", "/api/v1/io/sensors/q"],
    ["/base/api/v1/b/lab-1", { RS_API_BASE_PATH: "/base" }, "lab-1", "/base/api/v1/b/lab-1"],
    ["/api/v1/list", {}, undefined, "/api/v1/list"],
    ["/api/v1/tokens", {}, undefined, "/api/v1/tokens"],
  ])("GET %s with %o: bucket %s, path %s", async (path, vars, bucket, loggedPath) => {
    const { calls } = await logsOf(path, { RS_LOG_LEVEL: "DEBUG", ...vars });
    expect(calls).toHaveLength(1);
    const line = JSON.parse((calls[0] as [ConsoleMethod, string])[1]);
    expect(line.bucket).toBe(bucket);
    expect(line.path).toBe(loggedPath);
  });

  it("x-request-id is used without cf-ray, and bounded", async () => {
    const { calls } = await logsOf("/api/v1/info", { RS_LOG_LEVEL: "DEBUG" }, { headers: { "x-request-id": "r".repeat(500) } });
    expect(JSON.parse((calls[0] as [ConsoleMethod, string])[1]).request_id).toBe("r".repeat(128));
  });

  it("never logs the token, other headers or the query string", async () => {
    const secret = "query-secret-7f3a";
    const { calls } = await logsOf(
      `/api/v1/b/no-such-bucket/entry?ts=1&token=${secret}`,
      { RS_LOG_LEVEL: "TRACE" },
      { headers: { authorization: `Bearer ${TOKEN}`, cookie: `session=${secret}`, "user-agent": secret } },
    );
    expect(calls).toHaveLength(1);
    const text = (calls[0] as [ConsoleMethod, string])[1];
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(secret);
    expect(text).not.toContain("?");
    // A wrong token is not logged either.
    const wrong = await logsOf("/api/v1/info", { RS_LOG_LEVEL: "DEBUG" }, { headers: { authorization: `Bearer ${secret}` } });
    expect(wrong.status).toBe(401);
    expect(wrong.calls.map(([, line]) => line).join("\n")).not.toContain(secret);
  });
});
