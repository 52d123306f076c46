/**
 * One failing lifecycle policy never stops the others of its bucket: the alarm sets it aside for a
 * while (one log line) and runs the rest in the same pass.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import type { LifecycleSettings } from "../../src/bucket/lifecycle-settings";
import { api, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const SECOND = 1_000_000;

async function recordCount(bucket: string, entry: string): Promise<number> {
  const response = await api("GET", `/b/${bucket}`);
  const info = (await response.json()) as { entries: { name: string; record_count: number }[] };
  return info.entries.find((item) => item.name === entry)?.record_count ?? 0;
}

async function schedule(bucket: string): Promise<Record<string, number>> {
  return runInDurableObject(stubOf(bucket), (_instance, state) => {
    const rows = state.storage.sql
      .exec<{ name: string; at: number }>("SELECT name, next_run_at_ms AS at FROM lifecycle_policies")
      .toArray();
    return Object.fromEntries(rows.map((row) => [row.name, row.at]));
  });
}

const valid = (bucket: string): LifecycleSettings => ({
  type: "delete",
  bucket,
  entries: [],
  older_than: "1h",
  interval: "10m",
  processing_interval: "86400s",
  mode: "enabled",
});

describe("lifecycle run isolation", () => {
  it.each([
    // What an older version stored as the default of interval 600000001us.
    ["an unparsable stored processing_interval", { processing_interval: "14400.000024s" }],
    ["a stored interval past the range", { interval: "9000000000000000us" }],
  ])("a policy with %s is set aside and the next policy still runs", async (_title, broken) => {
    const bucket = uniqueName();
    await createBucket(bucket);
    for (let second = 1; second <= 5; second++) await putRecord(bucket, "e1", second * SECOND, new Uint8Array(4));
    const stub = stubOf(bucket);
    const result = await stub.setLifecycles([
      { name: "aaa-broken", settings: { ...valid(bucket), ...broken } },
      { name: "zzz-ok", settings: valid(bucket) },
    ]);
    expect(result).toEqual({ ok: true });

    const started = Date.now();
    while ((await recordCount(bucket, "e1")) > 0 && Date.now() - started < 5000) {
      await runDurableObjectAlarm(stub).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await recordCount(bucket, "e1")).toBe(0);
    // The broken policy waits before its next try instead of failing every alarm pass.
    const next = await schedule(bucket);
    expect(next["aaa-broken"]).toBeGreaterThan(Date.now() + 30_000);
  });
});
