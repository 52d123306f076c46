/**
 * Replications from `RS_REPLICATION_<ID>_{NAME,SRC_BUCKET,DST_BUCKET,DST_HOST,DST_TOKEN,ENTRIES,
 * DST_PREFIX,EACH_N,EACH_S,WHEN,MODE,COMPRESSION}`, read as ReductStore reads them at start: a group
 * without a source bucket, destination bucket or host, with a host that is no URL, a `when` that is
 * no JSON, or an unknown mode or compression (both case-insensitive) is dropped with its error line;
 * settings that fail the API's checks are skipped with theirs. ENTRIES is split at commas as given.
 * EACH_S becomes `$each_t` in the condition, as ReductStore migrates it; EACH_N becomes `$each_n`
 * (the settings here have no each_n field; the condition does the same). A group without MODE keeps
 * the mode the replication has; without DST_TOKEN it keeps its token (ReductStore's update does).
 * Only the current variables make a replication provisioned. Workers have no start, so each isolate
 * applies (and logs) a set of variables once, before its first replication API answer.
 */

import {
  getReplicationRow,
  releaseProvisionedReplications,
  replicationRowsOfBucket,
  upsertProvisionedReplication,
} from "../d1/replications";
import { HttpError } from "../errors";
import type { ReplicationCompression, ReplicationMode, ReplicationSettings } from "../model/replications";
import { bucketStub } from "./bucket-stub";
import type { Bindings } from "./context";
import { parseReplicationBody, validateReplication } from "./replication-settings";

export interface ProvisionedReplication {
  name: string;
  settings: ReplicationSettings;
  /** Whether MODE was set; without it the replication keeps the mode it has. */
  modeGiven: boolean;
}

const MODES: ReadonlySet<string> = new Set(["enabled", "paused", "disabled"]);
const COMPRESSIONS: ReadonlySet<string> = new Set(["none", "gzip", "zstd"]);

function log(level: "ERROR" | "WARN", msg: string): void {
  console.error(JSON.stringify({ level, msg }));
}

/** Rust's URL parser names a value without a scheme so; anything else it rejects is "invalid". */
function urlError(text: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text) ? "invalid URL" : "relative URL without a base";
}

/** Adds a filter operator to the condition, as ReductStore injects migrated options. */
function withOperator(when: unknown, operator: string, value: unknown): unknown {
  if (when === undefined) return { [operator]: value };
  if (typeof when === "object" && when !== null && !Array.isArray(when)) return { ...when, [operator]: value };
  return when;
}

/** One group's replication, or the line it is dropped with. */
function readGroup(
  id: string,
  name: string,
  read: (field: string) => string | undefined,
  has: (prefix: string) => boolean,
): ProvisionedReplication | string {
  const srcBucket = read("SRC_BUCKET");
  if (srcBucket === undefined) return `Replication '${name}' has no source bucket. Drop it.`;
  const dstBucket = read("DST_BUCKET");
  if (dstBucket === undefined) return `Replication '${name}' has no destination bucket. Drop it.`;
  const host = read("DST_HOST");
  if (host === undefined) return `Replication '${name}' has no remote host. Drop it.`;
  let dstHost: string;
  try {
    dstHost = new URL(host).href;
  } catch {
    return `Replication '${name}' has invalid remote host: ${urlError(host)}. Drop it.`;
  }
  if (has("INCLUDE_") || has("EXCLUDE_")) {
    return `Replication '${name}' uses RS_REPLICATION_${id}_INCLUDE_* or _EXCLUDE_*, which are not supported: use RS_REPLICATION_${id}_WHEN. Drop it.`;
  }
  let when: unknown;
  const whenText = read("WHEN");
  if (whenText !== undefined) {
    try {
      when = JSON.parse(whenText);
    } catch (error) {
      return `Replication '${name}' has invalid when condition: ${(error as Error).message}. Drop it.`;
    }
  }
  const eachN = read("EACH_N");
  if (eachN !== undefined) {
    if (!/^\d+$/.test(eachN) || Number(eachN) < 1) return `Replication '${name}' has invalid each n '${eachN}'. Drop it.`;
    when = withOperator(when, "$each_n", Number(eachN));
  }
  const eachS = read("EACH_S");
  if (eachS !== undefined) {
    const seconds = Number(eachS);
    if (!Number.isFinite(seconds) || eachS.trim() === "") return `Replication '${name}' has invalid each s '${eachS}'. Drop it.`;
    log(
      "WARN",
      `The 'RS_REPLICATION_${id}_EACH_S' environment variable is deprecated and will be migrated to 'when' condition using $each_t operator. Value: ${seconds}`,
    );
    when = withOperator(when, "$each_t", seconds);
  }
  const compression = read("COMPRESSION");
  if (compression !== undefined && !COMPRESSIONS.has(compression.toLowerCase())) {
    return `Replication '${name}' has invalid compression '${compression}'. Drop it.`;
  }
  const mode = read("MODE");
  if (mode !== undefined && !MODES.has(mode.toLowerCase())) return `Replication '${name}' has invalid mode '${mode}'. Drop it.`;

  const settings: ReplicationSettings = {
    src_bucket: srcBucket,
    dst_bucket: dstBucket,
    dst_host: dstHost,
    entries: read("ENTRIES")?.split(",") ?? [],
    dst_prefix: read("DST_PREFIX") ?? "",
    mode: (mode?.toLowerCase() ?? "enabled") as ReplicationMode,
    compression: (compression?.toLowerCase() ?? "none") as ReplicationCompression,
  };
  const token = read("DST_TOKEN");
  if (token !== undefined) settings.dst_token = token;
  if (when !== undefined) settings.when = when;
  // The API's checks of what goes into the target's URL and headers apply here too.
  try {
    parseReplicationBody(settings);
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return `Failed to provision replication '${name}': ${error.message}. Drop it.`;
  }
  return { name, settings, modeGiven: mode !== undefined };
}

