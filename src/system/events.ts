/**
 * The server's own records in the `$system` bucket: one JSON record per event, labelled with its
 * `status`. The bucket is created (provisioned, FIFO-limited) at the first event; clients may read
 * it with full access or the exact `$system` permission, and never write it.
 * Call it off the request path (ctx.waitUntil, an alarm): it does one RPC to the `$system` object.
 */
import type { Bindings } from "../api/context";
import type { BucketObject } from "../bucket/bucket-object";
import type { BucketSettings, Config } from "../config";

export const SYSTEM_BUCKET = "$system";
export type SystemEventStatus = "ok" | "warning" | "error";

/** Attempts with a later timestamp when another isolate took the same microsecond. */
const TIMESTAMP_RETRIES = 3;
let lastTimestampUs = 0;

/** A unique, increasing microsecond timestamp within this isolate. */
function nextTimestampUs(): number {
  lastTimestampUs = Math.max(Date.now() * 1000, lastTimestampUs + 1);
  return lastTimestampUs;
}

/** An instance or token name as one valid entry-name segment (letters, digits, `-`, `_`). */
export function entrySegment(name: string): string {
  const segment = name.replace(/[^A-Za-z0-9_-]/g, "_");
  return segment === "" ? "_" : segment;
}

function systemStub(env: Bindings): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(SYSTEM_BUCKET) as DurableObjectStub<BucketObject>;
}

/** The settings `$system` is created with. */
export function systemBucketSettings(config: Config): BucketSettings {
  return { ...config.bucketDefaults, quota_type: "FIFO", quota_size: config.systemEvents.quotaBytes };
}

/** Creates `$system` if it is missing; an existing one is left as it is. */
export async function ensureSystemBucket(env: Bindings, config: Config): Promise<void> {
  const outcome = await systemStub(env).createBucket(SYSTEM_BUCKET, systemBucketSettings(config), true);
  if (!outcome.ok && outcome.error.status !== 409) {
    throw new Error(`creating ${SYSTEM_BUCKET} failed: ${outcome.error.message}`);
  }
}

/**
 * Writes one event `{timestamp, instance, status, message, ...payload}` into `entry` of `$system`
 * (e.g. `lifecycle/<instance>/<policy>`). Does nothing when RS_SYSTEM_EVENTS_ENABLED is false.
 */
export async function recordSystemEvent(
  env: Bindings,
  config: Config,
  entry: string,
  status: SystemEventStatus,
  message: string,
  payload: Record<string, unknown> = {},
): Promise<void> {
  if (!config.systemEvents.enabled) return;
  const stub = systemStub(env);
  for (let attempt = 0; attempt <= TIMESTAMP_RETRIES; attempt++) {
    const ts = nextTimestampUs();
    const body = JSON.stringify({ timestamp: ts, instance: config.instanceName, status, message, ...payload });
    const bytes = new TextEncoder().encode(body);
    const item = {
      meta: { entry, ts, size: bytes.byteLength, contentType: "application/json", labels: { status } },
      payload: bytes.buffer as ArrayBuffer,
    };
    const written = await stub.writeRecords([item]);
    if (!written.ok) {
      if (written.error.status !== 404) throw new Error(`writing a ${SYSTEM_BUCKET} event failed: ${written.error.message}`);
      await ensureSystemBucket(env, config);
      continue;
    }
    const outcome = written.outcomes[0];
    if (outcome?.ok) return;
    if (outcome?.error.status !== 409) {
      throw new Error(`writing a ${SYSTEM_BUCKET} event failed: ${outcome?.error.message ?? "no outcome"}`);
    }
  }
  throw new Error(`writing a ${SYSTEM_BUCKET} event failed: no free timestamp after ${TIMESTAMP_RETRIES} retries`);
}
