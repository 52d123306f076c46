/** The one way the edge addresses a bucket: its object, by name. */
import type { BucketObject } from "../bucket/bucket-object";
import type { LocationHint } from "../config";
import { notFound } from "../errors";
import { bucketObject } from "../placement";
import type { Bindings } from "./context";
import { MAX_NAME_LENGTH } from "./schemas";

/**
 * No bucket can have a name longer than create allows, so such a name is not found without asking
 * an object (the runtime does not give an object a name over 1,024 characters at all).
 */
export function bucketStub(env: Bindings, name: string, hint?: LocationHint): DurableObjectStub<BucketObject> {
  if (name.length > MAX_NAME_LENGTH) throw notFound(`Bucket '${name}' is not found`);
  return bucketObject(env, name, hint);
}
