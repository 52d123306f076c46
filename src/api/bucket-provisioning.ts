/**
 * Buckets from `RS_BUCKET_<ID>_{NAME,QUOTA_TYPE,QUOTA_SIZE,MAX_BLOCK_SIZE,MAX_BLOCK_RECORDS}`, as
 * ReductStore provisions them at start: a missing bucket is created, an existing one (also one made
 * through the API) takes the environment's settings; both are marked provisioned, so the API's
 * changes, renames and deletes answer 409. Sizes take units (`64MB`). A group with an invalid value
 * is skipped with an error log. A bucket whose group is gone loses its mark. Workers have no start:
 * each isolate applies the groups once, before its first API request is served, which is idempotent.
 */
import type { BucketSettings, Config } from "../config";
import { parseByteSize } from "../config";
import { provisionedBucketNames } from "../d1/buckets";
import { HttpError, unprocessable, unwrap } from "../errors";
import { bucketStub } from "./bucket-stub";
import type { Bindings } from "./context";
import { syncBucketLifecycles } from "./lifecycle-provisioning";
import { syncBucketReplications } from "./replication-provisioning";
import { assertBucketName, bucketSettingsPatch, parseOr422 } from "./schemas";

export interface ProvisionedBucket {
  name: string;
  settings: BucketSettings;
}

function size(variable: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const bytes = parseByteSize(text);
  if (bytes === undefined) throw unprocessable(`Invalid value of ${variable}: '${text}' is not a size`);
  return bytes;
}

/**
 * Every valid `RS_BUCKET_<ID>_NAME` group of the environment, by variable name order; of groups
 * naming one bucket the last by variable name is used, with an error line.
 */
export function provisionedBuckets(env: Record<string, unknown>, defaults: BucketSettings): ProvisionedBucket[] {
  const found: ProvisionedBucket[] = [];
  const groupOf = new Map<string, string>();
  for (const key of Object.keys(env).sort()) {
    const match = /^RS_BUCKET_(.+)_NAME$/.exec(key);
    const name = env[key];
    if (!match || typeof name !== "string" || name === "") continue;
    const variable = (field: string) => `RS_BUCKET_${match[1]}_${field}`;
    const read = (field: string): string | undefined => {
      const value = env[variable(field)];
      return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
    };
    try {
      assertBucketName(name);
      const records = read("MAX_BLOCK_RECORDS");
      if (records !== undefined && !/^\d+$/.test(records)) {
        throw unprocessable(`Invalid value of ${variable("MAX_BLOCK_RECORDS")}: '${records}' is not a number`);
      }
      const patch = parseOr422(
        bucketSettingsPatch,
        {
          quota_type: read("QUOTA_TYPE")?.toUpperCase(),
          quota_size: size(variable("QUOTA_SIZE"), read("QUOTA_SIZE")),
          max_block_size: size(variable("MAX_BLOCK_SIZE"), read("MAX_BLOCK_SIZE")),
          max_block_records: records === undefined ? undefined : Number(records),
        },
        "Invalid settings: ",
      );
      const given = Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== null && value !== undefined));
      const group = `RS_BUCKET_${match[1]}_*`;
      const earlier = groupOf.get(name);
      if (earlier !== undefined) {
        console.error(
          JSON.stringify({ level: "ERROR", msg: `Bucket '${name}' is provisioned by ${earlier} and ${group}: ${group} is used` }),
        );
        found.splice(
          found.findIndex((bucket) => bucket.name === name),
          1,
        );
      }
      groupOf.set(name, group);
      found.push({ name, settings: { ...defaults, ...given } });
    } catch (error) {
      const reason = error instanceof HttpError ? error.message : String(error);
      console.error(JSON.stringify({ level: "ERROR", msg: `Failed to provision bucket '${name}': ${reason}` }));
    }
  }
  return found;
}

/** Provisioning runs of this isolate, by the raw `RS_BUCKET_*` variables they applied. */
const applied = new Map<string, Promise<void>>();

function rawGroups(env: Record<string, unknown>): string {
  const entries = Object.entries(env).filter(([key]) => key.startsWith("RS_BUCKET_"));
  return entries.length === 0 ? "" : JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * Applies the environment's bucket groups once per isolate and variable set (again after a
 * failure); later requests only compare the raw variables, so an invalid group is logged once.
 */
export function provisionBucketsOnce(env: Bindings, config: Config): Promise<void> {
  const variables = env as unknown as Record<string, unknown>;
  const key = rawGroups(variables);
  let run = applied.get(key);
  if (!run) {
    const buckets = provisionedBuckets(variables, config.bucketDefaults);
    run = (async () => {
      for (const { name, settings } of buckets) {
        unwrap(await bucketStub(env, name).provisionBucket(name, settings));
        // As on create: policies kept for this name apply to the bucket that now has it.
        await syncBucketLifecycles(env, name);
        await syncBucketReplications(env, name);
      }
      // Also when no group is left: a bucket whose group is gone is no longer provisioned, as
      // after a ReductStore restart. A group skipped as invalid keeps its bucket's mark.
      const named = new Set(
        Object.entries(variables)
          .filter(([variable, value]) => /^RS_BUCKET_.+_NAME$/.test(variable) && typeof value === "string")
          .map(([, value]) => value as string),
      );
      for (const name of await provisionedBucketNames(env.DB)) {
        // A bucket gone meanwhile has no mark to lose.
        if (!named.has(name)) await bucketStub(env, name).unprovisionBucket();
      }
    })().catch((error: unknown) => {
      applied.delete(key);
      console.error(JSON.stringify({ level: "ERROR", msg: `Failed to provision buckets: ${String(error)}` }));
    });
    applied.set(key, run);
  }
  return run;
}
