/** The one way the edge addresses a bucket: its object, by name. */
import type { BucketObject } from "../bucket/bucket-object";
import { notFound } from "../errors";
import type { Bindings } from "./context";
import { MAX_NAME_LENGTH } from "./schemas";

/**
 * No bucket can have a name longer than create allows, so such a name is not found without asking
 * an object (the runtime does not give an object a name over 1,024 characters at all).
 */
export function bucketStub(env: Bindings, name: string): DurableObjectStub<BucketObject> {
  if (name.length > MAX_NAME_LENGTH) throw notFound(`Bucket '${name}' is not found`);
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}
