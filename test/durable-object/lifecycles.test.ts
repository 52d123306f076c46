/**
 * Lifecycle policies at object level: the alarm runs a delete policy window by window, removes
 * exactly the matching records, keeps its progress across eviction, and dry_run removes nothing.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { LIFECYCLE_SLICE_RECORDS } from "../../src/bucket/duties/lifecycles";
import { configFromEnv } from "../../src/config";
import { entrySegment, SYSTEM_BUCKET } from "../../src/system/events";
import { api, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });
const SECOND = 1_000_000;

async function evict(stub: DurableObjectStub<BucketObject>): Promise<void> {
  await expect(
    runInDurableObject(stub, (_instance, state) => {
      state.abort("evicted by test");
    }),
  ).rejects.toThrow();
}

/** Timestamps left in an entry, read back through the API. */
async function timestamps(bucket: string, entry: string): Promise<number[]> {
  const created = await api("POST", `/b/${bucket}/${entry}/q`, json({ query_type: "QUERY", only_metadata: true }));
  if (created.status === 404) return [];
  const { id } = (await created.json()) as { id: number };
  const found: number[] = [];
  for (;;) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
    if (response.status === 204) return found;
    for (const name of response.headers.keys()) {
      if (name.startsWith("x-reduct-time-")) found.push(Number(name.slice("x-reduct-time-".length)));
    }
    await response.arrayBuffer();
    if (response.headers.get("x-reduct-last") === "true") return found.sort((a, b) => a - b);
  }
}

async function progress(bucket: string): Promise<number> {
  return runInDurableObject(stubOf(bucket), (_instance, state) => {
    const row = state.storage.sql.exec<{ p: number }>("SELECT processed_until_us AS p FROM lifecycle_policies").one();
    return row.p;
  });
}

/** Alarms also fire on their own: runs the alarm and reads again until `check` holds (or 3 s pass). */
async function eventually<T>(bucket: string, read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const started = Date.now();
  for (;;) {
    await runDurableObjectAlarm(stubOf(bucket));
    const value = await read();
    if (check(value) || Date.now() - started > 3000) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What the last run did; `last_run` itself is that run's time, as ReductStore's clients read it. */
async function lastRun(name: string): Promise<Record<string, unknown> | null> {
  const response = await api("GET", `/lifecycles/${name}`);
  const { info } = (await response.json()) as {
    info: { last_run: string | null; last_run_result: Record<string, unknown> | null };
  };
  expect(info.last_run).toBe(info.last_run_result === null ? null : info.last_run_result.time);
  return info.last_run_result;
}

async function seed(bucket: string): Promise<void> {
  await createBucket(bucket);
  for (let second = 1; second <= 6; second++) {
    const camera = second % 2 === 0 ? "front" : "back";
    await putRecord(bucket, "cam-1", second * SECOND, new Uint8Array(4), { labels: { camera } });
    await putRecord(bucket, "lidar", second * SECOND, new Uint8Array(4));
  }
}

describe("lifecycle duty", () => {
  it("removes matching records window by window and resumes after eviction", async () => {
    const bucket = uniqueName();
    await seed(bucket);
    const name = uniqueName("policy");
    const body = {
      type: "delete",
      bucket,
      entries: ["cam-*"],
      older_than: "1h",
      interval: "10m",
      processing_interval: "2s",
      when: { "&camera": { $eq: "front" } },
    };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);

    // Windows of 2 s of data time from the oldest record (1 s): the alarm (also firing on its own)
    // advances the persisted progress by at most one window per pass.
    const seen: number[] = [];
    for (let run = 0; run < 10 && (seen.at(-1) ?? 0) < 6 * SECOND + 1; run++) {
      await onePass(bucket);
      const now = await progress(bucket);
      // 0: the policy's first window has not run yet (the object may not have had it when called).
      if (now !== 0 && seen.at(-1) !== now) seen.push(now);
      if (seen.length === 2) {
        // A new instance starts from the persisted progress, never from the beginning (its own
        // alarm may already have run the next window).
        await evict(stubOf(bucket));
        expect(await progress(bucket)).toBeGreaterThanOrEqual(now);
      }
    }
    // Progress stops just past the latest record (6 s), not at now − older_than.
    expect(seen.at(-1)).toBe(6 * SECOND + 1);
    // Before the first observation the alarm POST scheduled may have run windows on its own.
    for (let i = 1; i < seen.length; i++) expect((seen[i] ?? 0) - (seen[i - 1] ?? 0)).toBeLessThanOrEqual(2 * SECOND);
    expect(await timestamps(bucket, "cam-1")).toEqual([1, 3, 5].map((s) => s * SECOND));
    expect(await timestamps(bucket, "lidar")).toHaveLength(6);

    const run = await lastRun(name);
    expect(run).toMatchObject({ mode: "enabled" });
    expect(typeof run?.removed_records).toBe("number");
  });

  it("dry_run counts and removes nothing; disabled does nothing", async () => {
    const bucket = uniqueName();
    await seed(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, entries: ["**"], older_than: "1h", interval: "10m", mode: "dry_run" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    const counted = await eventually(
      bucket,
      () => lastRun(name),
      (run) => run !== null,
    );
    expect(counted).toMatchObject({ mode: "dry_run", matched_records: 12 });
    expect(await timestamps(bucket, "cam-1")).toHaveLength(6);
    expect(await timestamps(bucket, "lidar")).toHaveLength(6);

    expect((await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "disabled" }))).status).toBe(200);
    await runDurableObjectAlarm(stubOf(bucket));
    expect(await timestamps(bucket, "lidar")).toHaveLength(6);

    expect((await api("PATCH", `/lifecycles/${name}/mode`, json({ mode: "enabled" }))).status).toBe(200);
    const removed = await eventually(
      bucket,
      () => lastRun(name),
      (run) => run?.mode === "enabled",
    );
    expect(removed).toMatchObject({ mode: "enabled", removed_records: 12 });
    expect(await timestamps(bucket, "cam-1")).toEqual([]);
    expect(await timestamps(bucket, "lidar")).toEqual([]);
  });
});

