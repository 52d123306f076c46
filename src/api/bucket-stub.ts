/** The one way the edge addresses a bucket: its object, by name. */
import type { BucketObject } from "../bucket/bucket-object";
import type { Bindings } from "./context";

export function bucketStub(env: Bindings, name: string): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}