/**
 * Every valid `RS_REPLICATION_<ID>_NAME` group of the environment, one per name: of groups sharing
 * a name the last by variable name is used (ReductStore keeps one of them, in no stated order).
 */
export function provisionedReplications(env: Record<string, unknown>): ProvisionedReplication[] {
  const byName = new Map<string, { group: string; replication: ProvisionedReplication }>();
  const keys = Object.keys(env).sort();
  for (const key of keys) {
    const match = /^RS_REPLICATION_(.+)_NAME$/.exec(key);
    const name = env[key];
    if (!match || typeof name !== "string" || name === "") continue;
    const id = match[1] as string;
    const group = `RS_REPLICATION_${id}_`;
    const found = readGroup(
      id,
      name,
      (field) => {
        const value = env[`${group}${field}`];
        return typeof value === "string" && value !== "" ? value : undefined;
      },
      (prefix) => keys.some((other) => other.startsWith(`${group}${prefix}`) && env[other] !== ""),
    );
    if (typeof found === "string") {
      log("ERROR", found);
      continue;
    }
    const earlier = byName.get(name);
    if (earlier) log("ERROR", `Replication '${name}' is provisioned by ${earlier.group}* and ${group}*: ${group}* is used`);
    byName.set(name, { group, replication: found });
  }
  return [...byName.values()].map((entry) => entry.replication);
}

/** Hands a source bucket's object every replication D1 holds with that bucket as source. */
export async function syncBucketReplications(env: Bindings, bucket: string): Promise<void> {
  const rows = await replicationRowsOfBucket(env.DB, bucket);
  // A bucket that is gone answers with an error: nothing runs there until one has the name again.
  await bucketStub(env, bucket).setReplications(
    rows.map((row) => ({ name: row.name, settings: JSON.parse(row.settings) as ReplicationSettings })),
  );
}

/** Writes the provisioned replications that differ from D1 (or are missing) and hands them to their buckets. */
async function applyReplications(env: Bindings, replications: ProvisionedReplication[], self: URL | undefined): Promise<void> {
  const applied: string[] = [];
  for (const { name, settings, modeGiven } of replications) {
    const current = await getReplicationRow(env.DB, name);
    const before = current ? (JSON.parse(current.settings) as ReplicationSettings) : undefined;
    const wanted: ReplicationSettings = { ...settings };
    if (!modeGiven && before) wanted.mode = before.mode;
    if (wanted.dst_token === undefined && before?.dst_token !== undefined) wanted.dst_token = before.dst_token;
    try {
      await validateReplication(env, name, wanted, self);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      log("ERROR", `Failed to provision replication '${name}': ${error.message}`);
      continue;
    }
    applied.push(name);
    const json = JSON.stringify(wanted);
    if (current?.is_provisioned === 1 && current.settings === json) continue;
    await upsertProvisionedReplication(env.DB, { name, src_bucket: wanted.src_bucket, settings: json });
    await syncBucketReplications(env, wanted.src_bucket);
    if (current && current.src_bucket !== wanted.src_bucket) await syncBucketReplications(env, current.src_bucket);
  }
  await releaseProvisionedReplications(env.DB, applied);
}

/** Provisioning runs of this isolate, by the raw `RS_REPLICATION_*` variables they applied. */
const appliedRuns = new Map<string, Promise<void>>();

/**
 * Applies the environment's replication groups once per isolate and variable set (again after a
 * failure): later requests find the run, so nothing is rewritten or logged again.
 */
export function provisionReplications(env: Bindings, self: URL | undefined): Promise<void> {
  const variables = env as unknown as Record<string, unknown>;
  const key = JSON.stringify(
    Object.entries(variables)
      .filter(([name]) => name.startsWith("RS_REPLICATION_"))
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  let run = appliedRuns.get(key);
  if (!run) {
    const replications = provisionedReplications(variables);
    run = applyReplications(env, replications, self).catch((error: unknown) => {
      appliedRuns.delete(key);
      throw error;
    });
    appliedRuns.set(key, run);
  }
  return run;
}
