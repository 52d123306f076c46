/**
 * A bucket object's alarm that is stored long past its time was lost (its run ended without the
 * next one firing): the next scheduling sets it again, else the object only ever moves alarms
 * earlier and every duty of the bucket (sealing, garbage, query expiry, lifecycles) stops for good.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { api, uniqueName } from "../helpers/http";

function stubOf(name: string): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}

/** What `scheduleAlarm(atMs)` sets when the stored alarm reads `stored` (the storage calls faked). */
async function setBySchedule(name: string, stored: (now: number) => number | null, atMs: (now: number) => number) {
  return runInDurableObject(stubOf(name), async (instance, state) => {
    const storage = state.storage as unknown as Record<"getAlarm" | "setAlarm", unknown>;
    const original = { getAlarm: storage.getAlarm, setAlarm: storage.setAlarm };
    const now = Date.now();
    const set: number[] = [];
    storage.getAlarm = async () => stored(now);
    storage.setAlarm = async (at: number) => {
      set.push(Number(at));
    };
    try {
      await (instance as unknown as { scheduleAlarm(at: number): Promise<void> }).scheduleAlarm(atMs(now));
    } finally {
      Object.assign(storage, original);
    }
    return set.map((at) => at - now);
  });
}

describe("scheduling the object's alarm", () => {
  it.each([
    ["none stored", () => null, [5_000]],
    ["a later one stored", (now: number) => now + 60_000, [5_000]],
    ["an earlier one stored, still due", (now: number) => now + 1_000, []],
    ["one a few seconds overdue (its run may be under way)", (now: number) => now - 5_000, []],
    ["one ten minutes overdue: lost, set again", (now: number) => now - 600_000, [5_000]],
  ])("%s", async (_label, stored, expected) => {
    const name = uniqueName("alarm");
    expect((await api("POST", `/b/${name}`)).status).toBe(200);
    expect(await setBySchedule(name, stored, (now) => now + 5_000)).toEqual(expected);
  });
});