/** Writes `count` small records per entry at 1 ms steps from 1 s, straight to the object. */
async function seedDense(bucket: string, entries: string[], count: number): Promise<void> {
  for (const entry of entries) {
    for (let start = 0; start < count; start += 500) {
      const items = Array.from({ length: Math.min(500, count - start) }, (_, i) => {
        const ts = SECOND + (start + i) * 1000;
        const labels = { parity: (start + i) % 2 === 0 ? "even" : "odd" };
        return {
          meta: { entry, ts, size: 1, contentType: "application/octet-stream", labels },
          payload: new Uint8Array(1).buffer,
        };
      });
      const written = await stubOf(bucket).writeRecords(items);
      expect(written.ok).toBe(true);
    }
  }
}

/** The JSON bodies of a `$system` entry's records. */
async function systemEvents(entry: string): Promise<Record<string, unknown>[]> {
  const system = encodeURIComponent(SYSTEM_BUCKET);
  const created = await api("POST", `/b/${system}/${entry}/q`, json({ query_type: "QUERY" }));
  if (created.status === 404) return [];
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

interface SliceState {
  window: number | null;
  count: number;
  cursor: string | null;
}

/**
 * One alarm pass on its own (`run`), or none: the object's self-scheduled alarm is cleared around
 * it, so the states observed are exactly one pass apart. Without a run it makes the policy due.
 */
async function onePass(bucket: string, run = true): Promise<SliceState> {
  return runInDurableObject(stubOf(bucket), async (instance, state) => {
    await state.storage.deleteAlarm();
    if (!run) state.storage.sql.exec("UPDATE lifecycle_policies SET next_run_at_ms = 0");
    if (run) await instance.alarm();
    await state.storage.deleteAlarm();
    const row = state.storage.sql
      .exec<{ w: number | null; c: number; e: string | null; t: number | null }>(
        "SELECT window_until_us AS w, window_count AS c, cursor_entry AS e, cursor_ts AS t FROM lifecycle_policies",
      )
      .one();
    return { window: row.w, count: row.c, cursor: row.e === null ? null : `${row.e}@${row.t}` };
  });
}

async function isRunning(name: string): Promise<boolean> {
  const response = await api("GET", `/lifecycles/${name}`);
  return ((await response.json()) as { info: { is_running: boolean } }).info.is_running;
}

describe("lifecycle runs are bounded", () => {
  it("removes a dense window over several passes, each within the bound, resuming after eviction", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    // One window holds all 5,000 records; `when` keeps the even ones. The policy's first run (on an
    // empty bucket) waits its interval, so the passes below are the only ones.
    const body = {
      type: "delete",
      bucket,
      entries: ["*"],
      older_than: "1h",
      interval: "10m",
      when: { "&parity": { $eq: "odd" } },
    };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    await eventually(
      bucket,
      () => lastRun(name),
      (run) => run !== null,
    );
    await seedDense(bucket, ["a", "b"], 2500);

    // The alarm POST scheduled may have run a pass or two already; from here each pass is alone.
    const states: SliceState[] = [await onePass(bucket, false)];
    for (let pass = 0; pass < 20; pass++) {
      states.push(await onePass(bucket));
      if (states.at(-1)?.window === null) break;
      // Between passes the bucket answers and the policy reports it is running.
      expect(await isRunning(name)).toBe(true);
      expect((await api("GET", `/b/${bucket}`)).status).toBe(200);
      if (pass === 1) await evict(stubOf(bucket));
    }
    // 5,000 records scanned at most LIFECYCLE_SLICE_RECORDS a pass: several passes, each within
    // the bound, each starting where the last stopped.
    expect(states.length).toBeGreaterThanOrEqual(4);
    const cursors = states.map((state) => state.cursor).filter((cursor) => cursor !== null);
    expect(new Set(cursors).size).toBe(cursors.length);
    for (let i = 1; i < states.length - 1; i++) {
      const removed = (states[i]?.count ?? 0) - (states[i - 1]?.count ?? 0);
      expect(removed).toBeGreaterThan(0);
      expect(removed).toBeLessThanOrEqual(LIFECYCLE_SLICE_RECORDS / 2);
    }
    expect(states.at(-1)?.window).toBeNull();
    expect(await isRunning(name)).toBe(false);
    expect(await lastRun(name)).toMatchObject({ mode: "enabled", removed_records: 2500 });
    // The finished window is also a `$system` event, written once, after its last slice.
    const events = await systemEvents(`lifecycle/${entrySegment(configFromEnv(env).instanceName)}/${entrySegment(name)}`);
    expect(events.filter((event) => event.removed_records === 2500)).toEqual([
      expect.objectContaining({ policy: name, bucket, mode: "enabled", status: "ok", from: SECOND, until: SECOND + 2_499_001 }),
    ]);

    const even = Array.from({ length: 1250 }, (_, i) => SECOND + i * 2 * 1000);
    expect(await timestamps(bucket, "a")).toEqual(even);
    expect(await timestamps(bucket, "b")).toEqual(even);
  });

  it("dry_run counts a dense window in bounded passes and removes nothing", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, entries: ["a"], older_than: "1h", interval: "10m", mode: "dry_run" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    await eventually(
      bucket,
      () => lastRun(name),
      (run) => run !== null,
    );
    await seedDense(bucket, ["a"], 5000);
    const states: SliceState[] = [await onePass(bucket, false)];
    for (let pass = 0; pass < 10; pass++) {
      states.push(await onePass(bucket));
      if (states.at(-1)?.window === null) break;
    }
    for (let i = 1; i < states.length - 1; i++) {
      expect((states[i]?.count ?? 0) - (states[i - 1]?.count ?? 0)).toBe(LIFECYCLE_SLICE_RECORDS);
    }
    expect(states.length).toBeGreaterThanOrEqual(3);
    expect(states.at(-1)).toEqual({ window: null, count: 0, cursor: null });
    expect(await lastRun(name)).toMatchObject({ mode: "dry_run", matched_records: 5000 });
    expect(await timestamps(bucket, "a")).toHaveLength(5000);
  });

  it("a run that finds nothing is still recorded as last_run", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, entries: ["**"], older_than: "1h", interval: "10m" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    await onePass(bucket);
    expect(await lastRun(name)).toMatchObject({ mode: "enabled", removed_records: 0 });
    expect(await isRunning(name)).toBe(false);
  });
});

describe("lifecycles and bucket deletion", () => {
  it("a policy kept after its bucket is deleted runs on a new bucket of the same name unchanged", async () => {
    const bucket = uniqueName();
    await seed(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, entries: ["lidar"], older_than: "1h", interval: "10m" };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    await eventually(
      bucket,
      () => timestamps(bucket, "lidar"),
      (left) => left.length === 0,
    );
    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    const listed = (await (await api("GET", "/lifecycles")).json()) as { lifecycles: { name: string }[] };
    expect(listed.lifecycles.map((item) => item.name)).toContain(name);

    // No lifecycle call in between: creating the bucket hands it the policy, with fresh progress.
    await seed(bucket);
    const policies = await runInDurableObject(stubOf(bucket), (_instance, state) =>
      state.storage.sql.exec<{ name: string }>("SELECT name FROM lifecycle_policies").toArray(),
    );
    expect(policies.map((row) => row.name)).toEqual([name]);
  });
});
