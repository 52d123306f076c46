/**
 * A lifecycle run is one remove query cut into bounded slices and windows: stateful `when`
 * operators count across slices, windows and eviction exactly as the REMOVE query does; the run is
 * reported once; `is_running` shows only a run actually in progress; and a bucket that arrives
 * under a policy's bucket name, by create or by rename, gets the policy.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { configFromEnv } from "../../src/config";
import { entrySegment, SYSTEM_BUCKET } from "../../src/system/events";
import { api, apiWithEnv, TOKEN, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const SECOND = 1_000_000;

async function evict(bucket: string): Promise<void> {
  await expect(runInDurableObject(stubOf(bucket), (_instance, state) => state.abort("evicted by test"))).rejects.toThrow();
}

/** Timestamps left in an entry, read back through the API. */
async function timestamps(bucket: string, entry: string): Promise<number[]> {
  const created = await api("POST", `/b/${bucket}/${entry}/q`, json({ query_type: "QUERY", only_metadata: true }));
  if (created.status === 404) {
    await created.text();
    return [];
  }
  const { id } = (await created.json()) as { id: number };
  const found: number[] = [];
  for (;;) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
    if (response.status === 204) return found.sort((a, b) => a - b);
    for (const name of response.headers.keys()) {
      if (name.startsWith("x-reduct-time-")) found.push(Number(name.slice("x-reduct-time-".length)));
    }
    await response.arrayBuffer();
    if (response.headers.get("x-reduct-last") === "true") return found.sort((a, b) => a - b);
  }
}

/** `count` small records per entry at 1 ms steps from 1 s (data time long past any `older_than`). */
async function seedDense(bucket: string, entries: string[], count: number): Promise<void> {
  for (const entry of entries) {
    for (let start = 0; start < count; start += 500) {
      const items = Array.from({ length: Math.min(500, count - start) }, (_, i) => ({
        meta: {
          entry,
          ts: SECOND + (start + i) * 1000,
          size: 1,
          contentType: "application/octet-stream",
          labels: { parity: (start + i) % 2 === 0 ? "even" : "odd" },
        },
        payload: new Uint8Array(1).buffer,
      }));
      expect((await stubOf(bucket).writeRecords(items)).ok).toBe(true);
    }
  }
}

type RunInfo = { is_running: boolean; last_run: string | null; last_run_result: Record<string, unknown> | null };

/** `last_run` is the last run's time, as ReductStore's clients read it; `last_run_result` what it did. */
async function info(name: string): Promise<RunInfo> {
  const response = await api("GET", `/lifecycles/${name}`);
  const state = ((await response.json()) as { info: RunInfo }).info;
  expect(state.last_run).toBe(state.last_run_result === null ? null : state.last_run_result.time);
  return state;
}

/** One alarm pass alone (the object's own alarm cleared around it); without `run` it only makes the policies due. */
async function onePass(bucket: string, run = true): Promise<{ running: boolean }> {
  return runInDurableObject(stubOf(bucket), async (instance, state) => {
    await state.storage.deleteAlarm();
    if (!run) state.storage.sql.exec("UPDATE lifecycle_policies SET next_run_at_ms = 0");
    if (run) await instance.alarm();
    await state.storage.deleteAlarm();
    const rows = state.storage.sql.exec<{ r: number | null }>("SELECT run_from_us AS r FROM lifecycle_policies").toArray();
    return { running: rows.some((row) => row.r !== null) };
  });
}

