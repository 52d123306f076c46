/**
 * The R2 calls of the bucket object: sealing a block, deleting garbage, purging a deleted
 * generation. Every call has the R2 timeout, so an alarm never hangs on a stalled request.
 */
import { generationPrefix, purgePrefixPage, R2_DELETE_BATCH, R2_TIMEOUT_MS, withTimeout } from "./r2";
import { recordsBucket } from "./r2-binding";

/** The part of the Worker's bindings these calls need. */
export interface RecordsBinding {
  RECORDS: R2Bucket;
}

/** Keys one `deleteObjects` call may take. */
export const OBJECT_DELETE_BATCH = R2_DELETE_BATCH;

/** Writes a sealed block's bytes as one object. */
export async function putBlockObject(env: RecordsBinding, key: string, bytes: Uint8Array): Promise<void> {
  await withTimeout(recordsBucket(env).put(key, bytes), R2_TIMEOUT_MS, "put");
}

/** Deletes up to OBJECT_DELETE_BATCH objects in one call. */
export async function deleteObjects(env: RecordsBinding, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await withTimeout(recordsBucket(env).delete(keys), R2_TIMEOUT_MS, "delete");
}

/** Deletes one page of a generation's objects; true once none are left. */
export async function purgeGenerationPage(env: RecordsBinding, generation: string): Promise<boolean> {
  return purgePrefixPage(recordsBucket(env), generationPrefix(generation));
}
