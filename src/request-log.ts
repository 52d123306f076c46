/**
 * Structured request logs: one JSON object per request, filtered by RS_LOG_LEVEL. As in ReductStore,
 * a request is logged at DEBUG, and at ERROR when it answers 5xx; so the default INFO logs only
 * failures. The console method carries the level into Workers Logs and `wrangler tail`.
 * Never logged: headers other than the request id, the query string (it may hold user data).
 */
import { routePath } from "./app";
import { type LogLevel, logLevelFromEnv, type RsEnv } from "./config";

const LEVEL_RANK: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/** The bucket of a route path (base path already stripped): /api/v1/b/:bucket/… and /api/v1/io/:bucket/…. */
const BUCKET_IN_PATH = /^\/api\/v1\/(?:b|io)\/([^/?#]+)/;

/** Request ids are echoed from headers: keep a hostile one from bloating the log. */
const MAX_REQUEST_ID_LENGTH = 128;

export interface RequestLogLine {
  level: "DEBUG" | "ERROR";
  msg: "request";
  method: string;
  /** The URL path as received, without the query string. */
  path: string;
  status: number;
  /** Until the response headers were ready (a streamed body may take longer). */
  duration_ms: number;
  bucket?: string;
  /** `cf-ray` on Cloudflare, else the client's `x-request-id`. */
  request_id?: string;
  /** The `x-reduct-error` message of a 4xx/5xx answer. */
  error?: string;
}

/** Is a request answered with `status` logged at `level`? */
export function isRequestLogged(level: LogLevel, status: number): boolean {
  return LEVEL_RANK[status >= 500 ? "ERROR" : "DEBUG"] >= LEVEL_RANK[level];
}

export function requestLogLine(request: Request, routePath: string, response: Response, durationMs: number): RequestLogLine {
  const url = new URL(request.url);
  const line: RequestLogLine = {
    level: response.status >= 500 ? "ERROR" : "DEBUG",
    msg: "request",
    method: request.method,
    path: url.pathname,
    status: response.status,
    duration_ms: Math.round(durationMs * 10) / 10,
  };
  const bucket = BUCKET_IN_PATH.exec(routePath)?.[1];
  if (bucket) line.bucket = bucket;
  const requestId = request.headers.get("cf-ray") ?? request.headers.get("x-request-id");
  if (requestId) line.request_id = requestId.slice(0, MAX_REQUEST_ID_LENGTH);
  const error = response.status >= 400 ? response.headers.get("x-reduct-error") : null;
  if (error) line.error = error;
  return line;
}

/**
 * Logs the request if RS_LOG_LEVEL asks for it and returns `response` unchanged. At the default
 * level a successful request costs one level lookup and one comparison.
 */
export function logRequest(request: Request, env: RsEnv, response: Response, startedAt: number): Response {
  if (!isRequestLogged(logLevelFromEnv(env), response.status)) return response;
  const line = requestLogLine(request, routePath(request, env), response, performance.now() - startedAt);
  if (line.level === "ERROR") console.error(JSON.stringify(line));
  else console.debug(JSON.stringify(line));
  return response;
}