/** Runs the alarm until `check` holds (alarms also fire on their own), or 5 s pass. */
async function eventually<T>(bucket: string, read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const started = Date.now();
  for (;;) {
    await runDurableObjectAlarm(stubOf(bucket));
    const value = await read();
    if (check(value) || Date.now() - started > 5000) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The JSON bodies of a policy's `$system` events. */
async function runEvents(policy: string): Promise<Record<string, unknown>[]> {
  const entry = `lifecycle/${entrySegment(configFromEnv(env).instanceName)}/${entrySegment(policy)}`;
  const system = encodeURIComponent(SYSTEM_BUCKET);
  const created = await api("POST", `/b/${system}/${entry}/q`, json({ query_type: "QUERY" }));
  if (created.status === 404) {
    await created.text();
    return [];
  }
  const { id } = (await created.json()) as { id: number };
  const bodies: Record<string, unknown>[] = [];
  for (;;) {
    const read = await api("GET", `/b/${system}/${entry}?q=${id}`);
    if (read.status !== 200) {
      await read.text();
      return bodies;
    }
    bodies.push((await read.json()) as Record<string, unknown>);
    if (read.headers.get("x-reduct-last") === "1") return bodies;
  }
}

/**
 * A policy on an empty bucket (its first, empty run recorded so it waits its interval), then the
 * records; the caller drives the passes.
 */
async function policyOnDenseBucket(body: Record<string, unknown>, entries: string[], count: number) {
  const bucket = uniqueName();
  await createBucket(bucket);
  const name = uniqueName("policy");
  expect(
    (await api("POST", `/lifecycles/${name}`, json({ bucket, type: "delete", older_than: "1h", interval: "10m", ...body })))
      .status,
  ).toBe(200);
  await eventually(
    bucket,
    () => info(name),
    (state) => state.last_run !== null,
  );
  await seedDense(bucket, entries, count);
  await onePass(bucket, false);
  return { bucket, name };
}

const ENTRIES = ["a", "b"];
const RECORDS = 1250; // per entry: 2,500 in all, more than two slices of 1,000

describe("stateful `when` across slices, windows and eviction", () => {
  const cases: [string, unknown][] = [
    ["$limit", { $limit: 5 }],
    ["$limit over slices", { $limit: 1100 }],
    ["$each_n", { $each_n: 3 }],
    ["$each_t", { $each_t: "7ms" }],
    ["label and $each_n", { $and: [{ "&parity": { $eq: "even" } }, { $each_n: 4 }] }],
  ];
  for (const [title, when] of cases) {
    for (const evictMidRun of [false, true]) {
      it(`${title}: the run removes what the REMOVE query removes${evictMidRun ? " (evicted mid-run)" : ""}`, async () => {
        // Windows of 600 ms of data time: 1.25 s of records in two entries take three windows,
        // two of them of two slices.
        const { bucket, name } = await policyOnDenseBucket({ when, processing_interval: "600ms" }, ENTRIES, RECORDS);
        const reference = uniqueName();
        await createBucket(reference);
        await seedDense(reference, ENTRIES, RECORDS);
        let expected = 0;
        for (const entry of ENTRIES) {
          const removed = await api("POST", `/b/${reference}/${entry}/q`, json({ query_type: "REMOVE", when }));
          expected += ((await removed.json()) as { removed_records: number }).removed_records;
        }

        let passes = 0;
        for (; passes < 40; passes++) {
          const { running } = await onePass(bucket);
          if (!running) break;
          if (evictMidRun && passes === 2) await evict(bucket);
        }
        // Once `$limit` is reached an entry is not scanned further: that run needs few slices.
        if (title !== "$limit") expect(passes).toBeGreaterThanOrEqual(4);
        for (const entry of ENTRIES) expect(await timestamps(bucket, entry)).toEqual(await timestamps(reference, entry));
        expect((await info(name)).last_run_result).toMatchObject({ mode: "enabled", removed_records: expected });
      });
    }
  }
});

describe("a run is reported once", () => {
  const cases: [string, string | undefined, number][] = [
    // 1,500 expired records need two slices; one fresh record stays.
    ["a window of two slices before a fresh record", undefined, 1500],
    // Windows of 1 ms: the expired records are one window, the fresh record is past the cutoff.
    ["a tiny processing_interval", "1ms", 5],
  ];
  for (const [title, processingInterval, expired] of cases) {
    it(title, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      const items = Array.from({ length: expired }, (_, i) => ({
        meta: { entry: "e1", ts: SECOND + i * 100, size: 1, contentType: "application/octet-stream", labels: {} },
        payload: new Uint8Array(1).buffer,
      }));
      expect((await stubOf(bucket).writeRecords(items)).ok).toBe(true);
      const fresh = Date.now() * 1000;
      await putRecord(bucket, "e1", fresh, new Uint8Array(1));
      const name = uniqueName("policy");
      const body: Record<string, unknown> = { type: "delete", bucket, older_than: "1h", interval: "10m" };
      if (processingInterval) body.processing_interval = processingInterval;
      expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
      await eventually(
        bucket,
        () => timestamps(bucket, "e1"),
        (left) => left.length === 1,
      );
      // Further passes add nothing: the policy waits its interval.
      for (let pass = 0; pass < 3; pass++) await runDurableObjectAlarm(stubOf(bucket));
      expect(await timestamps(bucket, "e1")).toEqual([fresh]);

      const events = await runEvents(name);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ removed_records: expired, from: SECOND });
      expect(events[0]?.until as number).toBeGreaterThan(events[0]?.from as number);
      const state = await info(name);
      expect(state.is_running).toBe(false);
      expect(state.last_run_result).toMatchObject({ mode: "enabled", removed_records: expired, from: SECOND });
    });
  }
});

