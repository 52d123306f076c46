/**
 * Where a bucket's Durable Object lives, and the one place that addresses one by name.
 *
 * `RS_DO_JURISDICTION` puts every bucket object in a jurisdiction (its SQLite never leaves it).
 * The jurisdiction is part of an object's id, so it must be chosen before the first bucket is
 * created: after a change the same name addresses a different, empty object.
 *
 * A location hint only matters when an object is first created: `RS_DO_LOCATION_HINT` is the
 * deployment default, and bucket create may name another one for that bucket. Without either,
 * Cloudflare creates the object near the first request that reaches it.
 */
import type { BucketObject } from "./bucket/bucket-object";
import { configFromEnv, type JURISDICTIONS, type LOCATION_HINTS, type LocationHint } from "./config";
import type { Bindings } from "./env";

// config.ts also runs on Node (npm start validates with it), without the runtime's types: the
// lists it accepts are checked against the runtime's here.
type Within<T extends U, U> = T;
export type CheckedHints = Within<(typeof LOCATION_HINTS)[number], DurableObjectLocationHint>;
export type CheckedJurisdictions = Within<(typeof JURISDICTIONS)[number], DurableObjectJurisdiction>;

export function bucketObject(env: Bindings, name: string, hint?: LocationHint): DurableObjectStub<BucketObject> {
  const { jurisdiction, locationHint } = configFromEnv(env).placement;
  const namespace = jurisdiction === undefined ? env.BUCKETS : env.BUCKETS.jurisdiction(jurisdiction);
  const chosen = hint ?? locationHint;
  return (
    chosen === undefined ? namespace.getByName(name) : namespace.getByName(name, { locationHint: chosen })
  ) as DurableObjectStub<BucketObject>;
}
