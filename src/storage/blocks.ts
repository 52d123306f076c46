/**
 * Block packing rules. Small records are staged in the bucket object's SQLite and sealed into one R2
 * object per block; large records stream to their own object but still count in their block, as in
 * ReductStore (its `max_block_size` / `max_block_records`). These are pure decisions so they can be
 * unit-tested apart from storage.
 */

/** Records up to this size are staged in SQLite (a DO SQLite row holds at most 2 MB). */
export const SMALL_RECORD_MAX_BYTES = 128 * 1024;
/** A block stops taking staged records at this many staged bytes, whatever max_block_size says,
 * so that sealing one block never needs more than this much memory. */
export const STAGED_BLOCK_MAX_BYTES = 8 * 1024 * 1024;
/** An open block with no write for this long is sealed by the alarm. */
export const SEAL_IDLE_MS = 5_000;
/** Deleted/evicted objects stay readable this long, so reads already in flight can finish. */
export const READ_GRACE_MS = 30_000;
/** How long a seal's R2 put may take before its object is treated as an orphan. */
export const SEAL_LEASE_MS = 120_000;

export interface OpenBlockState {
  record_count: number;
  content_bytes: number;
  staged_bytes: number;
}

export interface BlockLimits {
  max_block_size: number;
  max_block_records: number;
}

/** True when a record of `size` bytes may not join `block` and a new block must be started. */
export function needsNewBlock(block: OpenBlockState, limits: BlockLimits, size: number, staged: boolean): boolean {
  if (block.record_count === 0) return false;
  if (block.record_count + 1 > limits.max_block_records) return true;
  if (block.content_bytes + size > limits.max_block_size) return true;
  return staged && block.staged_bytes + size > STAGED_BLOCK_MAX_BYTES;
}

/** True when a block cannot take any further record and should be sealed now. */
export function isBlockFull(block: OpenBlockState, limits: BlockLimits): boolean {
  return (
    block.record_count >= limits.max_block_records ||
    block.content_bytes >= limits.max_block_size ||
    block.staged_bytes >= STAGED_BLOCK_MAX_BYTES
  );
}

/**
 * How long a streamed upload may hold its timestamp: a minute plus 10 s per MiB, so a client
 * uploading at 100 KiB/s (a weak cellular link) still finishes; a dead uploader's timestamp is
 * freed after that (100 MiB: about 18 minutes).
 */
export function uploadLeaseMs(size: number): number {
  return 60_000 + Math.ceil(size / (1024 * 1024)) * 10_000;
}
