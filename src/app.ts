/**
 * The Hono app: default headers → CORS → config → auth → routes. `onError` and `notFound` are the
 * only exits for errors, so every failure has the contract's shape.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { getPath } from "hono/utils/url";
import { batchV1Routes } from "./api/batch-v1";
import { provisionBucketsOnce } from "./api/bucket-provisioning";
import { bucketRoutes } from "./api/buckets";
import type { AppEnv } from "./api/context";
import { cors } from "./api/cors";
import { entryRoutes } from "./api/entries";
import { ioReadRoutes } from "./api/io-read";
import { ioWriteRoutes } from "./api/io-write";
import { lifecycleRoutes } from "./api/lifecycles";
import { linkRoutes } from "./api/links";
import { queryRoutes } from "./api/queries";
import { replicationRoutes } from "./api/replications";
import { errorResponse, toHttpError, withDefaultHeaders } from "./api/respond";
import { serverRoutes } from "./api/server";
import { provisionTokensOnce } from "./api/token-provisioning";
import { tokenRoutes } from "./api/tokens";
import { authenticate } from "./auth/authenticate";
import { clientIp } from "./auth/ip";
import { basePathFromEnv, ConfigError, configFromEnv, type RsEnv } from "./config";
import { consoleRoutes } from "./console";
import { internal, notFound } from "./errors";
import { auditAggregator } from "./system/audit";

/** What requests outside RS_API_BASE_PATH are routed as: no route matches it, so they get 404. */
const OUTSIDE_BASE_PATH = "/.outside-base-path";

/**
 * The path routes see: the request path with RS_API_BASE_PATH stripped (the API lives at
 * `{base}api/v1`), so routes are written as /api/v1/...; a path outside the base path matches none.
 */
export function routePath(request: Request, env: RsEnv | undefined): string {
  const path = getPath(request);
  const basePath = basePathFromEnv(env ?? {});
  if (basePath === "/") return path;
  return path.startsWith(basePath) ? path.slice(basePath.length - 1) : OUTSIDE_BASE_PATH;
}

/** Routes under /api/v1 that need no token. */
const ANONYMOUS_PATHS = new Set(["/api/v1/alive", "/api/v1/ready"]);
/** A query link is opened without a token: its signature stands in for one. */
const ANONYMOUS_LINK_PREFIX = "/api/v1/links/";

function isAnonymous(c: Context<AppEnv>): boolean {
  if (ANONYMOUS_PATHS.has(c.req.path)) return true;
  return (c.req.method === "GET" || c.req.method === "HEAD") && c.req.path.startsWith(ANONYMOUS_LINK_PREFIX);
}

const defaultHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  // Reassigning c.res makes Hono copy the response and its headers: only when a copy was needed.
  const response = withDefaultHeaders(c.res);
  if (response !== c.res) c.res = response;
};

const loadConfig: MiddlewareHandler<AppEnv> = async (c, next) => {
  try {
    c.set("config", configFromEnv(c.env));
  } catch (error) {
    if (error instanceof ConfigError && c.req.path !== "/api/v1/alive") throw internal(error.message);
    if (!(error instanceof ConfigError)) throw error;
  }
  await next();
};

/**
 * Authenticates the caller of every route but /alive and /ready. A request no route handles needs
 * no token: it ends in 404 `Not found` for everyone, as in the reference (auth is per handler there).
 */
const requireCaller: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (isAnonymous(c) || !routeMatched(c)) return next();
  const caller = await authenticate(
    c.get("config"),
    { authorization: c.req.header("authorization"), clientIp: clientIp(c.req.raw) },
    c.env.DB,
  );
  c.set("caller", caller);
  await next();
};

/** The token name of audited calls refused for their token (none, unknown, expired), as ReductStore names them. */
export const UNAUTHORIZED_AUDIT_TOKEN = "unauthorized";

/**
 * Counts each call of a route in this isolate's audit sums, a call refused with 401 under
 * UNAUTHORIZED_AUDIT_TOKEN; the flush, when due, runs after the response (waitUntil), so no
 * request waits for or pays an audit write. It wraps authentication so that it sees the 401s.
 */
const auditCall: MiddlewareHandler<AppEnv> = async (c, next) => {
  const startedAt = performance.now();
  await next();
  const caller = c.get("caller");
  // A store with no authentication configured refuses everything: nothing of that is worth keeping.
  const refused =
    !caller && c.res.status === 401 && c.get("config")?.auth.kind !== "unconfigured" && routeMatched(c) && !isAnonymous(c);
  if (!caller && !refused) return;
  const flush = auditAggregator.record(
    c.env,
    c.get("config"),
    {
      tokenName: caller ? caller.token.name : UNAUTHORIZED_AUDIT_TOKEN,
      method: c.req.method,
      path: decodedPath(c.req.path),
      clientIp: clientIp(c.req.raw) ?? null,
      durationMs: performance.now() - startedAt,
      status: c.res.status,
      message: c.res.headers.get("x-reduct-error") ?? "",
    },
    Date.now(),
  );
  if (flush) waitUntil(c, flush);
};

function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function waitUntil(c: Context<AppEnv>, work: Promise<void>): void {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    // No execution context (an app called directly): the work still runs, unawaited.
  }
}

/**
 * Provisioned buckets and tokens exist, as the environment says, before an isolate's first API
 * answer: before authentication, so a provisioned token works from the first request.
 */
const provisionFromEnv: MiddlewareHandler<AppEnv> = async (c, next) => {
  const config = c.get("config");
  if (config && !ANONYMOUS_PATHS.has(c.req.path) && routeMatched(c)) {
    await Promise.all([provisionBucketsOnce(c.env, config), provisionTokensOnce(c.env, config)]);
  }
  await next();
};

/** The app-wide middleware; any other matched handler is a route (unknown ones count as routes). */
const MIDDLEWARE: ReadonlySet<unknown> = new Set([defaultHeaders, cors, loadConfig, provisionFromEnv, requireCaller, auditCall]);

function routeMatched(c: Context<AppEnv>): boolean {
  return matchedRoutes(c).some((route) => !MIDDLEWARE.has(route.handler));
}

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ getPath: (request, options) => routePath(request, options?.env) });
  app.use("*", defaultHeaders);
  app.use("*", cors);
  app.use("*", loadConfig);
  app.use("/api/v1/*", provisionFromEnv);
  app.use("/api/v1/*", auditCall);
  app.use("/api/v1/*", requireCaller);

  app.route("/api/v1", serverRoutes);
  app.route("/api/v1/b", bucketRoutes);
  app.route("/api/v1/b", batchV1Routes);
  app.route("/api/v1/b", queryRoutes);
  app.route("/api/v1/b", entryRoutes);
  app.route("/api/v1/io", ioReadRoutes);
  app.route("/api/v1/io", ioWriteRoutes);
  app.route("/api/v1/tokens", tokenRoutes);
  app.route("/api/v1/links", linkRoutes);
  app.route("/api/v1/lifecycles", lifecycleRoutes);
  app.route("/api/v1/replications", replicationRoutes);
  app.route("/", consoleRoutes);

  app.notFound((c) => errorResponse(notFound("Not found"), c.req.method));
  app.onError((error, c) => errorResponse(toHttpError(error), c.req.method));
  return app;
}
