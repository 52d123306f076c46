/**
 * Bucket API: create, get, head, update settings, delete, rename. Each handler asks its policy
 * first, validates at the edge and passes plain values to the bucket's object.
 */
import { Hono } from "hono";
import { requireFullAccess, requireRead } from "../auth/policy";
import { forgetBucketInTokens, renameBucketInTokens } from "../bucket/registry";
import { type BucketSettings, LOCATION_HINTS, type LocationHint } from "../config";
import { moveReplicationsToBucket } from "../d1/replications";
import { unprocessable, unsupportedMediaType, unwrap } from "../errors";
import { readJsonBody } from "./body";
import { bucketStub } from "./bucket-stub";
import type { AppEnv } from "./context";
import { syncBucketLifecycles } from "./lifecycle-provisioning";
import { syncBucketReplications } from "./replication-provisioning";
import { assertBucketName, bucketSettingsPatch, parseOr422, renameBody } from "./schemas";

/** Drops null/undefined fields: in requests null means "not given". */
function givenSettings(patch: Record<string, unknown>): Partial<BucketSettings> {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== null && value !== undefined));
}

/**
 * The strict JSON content-type check of bucket rename, as the reference's extractor does it:
 * the media type (parameters ignored, case-insensitive) is `application/json` or `application/*+json`.
 */
export function isJsonContentType(header: string | undefined): boolean {
  const essence = (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return essence === "application/json" || /^application\/[^/\s]+\+json$/.test(essence);
}

/** Our header on bucket create and rename: where the new bucket's object is created. */
export const LOCATION_HEADER = "x-reduct-edge-location";

/** The location asked for, if any; an unknown one is refused before anything is created. */
export function locationHintOf(header: string | undefined): LocationHint | undefined {
  const value = header?.trim().toLowerCase() ?? "";
  if (value === "") return undefined;
  if ((LOCATION_HINTS as readonly string[]).includes(value)) return value as LocationHint;
  throw unprocessable(`Invalid ${LOCATION_HEADER} header '${header}': expected one of ${LOCATION_HINTS.join(", ")}`);
}

export const bucketRoutes = new Hono<AppEnv>();

// POST /api/v1/b/:bucket_name
bucketRoutes.post("/:bucket", async (c) => {
  const name = c.req.param("bucket");
  requireFullAccess(c.get("caller"));
  const hint = locationHintOf(c.req.header(LOCATION_HEADER));
  const patch = parseOr422(bucketSettingsPatch, await readJsonBody(c.req.raw, {}));
  assertBucketName(name);
  const settings: BucketSettings = { ...c.get("config").bucketDefaults, ...givenSettings(patch) };
  unwrap(await bucketStub(c.env, name, hint).createBucket(name, settings));
  // Lifecycle policies of this name (kept when a bucket is deleted, or provisioned before it
  // existed) apply to the new bucket. The create is already durable: a failure here only logs.
  await syncBucketLifecycles(c.env, name).catch((error: unknown) =>
    console.error(JSON.stringify({ level: "ERROR", msg: `lifecycles of '${name}' not handed over: ${String(error)}` })),
  );
  // Replications kept for this name (ReductStore keeps them when their source bucket is deleted).
  await syncBucketReplications(c.env, name).catch((error: unknown) =>
    console.error(JSON.stringify({ level: "ERROR", msg: `replications of '${name}' not handed over: ${String(error)}` })),
  );
  return c.body(null, 200);
});

// GET|HEAD /api/v1/b/:bucket_name — GET needs read access, HEAD any valid token.
bucketRoutes.get("/:bucket", async (c) => {
  const name = c.req.param("bucket");
  const stub = bucketStub(c.env, name);
  if (c.req.method === "HEAD") {
    unwrap(await stub.headBucket());
    return c.body(null, 200);
  }
  requireRead(c.get("caller"), name);
  const { info, settings, entries } = unwrap(await stub.getBucket());
  return c.json({ info, settings, entries });
});

// PUT /api/v1/b/:bucket_name
bucketRoutes.put("/:bucket", async (c) => {
  const name = c.req.param("bucket");
  requireFullAccess(c.get("caller"));
  const patch = parseOr422(bucketSettingsPatch, await readJsonBody(c.req.raw, {}));
  unwrap(await bucketStub(c.env, name).updateBucketSettings(givenSettings(patch)));
  return c.body(null, 200);
});

// DELETE /api/v1/b/:bucket_name — the name is free (and gone from /list and tokens) on return.
bucketRoutes.delete("/:bucket", async (c) => {
  const name = c.req.param("bucket");
  requireFullAccess(c.get("caller"));
  unwrap(await bucketStub(c.env, name).deleteBucket());
  await forgetBucketInTokens(c.env.DB, name);
  return c.body(null, 200);
});

// PUT /api/v1/b/:bucket_name/rename
bucketRoutes.put("/:bucket/rename", async (c) => {
  const name = c.req.param("bucket");
  requireFullAccess(c.get("caller"));
  if (!isJsonContentType(c.req.header("content-type"))) {
    throw unsupportedMediaType("Expected request with `Content-Type: application/json`");
  }
  const hint = locationHintOf(c.req.header(LOCATION_HEADER));
  const { new_name: newName } = parseOr422(renameBody, await readJsonBody(c.req.raw, undefined));
  assertBucketName(newName);
  // The target object addresses the source by name: a name no bucket can have is not found here.
  bucketStub(c.env, name);
  unwrap(await bucketStub(c.env, newName, hint).renameBucketInto(name));
  await renameBucketInTokens(c.env.DB, name, newName);
  // As on create: policies kept for the new name (its bucket deleted earlier, or provisioned
  // before it existed) apply to the bucket that now has it. The rename is durable already.
  await syncBucketLifecycles(c.env, newName).catch((error: unknown) =>
    console.error(JSON.stringify({ level: "ERROR", msg: `lifecycles of '${newName}' not handed over: ${String(error)}` })),
  );
  // Replications follow the bucket, as lifecycles do (ReductStore's rename leaves them on the old
  // name, where they send nothing): its object copied their logs, D1 now names the new source.
  // Those kept for the new name (its bucket deleted earlier) apply too.
  await moveReplicationsToBucket(c.env.DB, name, newName)
    .then(() => syncBucketReplications(c.env, newName))
    .catch((error: unknown) =>
      console.error(JSON.stringify({ level: "ERROR", msg: `replications of '${newName}' not handed over: ${String(error)}` })),
    );
  return c.body(null, 200);
});
