/**
 * Quota decisions (§3.2), pure. Usage is the bucket's accounted size (payload + descriptor bytes,
 * §3.8) plus bytes reserved by uploads in flight, so racing writes cannot overshoot together.
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
