/**
 * Lifecycle policies from `RS_LIFECYCLE_<ID>_{NAME,BUCKET,TYPE,ENTRIES,OLDER_THAN,INTERVAL,
 * PROCESSING_INTERVAL,WHEN,MODE}`, read as ReductStore reads them at start: a group without a bucket
 * or older_than, or with an unknown type or mode (both case-insensitive) or a `when` that is no JSON,
 * is dropped with its error line; settings that fail the API's checks, or name a bucket that does not
 * exist, are skipped with theirs. A
 * group without MODE keeps the mode the policy already has. Only the current variables make a policy
 * provisioned: one whose group is gone becomes an ordinary policy. Workers have no start, so each
 * isolate applies (and logs) a set of variables once, before its first lifecycle API answer.
 */

import { type LifecycleSettings, parseLifecycleSettings } from "../bucket/lifecycle-settings";
import {
  getLifecycleRow,
  lifecycleRowsOfBucket,
  releaseProvisionedLifecycles,
  upsertProvisionedLifecycle,
} from "../d1/lifecycles";
import { HttpError } from "../errors";
import { bucketStub } from "./bucket-stub";
import type { Bindings } from "./context";

export interface ProvisionedLifecycle {
  name: string;
  settings: LifecycleSettings;
  /** Whether MODE was set; without it the policy keeps the mode it has. */
  modeGiven: boolean;
}

const MODES: ReadonlySet<string> = new Set(["enabled", "disabled", "dry_run"]);

function logError(msg: string): void {
  console.error(JSON.stringify({ level: "ERROR", msg }));
}

/** One group's policy, or the line it is dropped with. */
function readGroup(name: string, read: (field: string) => string | undefined): ProvisionedLifecycle | string {
  const type = read("TYPE");
  if (type !== undefined && type.toLowerCase() !== "delete") return `Lifecycle '${name}' has invalid type '${type}'. Drop it.`;
  const bucket = read("BUCKET");
  if (bucket === undefined) return `Lifecycle '${name}' has no bucket. Drop it.`;
  const olderThan = read("OLDER_THAN");
  if (olderThan === undefined) return `Lifecycle '${name}' has no older than. Drop it.`;
  const whenText = read("WHEN");
  let when: unknown;
  if (whenText !== undefined) {
    try {
      when = JSON.parse(whenText);
    } catch (error) {
      return `Lifecycle '${name}' has invalid when condition: ${(error as Error).message}. Drop it.`;
    }
  }
  const mode = read("MODE");
  if (mode !== undefined && !MODES.has(mode.toLowerCase())) return `Lifecycle '${name}' has invalid mode '${mode}'. Drop it.`;
  try {
    const settings = parseLifecycleSettings({
      type: "delete",
      bucket,
      entries: (read("ENTRIES") ?? "")
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ""),
      older_than: olderThan,
      interval: read("INTERVAL"),
      processing_interval: read("PROCESSING_INTERVAL"),
      when,
      mode: mode?.toLowerCase(),
    });
    return { name, settings, modeGiven: mode !== undefined };
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return `Failed to provision lifecycle '${name}': ${error.message}`;
  }
}

/**
 * Every valid `RS_LIFECYCLE_<ID>_NAME` group of the environment, one per name: of groups sharing a
 * name the last by variable name is used (ReductStore keeps one of them, in no stated order).
 */
export function provisionedLifecycles(env: Record<string, unknown>): ProvisionedLifecycle[] {
  const byName = new Map<string, { group: string; lifecycle: ProvisionedLifecycle }>();
  for (const key of Object.keys(env).sort()) {
    const match = /^RS_LIFECYCLE_(.+)_NAME$/.exec(key);
    const name = env[key];
    if (!match || typeof name !== "string" || name === "") continue;
    const group = `RS_LIFECYCLE_${match[1]}_`;
    const found = readGroup(name, (field) => {
      const value = env[`${group}${field}`];
      return typeof value === "string" && value !== "" ? value : undefined;
    });
    if (typeof found === "string") {
      logError(found);
      continue;
    }
    const earlier = byName.get(name);
    if (earlier) logError(`Lifecycle '${name}' is provisioned by ${earlier.group}* and ${group}*: ${group}* is used`);
    byName.set(name, { group, lifecycle: found });
  }
  return [...byName.values()].map((entry) => entry.lifecycle);
}

/** Hands a bucket's object the policies of its bucket, so its alarm runs what D1 says. */
export async function syncBucketLifecycles(env: Bindings, bucket: string): Promise<void> {
  const rows = await lifecycleRowsOfBucket(env.DB, bucket);
  await bucketStub(env, bucket).setLifecycles(
    rows.map((row) => ({ name: row.name, settings: JSON.parse(row.settings) as LifecycleSettings })),
  );
}

/**
 * Writes the provisioned policies that differ from D1 (or are missing) and hands them to their
 * buckets. One whose bucket does not exist is skipped with ReductStore's error line (its create
 * fails with 404 there): it is not created, and one made earlier is no longer provisioned.
 */
async function applyLifecycles(env: Bindings, lifecycles: ProvisionedLifecycle[]): Promise<void> {
  const provisioned: string[] = [];
  for (const { name, settings, modeGiven } of lifecycles) {
    if (!(await bucketStub(env, settings.bucket).headBucket()).ok) {
      logError(`Failed to provision lifecycle '${name}': Bucket '${settings.bucket}' for lifecycle '${name}' does not exist`);
      continue;
    }
    provisioned.push(name);
    const current = await getLifecycleRow(env.DB, name);
    const wanted =
      modeGiven || !current ? settings : { ...settings, mode: (JSON.parse(current.settings) as LifecycleSettings).mode };
    const json = JSON.stringify(wanted);
    if (current?.is_provisioned === 1 && current.settings === json) continue;
    await upsertProvisionedLifecycle(env.DB, { name, bucket: wanted.bucket, settings: json });
    await syncBucketLifecycles(env, wanted.bucket);
    if (current && current.bucket !== wanted.bucket) await syncBucketLifecycles(env, current.bucket);
  }
  await releaseProvisionedLifecycles(env.DB, provisioned);
}

/** Provisioning runs of this isolate, by the raw `RS_LIFECYCLE_*` variables they applied. */
const applied = new Map<string, Promise<void>>();

/**
 * Applies the environment's lifecycle groups once per isolate and variable set (again after a
 * failure): later requests find the run, so nothing is rewritten, re-run or logged again.
 */
export function provisionLifecycles(env: Bindings): Promise<void> {
  const variables = env as unknown as Record<string, unknown>;
  const key = JSON.stringify(
    Object.entries(variables)
      .filter(([name]) => name.startsWith("RS_LIFECYCLE_"))
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  let run = applied.get(key);
  if (!run) {
    const lifecycles = provisionedLifecycles(variables);
    run = applyLifecycles(env, lifecycles).catch((error: unknown) => {
      applied.delete(key);
      throw error;
    });
    applied.set(key, run);
  }
  return run;
}
