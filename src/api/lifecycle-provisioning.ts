/**
 * Lifecycle policies from `RS_LIFECYCLE_<ID>_{NAME,BUCKET,TYPE,ENTRIES,OLDER_THAN,INTERVAL,
 * PROCESSING_INTERVAL,WHEN,MODE}`. They are written to D1 (is_provisioned) before the lifecycle API
 * answers, so the API never shows a provisioned policy other than as the variables say. A policy whose
 * variables are invalid is skipped with an error log, as ReductStore does at start.
 */

import { type LifecycleSettings, parseLifecycleSettings } from "../bucket/lifecycle-settings";
import { getLifecycleRow, lifecycleRowsOfBucket, upsertProvisionedLifecycle } from "../d1/lifecycles";
import { HttpError } from "../errors";
import { bucketStub } from "./bucket-stub";
import type { Bindings } from "./context";

export interface ProvisionedLifecycle {
  name: string;
  settings: LifecycleSettings;
}

/** Reads every `RS_LIFECYCLE_<ID>_NAME` group of the environment; invalid groups are left out. */
export function provisionedLifecycles(env: Record<string, unknown>): ProvisionedLifecycle[] {
  const found: ProvisionedLifecycle[] = [];
  for (const key of Object.keys(env).sort()) {
    const match = /^RS_LIFECYCLE_(.+)_NAME$/.exec(key);
    const name = env[key];
    if (!match || typeof name !== "string" || name === "") continue;
    const read = (field: string): string | undefined => {
      const value = env[`RS_LIFECYCLE_${match[1]}_${field}`];
      return typeof value === "string" && value !== "" ? value : undefined;
    };
    try {
      const when = read("WHEN");
      const settings = parseLifecycleSettings({
        type: read("TYPE") ?? "delete",
        bucket: read("BUCKET") ?? "",
        entries: (read("ENTRIES") ?? "")
          .split(",")
          .map((entry) => entry.trim())
          .filter((entry) => entry !== ""),
        older_than: read("OLDER_THAN"),
        interval: read("INTERVAL"),
        processing_interval: read("PROCESSING_INTERVAL"),
        when: when === undefined ? undefined : JSON.parse(when),
        mode: read("MODE"),
      });
      found.push({ name, settings });
    } catch (error) {
      const reason = error instanceof HttpError || error instanceof SyntaxError ? error.message : String(error);
      console.error(JSON.stringify({ level: "ERROR", msg: `Failed to provision lifecycle '${name}': ${reason}` }));
    }
  }
  return found;
}

/** Hands a bucket's object the policies of its bucket, so its alarm runs what D1 says. */
export async function syncBucketLifecycles(env: Bindings, bucket: string): Promise<void> {
  const rows = await lifecycleRowsOfBucket(env.DB, bucket);
  await bucketStub(env, bucket).setLifecycles(
    rows.map((row) => ({ name: row.name, settings: JSON.parse(row.settings) as LifecycleSettings })),
  );
}

/** Writes the provisioned policies that differ from D1 (or are missing) and hands them to their buckets. */
export async function provisionLifecycles(env: Bindings): Promise<void> {
  for (const { name, settings } of provisionedLifecycles(env as unknown as Record<string, unknown>)) {
    const json = JSON.stringify(settings);
    const current = await getLifecycleRow(env.DB, name);
    if (current?.is_provisioned === 1 && current.settings === json) continue;
    await upsertProvisionedLifecycle(env.DB, { name, bucket: settings.bucket, settings: json });
    await syncBucketLifecycles(env, settings.bucket);
    if (current && current.bucket !== settings.bucket) await syncBucketLifecycles(env, current.bucket);
  }
}
