/**
 * Test helpers for requests through the Worker's fetch, as a client would send them.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { expect } from "vitest";
import { createApp } from "../../src/app";
import worker from "../../src/index";

export const TOKEN = "test-init-token";
export const BASE = "http://localhost/api/v1";

export function authHeaders(token = TOKEN, extra: Record<string, string> = {}): Record<string, string> {
  return { authorization: `Bearer ${token}`, ...extra };
}

/** Sends a request through the Worker's fetch handler with the init token unless told otherwise. */
export async function api(
  method: string,
  path: string,
  init: { token?: string | null; headers?: Record<string, string>; body?: BodyInit | null } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.token !== null) headers.authorization ??= `Bearer ${init.token ?? TOKEN}`;
  // The Worker's exported fetch handler, called directly: SELF.fetch slows down with every request
  // in vitest-pool-workers 0.15 (a harness leak), which made long tests time out.
  // A Request built here has no Content-Length; an HTTP client sends one for fixed-length bodies.
  const length = fixedLength(init.body);
  if (length !== undefined && headers["content-length"] === undefined) headers["content-length"] = String(length);
  const request = new Request(`${BASE}${path}`, { method, headers, body: init.body ?? null });
  return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, env, createExecutionContext());
}

function fixedLength(body: BodyInit | null | undefined): number | undefined {
  if (typeof body === "string") return new TextEncoder().encode(body).byteLength;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  return undefined;
}

/** Runs the app with a modified environment (e.g. auth modes), bypassing wrangler config. */
export async function apiWithEnv(
  overrides: Record<string, string | undefined>,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
) {
  const app = createApp();
  const request = new Request(`${BASE}${path}`, { method, headers, body });
  return app.fetch(request, { ...env, ...overrides }, {
    waitUntil() {},
    passThroughOnException() {},
    props: {},
  } as unknown as ExecutionContext);
}

/** Asserts the error contract: status, `x-reduct-error`, JSON `{"detail"}` and `x-reduct-api`. */
export async function expectError(response: Response, status: number, message: string): Promise<void> {
  const body = response.status === 204 || response.headers.get("content-length") === "0" ? "" : await response.text();
  expect({ status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ status, error: message });
  expect(response.headers.get("x-reduct-api")).toMatch(/^1\.\d+$/);
  if (body !== "") expect(JSON.parse(body)).toEqual({ detail: message });
}

let counter = 0;
/** A bucket name unique within the test run. */
export function uniqueName(prefix = "bucket"): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}`;
}
