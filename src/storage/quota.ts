/**
 * Quota decisions, pure. Usage is accounted size (payload + descriptor bytes); which bytes count
 * (HARD: all plus uploads in flight; FIFO: only what it can evict) is the caller's choice, see
 * `RecordWriter.enforceQuota`.
 */
import type { BucketSettings } from "../config";

export type QuotaDecision = { kind: "accept" } | { kind: "evict"; bytesToFree: number } | { kind: "reject"; message: string };

export function decideQuota(settings: BucketSettings, bucket: string, usedBytes: number, incomingBytes: number): QuotaDecision {
  const { quota_type: type, quota_size: quota } = settings;
  if (type === "NONE") return { kind: "accept" };
  const over = usedBytes + incomingBytes - quota;
  if (type === "HARD") return over > 0 ? { kind: "reject", message: `Quota of '${bucket}' exceeded` } : { kind: "accept" };
  // FIFO: a record larger than the whole quota could never fit; refuse it before evicting anything.
  if (incomingBytes > quota) {
    return { kind: "reject", message: `Record of ${incomingBytes} bytes is larger than the quota of '${bucket}'` };
  }
  return over > 0 ? { kind: "evict", bytesToFree: over } : { kind: "accept" };
}
