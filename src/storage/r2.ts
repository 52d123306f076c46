/**
 * R2 helpers shared by the edge and the bucket object: every call gets a timeout (a hung R2 call
 * must not hold a request or the alarm forever) and key layout lives in one place.
 */

export const R2_TIMEOUT_MS = 30_000;
/** R2's bulk delete takes at most 1,000 keys per call. */
export const R2_DELETE_BATCH = 1000;

export class R2TimeoutError extends Error {
  override name = "R2TimeoutError";
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: number | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new R2TimeoutError(`R2 ${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** All objects of one bucket incarnation live under `<generation>/`. */
export function generationPrefix(generation: string): string {
  return `${generation}/`;
}

/** Sealed block of small records. */
export function blockObjectKey(generation: string, entryId: number, blockId: number): string {
  return `${generation}/${entryId}/b/${blockId}`;
}

/** A large record streamed to its own object; the attempt id makes every upload attempt unique. */
export function recordObjectKey(generation: string, entryId: number, ts: number, attempt: string): string {
  return `${generation}/${entryId}/r/${ts}-${attempt}`;
}

/** Deletes up to one page of objects under `prefix`; returns true when nothing is left. */
export async function purgePrefixPage(bucket: R2Bucket, prefix: string, timeoutMs = R2_TIMEOUT_MS): Promise<boolean> {
  const listing = await withTimeout(bucket.list({ prefix, limit: R2_DELETE_BATCH }), timeoutMs, "list");
  const keys = listing.objects.map((object) => object.key);
  if (keys.length > 0) await withTimeout(bucket.delete(keys), timeoutMs, "delete");
  return !listing.truncated && keys.length < R2_DELETE_BATCH;
}
