/**
 * A bucket object's alarm that is stored long past its time was lost (its run ended without the
 * next one firing): the next scheduling sets it again, else the object only ever moves alarms
 * earlier and every duty of the bucket (sealing, garbage, query expiry, lifecycles) stops for good.
 * `npm start` sets every alarm past its time again right after workerd started (rearmLostAlarm):
 * a stop during an alarm run leaves the object's next alarm out of workerd's own list.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { api, uniqueName } from "../helpers/http";

function stubOf(name: string): DurableObjectStub<BucketObject> {
  return env.BUCKETS.getByName(name) as DurableObjectStub<BucketObject>;
}

/** What `call` sets when the stored alarm reads `stored` (the storage calls faked), and what it returned. */
async function setWith<T>(
  name: string,
  stored: (now: number) => number | null,
  call: (instance: Probe, now: number) => Promise<T>,
) {
  return runInDurableObject(stubOf(name), async (instance, state) => {
    const storage = state.storage as unknown as Record<"getAlarm" | "setAlarm", unknown>;
    const original = { getAlarm: storage.getAlarm, setAlarm: storage.setAlarm };
    const now = Date.now();
    const set: number[] = [];
    storage.getAlarm = async () => stored(now);
    storage.setAlarm = async (at: number) => {
      set.push(Number(at));
    };
    let returned: T;
    try {
      returned = await call(instance as unknown as Probe, now);
    } finally {
      Object.assign(storage, original);
    }
    return { set: set.map((at) => at - now), returned };
  });
}

interface Probe {
  scheduleAlarm(at: number): Promise<void>;
  rearmLostAlarm(overdueMs: number): Promise<boolean>;
}

/** What `scheduleAlarm(atMs)` sets when the stored alarm reads `stored`. */
async function setBySchedule(name: string, stored: (now: number) => number | null, atMs: (now: number) => number) {
  return (await setWith(name, stored, (instance, now) => instance.scheduleAlarm(atMs(now)))).set;
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

describe("setting a lost alarm again (npm start: at the start, then while it runs)", () => {
  // [label, stored alarm, overdue bound, the least time set (ms from now), or null: nothing set]
  it.each([
    ["none stored", () => null, 0, null],
    ["one still due later", (now: number) => now + 1_000, 0, null],
    ["one a few seconds past: set again, now", (now: number) => now - 5_000, 0, 0],
    ["one ten minutes past: set again, now", (now: number) => now - 600_000, 0, 0],
    // Setting the stored time itself would be no change, and workerd would schedule nothing.
    ["one due this very millisecond: set a millisecond later", (now: number) => now, 0, 1],
    ["10 s past with a 20 s bound: kept (a run may be under way)", (now: number) => now - 10_000, 20_000, null],
    ["two minutes past with a 20 s bound: set again", (now: number) => now - 120_000, 20_000, 0],
  ])("%s", async (_label, stored, overdueMs, least) => {
    const name = uniqueName("rearm");
    expect((await api("POST", `/b/${name}`)).status).toBe(200);
    const { set, returned } = await setWith(name, stored, (instance) => instance.rearmLostAlarm(overdueMs));
    expect(returned).toBe(least !== null);
    if (least === null) expect(set).toEqual([]);
    else {
      expect(set).toHaveLength(1);
      // Now, give or take the call's own milliseconds.
      expect(set[0]).toBeGreaterThanOrEqual(least);
      expect(set[0]).toBeLessThan(least + 1_000);
    }
  });
});
