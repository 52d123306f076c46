/**
 * Replication settings: the request JSON, its defaults and the checks ReductStore 1.21 makes before
 * it stores a replication, with its wording. The API and provisioning share these rules.
 */
import { z } from "zod";
import { parseCondition } from "../bucket/query-batch";
import { notFound, unprocessable } from "../errors";
import type { ReplicationSettings } from "../model/replications";
import { bucketStub } from "./bucket-stub";
import type { Bindings } from "./context";
import { BUCKET_NAME_PATTERN, MAX_NAME_LENGTH } from "./schemas";

export const replicationMode = z.enum(["enabled", "paused", "disabled"]);
export const replicationCompression = z.enum(["none", "gzip", "zstd"]);

const settingsBody = z.object({
  src_bucket: z.string(),
  // Both go into the target's URL path: `..`, `?` or `#` would send the records elsewhere.
  dst_bucket: z.string().regex(BUCKET_NAME_PATTERN, "must be a bucket name (letters, digits, '-' and '_')"),
  dst_host: z.string(),
  // Sent as `Authorization: Bearer <token>`: a control character would fail every attempt.
  dst_token: z
    .string()
    .regex(/^[^\x00-\x08\x0a-\x1f\x7f]*$/, "must not contain control characters (it is sent in a header)")
    .nullish(),
  entries: z.array(z.string()).default([]),
  dst_prefix: z
    .string()
    .regex(/^[A-Za-z0-9_/-]*$/, "must be entry name characters (letters, digits, '-', '_' and '/')")
    .default(""),
  when: z.unknown().optional(),
  mode: replicationMode.default("enabled"),
  compression: replicationCompression.default("none"),
});

/** The body's settings with its defaults; 422 `Invalid JSON: …` when its shape is wrong. */
export function parseReplicationBody(value: unknown): ReplicationSettings {
  const parsed = settingsBody.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join(".") ?? "";
    throw unprocessable(`Invalid JSON: ${path ? `${path}: ` : ""}${issue?.message ?? "invalid value"}`);
  }
  const { dst_token, when, ...rest } = parsed.data;
  const settings: ReplicationSettings = { ...rest };
  if (dst_token !== undefined && dst_token !== null) settings.dst_token = dst_token;
  if (when !== undefined && when !== null) settings.when = when;
  return settings;
}

/** ReductStore refuses a destination host its URL parser rejects (a bare name, an empty string). */
export function checkDestinationHost(settings: ReplicationSettings): URL {
  try {
    return new URL(settings.dst_host);
  } catch {
    throw unprocessable(`Invalid destination host '${settings.dst_host}'`);
  }
}

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };
const LOCAL_HOSTS: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "0.0.0.0"]);

function portOf(url: URL): number | undefined {
  return url.port === "" ? DEFAULT_PORTS[url.protocol] : Number(url.port);
}

/**
 * A replication into its own source bucket of this very server would feed itself. ReductStore
 * compares a local host name and its listening port; the Worker also knows the host it was called by.
 */
export function checkNotItself(settings: ReplicationSettings, destination: URL, self: URL | undefined): void {
  if (settings.src_bucket !== settings.dst_bucket || self === undefined) return;
  const sameHost = LOCAL_HOSTS.has(destination.hostname) || destination.hostname === self.hostname;
  if (sameHost && portOf(destination) === portOf(self)) {
    throw unprocessable("Source and destination buckets must be different");
  }
}

export function checkCondition(settings: ReplicationSettings): void {
  if (settings.when === undefined) return;
  const condition = parseCondition(settings.when);
  if (condition !== null && "ok" in condition && !condition.ok) {
    throw unprocessable(`Invalid replication condition: ${condition.error.message}`);
  }
}

async function sourceExists(env: Bindings, bucket: string): Promise<boolean> {
  if (bucket.length > MAX_NAME_LENGTH) return false;
  return (await bucketStub(env, bucket).headBucket()).ok;
}

/**
 * ReductStore's checks of a create or update, in its order: the destination URL, the source
 * bucket, not into itself, the condition. `self` is the URL this server was called by.
 */
export async function validateReplication(
  env: Bindings,
  name: string,
  settings: ReplicationSettings,
  self: URL | undefined,
): Promise<void> {
  const destination = checkDestinationHost(settings);
  if (!(await sourceExists(env, settings.src_bucket))) {
    throw notFound(`Source bucket '${settings.src_bucket}' for replication '${name}' does not exist`);
  }
  checkNotItself(settings, destination, self);
  checkCondition(settings);
}

/** The settings as the API shows them: every field, in ReductStore's order, the token never. */
export function shownSettings(settings: ReplicationSettings) {
  return {
    src_bucket: settings.src_bucket,
    dst_bucket: settings.dst_bucket,
    dst_host: settings.dst_host,
    dst_token: null,
    entries: settings.entries,
    dst_prefix: settings.dst_prefix,
    when: settings.when ?? null,
    mode: settings.mode,
    compression: settings.compression,
  };
}
