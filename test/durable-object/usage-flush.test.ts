import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Bindings } from "../../src/api/context";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { STATS_FLUSH_DELAY_MS, USAGE_FLUSH_BURST, USAGE_FLUSHES_PER_S } from "../../src/bucket/duties/usage-flush";
import { api, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

/** The documented bound: usage from record writes shows in /info and /list within 1 s. */
const STALENESS_BOUND_MS = 1000;

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

async function listedSize(bucket: string): Promise<number | undefined> {
  const response = await api("GET", "/list");
  const { buckets } = (await response.json()) as { buckets: { name: string; size: number }[] };
  return buckets.find((entry) => entry.name === bucket)?.size;
}

describe("usage in D1", () => {
  it("a client that writes a few records and lists at once sees exact sizes (reduct-js fixture)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "entry-1", 1_000_000, new Uint8Array(9), {
      labels: { label1: "label1", label2: "100", label3: "true" },
    });
    for (const ts of [2_000_000, 3_000_000, 4_000_000]) await putRecord(bucket, "entry-2", ts, new Uint8Array(9));
    await new Promise((resolve) => setTimeout(resolve, 20)); // a client round trip
    expect(await listedSize(bucket)).toBe(217);
  });

  it("shows a write's usage in /list within the staleness bound", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1_000_000, new Uint8Array(8));
    const started = Date.now();
    let size = await listedSize(bucket);
    while (size !== 40 && Date.now() - started < STALENESS_BOUND_MS * 2) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      size = await listedSize(bucket);
    }
    expect(size).toBe(40);
    expect(Date.now() - started).toBeLessThanOrEqual(STALENESS_BOUND_MS);
    expect(STATS_FLUSH_DELAY_MS).toBeLessThan(STALENESS_BOUND_MS);
  });

  it("the alarm writes usage that an immediate flush failed to write", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const failingDb = {
      prepare() {
        throw new Error("D1 is unavailable (injected by test)");
      },
    } as unknown as D1Database;
    await runInDurableObject(stubOf(bucket), async (instance) => {
      const holder = instance as unknown as { env: Bindings };
      const original = holder.env;
      holder.env = { ...original, DB: failingDb };
      try {
        const result = await instance.writeRecords([
          {
            meta: { entry: "e", ts: 1_000_000, size: 8, contentType: "application/octet-stream", labels: {} },
            payload: new ArrayBuffer(8),
          },
        ]);
        expect(result.ok).toBe(true);
        await new Promise((resolve) => setTimeout(resolve, 50)); // let the failed flush settle
      } finally {
        holder.env = original;
      }
    });
    expect(await listedSize(bucket)).toBe(0);
    expect(await runDurableObjectAlarm(stubOf(bucket))).toBe(true);
    expect(await listedSize(bucket)).toBe(40);
  });
});

describe("usage flush rate", () => {
  it("steady ingest writes D1 at most a burst plus USAGE_FLUSHES_PER_S per second, and the final usage is exact", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    let upserts = 0;
    await runInDurableObject(stubOf(bucket), (instance) => {
      const holder = instance as unknown as { env: Bindings };
      const original = holder.env.DB;
      holder.env = {
        ...holder.env,
        DB: new Proxy(original, {
          get(target, property, receiver) {
            if (property !== "prepare") return Reflect.get(target, property, receiver);
            return (query: string) => {
              if (query.includes("INSERT INTO buckets")) upserts++;
              return target.prepare(query);
            };
          },
        }),
      };
    });
    const started = Date.now();
    for (let i = 0; i < 100; i++) await putRecord(bucket, "e", 1_000_000 + i, new Uint8Array(8));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the last coalesced flush
    // The rate holds over the whole window the flushes ran in, the wait for the last one included.
    const seconds = Math.ceil((Date.now() - started) / 1000);
    expect(upserts).toBeGreaterThan(0);
    expect(upserts).toBeLessThanOrEqual(USAGE_FLUSH_BURST + (seconds + 1) * USAGE_FLUSHES_PER_S + 1);
    const { buckets } = (await (await api("GET", "/list")).json()) as { buckets: { name: string; size: number }[] };
    const size = buckets.find((entry) => entry.name === bucket)?.size;
    const { info } = (await (await api("GET", `/b/${bucket}`)).json()) as { info: { size: number } };
    expect(size).toBe(info.size);
  });
});
