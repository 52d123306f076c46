import { describe, expect, it } from "vitest";
import { BlockCache } from "../../src/storage/block-cache";

/** An R2 stand-in whose gets resolve only when the test says so. */
function controlledBucket() {
  const waiting = new Map<string, Array<(size: number) => void>>();
  const bucket = {
    get(key: string) {
      return new Promise((resolve) => {
        const list = waiting.get(key) ?? [];
        list.push((size) => resolve({ arrayBuffer: async () => new ArrayBuffer(size) }));
        waiting.set(key, list);
      });
    },
  } as unknown as R2Bucket;
  const finish = async (key: string, size: number) => {
    const next = waiting.get(key)?.shift();
    if (!next) throw new Error(`no get of ${key} is waiting`);
    next(size);
    await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { bucket, finish };
}

describe("block cache accounting", () => {
  it("counts each cached block once, even when a block evicted while loading is requested again", async () => {
    const cache = new BlockCache(10);
    const { bucket, finish } = controlledBucket();
    const first = cache.get(bucket, "a"); // loading, not yet sized
    const b = cache.get(bucket, "b");
    await finish("b", 11); // over the limit: evicts "a", which is still loading
    const again = cache.get(bucket, "a"); // a second load of "a"
    await finish("a", 5); // the first load lands (its entry was evicted)
    await finish("a", 5); // the second load lands
    expect((await first)?.byteLength).toBe(5);
    expect((await again)?.byteLength).toBe(5);
    expect((await b)?.byteLength).toBe(11);
    expect(cache.cachedBytes).toBe(cache.cachedKeys().reduce((sum, key) => sum + (cache.sizeOf(key) ?? 0), 0));
    expect(cache.cachedBytes).toBeLessThanOrEqual(16);
  });

  it("never holds more than its limit (except the block just loaded)", async () => {
    const cache = new BlockCache(10);
    const { bucket, finish } = controlledBucket();
    for (const key of ["a", "b", "c"]) {
      const loading = cache.get(bucket, key);
      await finish(key, 4);
      await loading;
    }
    expect(cache.cachedKeys()).toEqual(["b", "c"]);
    expect(cache.cachedBytes).toBe(8);
  });
});
