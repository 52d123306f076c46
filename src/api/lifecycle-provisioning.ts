/**
 * Lifecycle policies from `RS_LIFECYCLE_<ID>_{NAME,BUCKET,TYPE,ENTRIES,OLDER_THAN,INTERVAL,
 * PROCESSING_INTERVAL,WHEN,MODE}`. They are written to D1 (is_provisioned) before the lifecycle API
 * answers, so the API never shows a provisioned policy other than as the variables say. A policy whose
 * variables are invalid is skipped with an error log, as ReductStore does at start.
 */
import { upsertProvisionedLifecycle } from "../d1/lifecycles";
import { HttpError } from "../errors";
import { type LifecycleSettings, parseLifecycleSettings } from "../bucket/lifecycle-settings";

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

export async function provisionLifecycles(db: D1Database, env: Record<string, unknown>): Promise<void> {
  for (const { name, settings } of provisionedLifecycles(env)) {
    await upsertProvisionedLifecycle(db, { name, bucket: settings.bucket, settings: JSON.stringify(settings) });
  }
}
