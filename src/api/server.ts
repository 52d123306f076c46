/**
 * Server API: liveness, readiness, server info, bucket list and the caller's own token.
 * /info and /list are each one D1 query over the bucket registry, never a fan-out to bucket objects.
 */
import { Hono } from "hono";
import { canRead } from "../auth/policy";
import { listRegistryRows, pingDatabase, registryUsage } from "../d1/buckets";
import { unavailable } from "../errors";
import { SERVER_VERSION } from "../version";
import type { AppEnv } from "./context";

/** Answer for /ready when D1 does not answer within this time. */
const READY_TIMEOUT_MS = 5_000;

/** When this isolate served its first request: the fallback when no version metadata is bound. */
let firstRequestAtMs: number | undefined;

/**
 * Seconds since the running Worker version started serving. Isolates come and go on Workers, so
 * the start is the version's creation time (`wrangler deploy`, or the start of `npm start`), the
 * same for every isolate and location; a clock from a timestamp in the future counts as 0.
 */
export function uptimeSeconds(version: WorkerVersionMetadata | undefined, nowMs = Date.now()): number {
  firstRequestAtMs ??= nowMs;
  const versionStartMs = version ? Date.parse(version.timestamp) : Number.NaN;
  const startedAtMs = Number.isFinite(versionStartMs) ? versionStartMs : firstRequestAtMs;
  return Math.max(0, Math.floor((nowMs - startedAtMs) / 1000));
}

export const serverRoutes = new Hono<AppEnv>();

// GET|HEAD /api/v1/alive — anonymous, touches no storage.
serverRoutes.get("/alive", (c) => c.body(null, 200));

// GET|HEAD /api/v1/ready — anonymous; checks that D1 answers.
serverRoutes.get("/ready", async (c) => {
  uptimeSeconds(c.env.CF_VERSION_METADATA);
  try {
    let timer: number | undefined;
    await Promise.race([
      pingDatabase(c.env.DB),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("timeout")), READY_TIMEOUT_MS);
      }),
    ]).finally(() => timer !== undefined && clearTimeout(timer));
  } catch {
    throw unavailable("The server is starting up, please try again later");
  }
  return c.body(null, 200);
});

// GET /api/v1/info
serverRoutes.get("/info", async (c) => {
  const config = c.get("config");
  const usage = await registryUsage(c.env.DB);
  return c.json({
    version: SERVER_VERSION,
    instance_name: config.instanceName,
    instance_role: config.instanceRole,
    bucket_count: usage.bucket_count,
    usage: usage.usage,
    uptime: uptimeSeconds(c.env.CF_VERSION_METADATA),
    oldest_record: usage.oldest_record,
    latest_record: usage.latest_record,
    defaults: { bucket: config.bucketDefaults },
    license: null,
  });
});

// GET /api/v1/list — only the buckets the caller may read, in byte order of name (SQLite BINARY).
serverRoutes.get("/list", async (c) => {
  const caller = c.get("caller");
  const results = await listRegistryRows(c.env.DB);
  const buckets = results
    .filter((row) => canRead(caller, row.name))
    .map((row) => ({
      name: row.name,
      entry_count: row.entry_count,
      size: row.size,
      oldest_record: row.oldest_record,
      latest_record: row.latest_record,
      is_provisioned: row.is_provisioned === 1,
      status: row.status,
    }));
  return c.json({ buckets });
});

// GET /api/v1/me
serverRoutes.get("/me", (c) => c.json(c.get("caller").token));