describe("is_running shows only a run in progress", () => {
  it("a policy disabled mid-run stops running and reports what it removed", async () => {
    const { bucket, name } = await policyOnDenseBucket({}, ["a"], 4000);
    expect((await onePass(bucket)).running).toBe(true);
    expect((await info(name)).is_running).toBe(true);
    expect((await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "disabled" }))).status).toBe(200);
    const state = await eventually(
      bucket,
      () => info(name),
      (seen) => !seen.is_running,
    );
    expect(state.is_running).toBe(false);
    expect(state.last_run_result).toMatchObject({ mode: "enabled", removed_records: 1000, from: SECOND });
    expect(await timestamps(bucket, "a")).toHaveLength(3000);
  });

  it("a policy whose bucket is deleted mid-run stops running", async () => {
    const { bucket, name } = await policyOnDenseBucket({}, ["a"], 4000);
    expect((await onePass(bucket)).running).toBe(true);
    expect((await info(name)).is_running).toBe(true);
    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    const state = await info(name);
    expect(state.is_running).toBe(false);
    expect(state.last_run_result).toMatchObject({ mode: "enabled", removed_records: 1000 });
  });

  it("a policy whose bucket is renamed mid-run goes with it and finishes its run there", async () => {
    const { bucket, name } = await policyOnDenseBucket({}, ["a"], 4000);
    expect((await onePass(bucket)).running).toBe(true);
    expect((await info(name)).is_running).toBe(true);
    const newName = uniqueName();
    const renamed = await api("PUT", `/b/${bucket}/rename`, json({ new_name: newName }));
    expect(renamed.status).toBe(200);
    const settings = ((await (await api("GET", `/lifecycles/${name}`)).json()) as { settings: { bucket: string } }).settings;
    expect(settings.bucket).toBe(newName);
    expect((await info(name)).is_running).toBe(true);
    let passes = 0;
    while ((await onePass(newName)).running && passes < 20) passes++;
    expect((await info(name)).is_running).toBe(false);
    expect(await timestamps(newName, "a")).toEqual([]);
  });
});

describe("a bucket arriving under a policy's bucket name gets the policy", () => {
  it("by rename into the name", async () => {
    const target = uniqueName();
    await createBucket(target);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket: target, older_than: "1h", interval: "10m" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    expect((await api("DELETE", `/b/${target}`)).status).toBe(200);

    const source = uniqueName();
    await createBucket(source);
    for (let i = 1; i <= 20; i++) await putRecord(source, "e1", i * SECOND, new Uint8Array(1));
    expect((await api("PUT", `/b/${source}/rename`, json({ new_name: target }))).status).toBe(200);

    const policies = await runInDurableObject(stubOf(target), (_instance, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM lifecycle_policies").toArray(),
    );
    expect(policies.map((row) => row.name)).toEqual([name]);
    const left = await eventually(
      target,
      () => timestamps(target, "e1"),
      (found) => found.length === 0,
    );
    expect(left).toEqual([]);
  });

  it("by provisioning under the name", async () => {
    const target = uniqueName();
    await createBucket(target);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket: target, older_than: "1h", interval: "10m" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    expect((await api("DELETE", `/b/${target}`)).status).toBe(200);

    const provisioned = await apiWithEnv({ RS_BUCKET_A_NAME: target }, "GET", `/b/${target}`, {
      authorization: `Bearer ${TOKEN}`,
    });
    expect(provisioned.status).toBe(200);
    await provisioned.text();
    const policies = await runInDurableObject(stubOf(target), (_instance, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM lifecycle_policies").toArray(),
    );
    expect(policies.map((row) => row.name)).toEqual([name]);
  });
});
