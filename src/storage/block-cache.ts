/**
 * A small per-isolate cache of sealed block objects for batched reads. Block keys are unique per
 * seal attempt and objects are never rewritten, so a cached block can never be stale: correctness
 * needs no invalidation, and a query reading 1,000 records of one block costs one R2 get, not one
 * per batch. Bounded by bytes (least recently used out first).
 */
import { R2_TIMEOUT_MS, withTimeout } from "./r2";

/** Blocks hold at most STAGED_BLOCK_MAX_BYTES (8 MiB) of staged records. */
export const BLOCK_CACHE_MAX_BYTES = 32 * 1024 * 1024;

export class BlockCache {
  private readonly blocks = new Map<string, Promise<Uint8Array | null>>();
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(private readonly maxBytes = BLOCK_CACHE_MAX_BYTES) {}

  /** The whole block object, or null when it is gone (evicted or deleted since the index read). */
  get(bucket: R2Bucket, key: string): Promise<Uint8Array | null> {
    const cached = this.blocks.get(key);
    if (cached) {
      this.blocks.delete(key); // re-insert: most recently used last
      this.blocks.set(key, cached);
      return cached;
    }
    const loading = (async () => {
      const object = await withTimeout(bucket.get(key), R2_TIMEOUT_MS, "get");
      return object ? new Uint8Array(await object.arrayBuffer()) : null;
    })();
    this.blocks.set(key, loading);
    // Only while this load is still the cached entry: a block evicted while loading and requested
    // again has a newer load in the map, which accounts for itself (counting both overstated bytes).
    const current = () => this.blocks.get(key) === loading;
    loading.then(
      (block) => {
        if (!current()) return;
        if (block) this.account(key, block.byteLength);
        else this.blocks.delete(key);
      },
      () => {
        if (current()) this.blocks.delete(key);
      },
    );
    return loading;
  }

  /** Bytes of the blocks held (loads in flight count once they land). */
  get cachedBytes(): number {
    return this.bytes;
  }

  cachedKeys(): string[] {
    return [...this.blocks.keys()];
  }

  sizeOf(key: string): number | undefined {
    return this.sizes.get(key);
  }

  private account(key: string, size: number): void {
    this.sizes.set(key, size);
    this.bytes += size;
    for (const oldest of this.blocks.keys()) {
      if (this.bytes <= this.maxBytes || oldest === key) break;
      this.blocks.delete(oldest);
      this.bytes -= this.sizes.get(oldest) ?? 0;
      this.sizes.delete(oldest);
    }
  }
}

/** The isolate's cache, shared by all requests it serves. */
export const blockCache = new BlockCache();
