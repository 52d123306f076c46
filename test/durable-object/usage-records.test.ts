/**
 * Usage records in `$system`: two buckets' traffic in one short window reaches
 * `usage/<instance>/<bucket>` and `usage/<instance>/total` with exact fields; idle windows, disabled
 * events and repeated reports write nothing more.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Bindings } from "../../src/api/context";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { usageSettleMs } from "../../src/bucket/duties/usage-report";
import { usageWindowEnd } from "../../src/bucket/duties/usage-traffic";
import { SYSTEM_BUCKET } from "../../src/system/events";
import { api, uniqueName } from "../helpers/http";
import { bucketInfo, createBucket, putRecord } from "../helpers/records";

const WINDOW_MS = 2000;
const INSTANCE = "reduct-edge-test";
const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Gives a live object a short usage window (and other variables): objects read their bindings on every use. */
async function withVariables(bucket: string, variables: Record<string, string>): Promise<void> {
  await runInDurableObject(stubOf(bucket), (instance) => {
    const holder = instance as unknown as { env: Bindings };
    holder.env = { ...holder.env, RS_SYSTEM_EVENTS_USAGE_INTERVAL: String(WINDOW_MS / 1000), ...variables };
  });
}

/** Waits for the start of a fresh window and returns its end. */
async function freshWindow(): Promise<number> {
  await sleep(WINDOW_MS - (Date.now() % WINDOW_MS) + 20);
  return usageWindowEnd(Date.now(), WINDOW_MS);
}

/** Lets the window end, the buckets hand it to D1 and `$system` report it (their own alarms do it too). */
async function reportWindow(windowEnd: number, buckets: string[]): Promise<void> {
  await sleep(Math.max(0, windowEnd - Date.now()) + 20);
  for (const bucket of buckets) await runDurableObjectAlarm(stubOf(bucket));
  await sleep(Math.max(0, windowEnd + usageSettleMs(WINDOW_MS) - Date.now()) + 20);
  await runDurableObjectAlarm(stubOf(SYSTEM_BUCKET));
}

async function usageRecord(name: string, windowEnd: number): Promise<{ status: number; body: unknown; label: string | null }> {
  const response = await api("GET", `/b/${SYSTEM_BUCKET}/usage/${INSTANCE}/${name}?ts=${windowEnd * 1000}`);
  const text = await response.text();
  return {
    status: response.status,
    body: response.status === 200 ? JSON.parse(text) : null,
    label: response.headers.get("x-reduct-label-status"),
  };
}

async function usageRecordCount(name: string): Promise<number> {
  const { entries } = await bucketInfo(SYSTEM_BUCKET);
  const entry = entries.find((candidate) => candidate.name === `usage/${INSTANCE}/${name}`);
  return (entry?.record_count as number | undefined) ?? 0;
}

async function pendingWindows(): Promise<{ bucket: string; window_end_ms: number }[]> {
  const { results } = await env.DB.prepare("SELECT bucket, window_end_ms FROM usage_windows").all<{
    bucket: string;
    window_end_ms: number;
  }>();
  return results;
}

/** The storage snapshot a usage record reports for a bucket, from the API's own numbers. */
async function snapshotOf(bucket: string) {
  const { info, entries } = await bucketInfo(bucket);
  const sum = (key: string) => entries.reduce((total, entry) => total + (entry[key] as number), 0);
  return {
    storage_bytes: info.size as number,
    entry_count: info.entry_count as number,
    block_count: sum("block_count"),
    record_count: sum("record_count"),
  };
}

async function readBody(path: string): Promise<void> {
  const response = await api("GET", path);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

describe("usage records", () => {
  it("writes one record per bucket with traffic and a total, with the window's traffic and the storage snapshot", async () => {
    const first = uniqueName("usage-a");
    const second = uniqueName("usage-b");
    await createBucket(first);
    await createBucket(second);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(first, {});
    await withVariables(second, {});

    const windowEnd = await freshWindow();
    await putRecord(first, "e1", 1, new Uint8Array(10));
    await putRecord(first, "e1", 2, new Uint8Array(10));
    await putRecord(first, "e2", 1, new Uint8Array(5));
    await putRecord(second, "e1", 1, new Uint8Array(7));
    await readBody(`/b/${first}/e1?ts=1`);
    // A query read: two records of `second` in one batch.
    await putRecord(second, "e1", 2, new Uint8Array(3));
    const created = await api("POST", `/b/${second}/e1/q`, { body: JSON.stringify({ query_type: "QUERY" }) });
    const { id } = (await created.json()) as { id: number };
    await readBody(`/b/${second}/e1/batch?q=${id}`);
    expect(Date.now()).toBeLessThan(windowEnd); // everything above happened in one window

    await reportWindow(windowEnd, [first, second]);

    const common = { timestamp: windowEnd * 1000, instance: INSTANCE, status: 200, message: "", duration: WINDOW_MS / 1000 };
    const firstRecord = await usageRecord(first, windowEnd);
    expect(firstRecord).toEqual({
      status: 200,
      label: "200",
      body: {
        ...common,
        write_bytes: 25,
        read_bytes: 10,
        records_written: 3,
        records_read: 1,
        written_entries: 2,
        read_entries: 1,
        bucket_count: 1,
        ...(await snapshotOf(first)),
      },
    });
    expect((await usageRecord(second, windowEnd)).body).toEqual({
      ...common,
      write_bytes: 10,
      read_bytes: 10,
      records_written: 2,
      records_read: 2,
      written_entries: 1,
      read_entries: 1,
      bucket_count: 1,
      ...(await snapshotOf(second)),
    });

    const listed = (await (await api("GET", "/list")).json()) as { buckets: { name: string }[] };
    const clientBuckets = listed.buckets.map((bucket) => bucket.name).filter((name) => !name.startsWith("$"));
    const snapshots = await Promise.all(clientBuckets.map(snapshotOf));
    const sum = (key: keyof (typeof snapshots)[number]) => snapshots.reduce((total, snapshot) => total + snapshot[key], 0);
    expect((await usageRecord("total", windowEnd)).body).toEqual({
      ...common,
      write_bytes: 35,
      read_bytes: 20,
      records_written: 5,
      records_read: 3,
      written_entries: 3,
      read_entries: 2,
      storage_bytes: sum("storage_bytes"),
      bucket_count: clientBuckets.length,
      entry_count: sum("entry_count"),
      block_count: sum("block_count"),
      record_count: sum("record_count"),
    });
    expect(await pendingWindows()).toEqual([]);
    await runInDurableObject(stubOf(first), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM usage_traffic").one().n).toBe(0);
    });

    // An idle window: nothing is handed over and nothing is written.
    const totals = await usageRecordCount("total");
    const idleEnd = await freshWindow();
    await reportWindow(idleEnd, [first, second]);
    expect(await usageRecordCount("total")).toBe(totals);
    expect(await usageRecordCount(first)).toBe(1);
    expect((await usageRecord("total", idleEnd)).status).toBe(404);
    expect(await pendingWindows()).toEqual([]);
  });

  it("a removal without traffic still writes the bucket's record, with its new storage", async () => {
    const bucket = uniqueName("usage-rm");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, {});
    const writeEnd = await freshWindow();
    await putRecord(bucket, "e", 1, new Uint8Array(4));
    await putRecord(bucket, "e", 2, new Uint8Array(4));
    await reportWindow(writeEnd, [bucket]);
    expect((await usageRecord(bucket, writeEnd)).body).toMatchObject({ records_written: 2, record_count: 2 });

    const removeEnd = await freshWindow();
    const removed = await api("DELETE", `/b/${bucket}/e?ts=1`);
    expect(removed.status).toBe(200);
    await sleep(600); // the usage flush's alarm notes the change
    await reportWindow(removeEnd, [bucket]);
    expect((await usageRecord(bucket, removeEnd)).body).toMatchObject({
      write_bytes: 0,
      records_written: 0,
      records_read: 0,
      written_entries: 0,
      ...(await snapshotOf(bucket)),
    });
    expect((await snapshotOf(bucket)).record_count).toBe(1);
  });

  it("a write just before a window ends is reported in that window, and the next window stays idle", async () => {
    const bucket = uniqueName("usage-edge");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, {});
    const windowEnd = await freshWindow();
    await sleep(Math.max(0, windowEnd - Date.now() - 400));
    await putRecord(bucket, "e", 1, new Uint8Array(3));
    expect(Date.now()).toBeLessThan(windowEnd);
    await reportWindow(windowEnd, [bucket]);
    expect((await usageRecord(bucket, windowEnd)).body).toMatchObject({ write_bytes: 3, records_written: 1 });
    // The alarms after the write ran in the next window; they must not mark that window as changed.
    const nextEnd = windowEnd + WINDOW_MS;
    await reportWindow(nextEnd, [bucket]);
    expect((await usageRecord(bucket, nextEnd)).status).toBe(404);
    expect(await usageRecordCount(bucket)).toBe(1);
  });

  it("a bucket renamed mid-window reports its change in a current window, never one dated 1970", async () => {
    const bucket = uniqueName("usage-ren");
    const renamed = uniqueName("usage-ren2");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, {});
    const windowEnd = await freshWindow();
    const started = Date.now();
    await putRecord(bucket, "e", 1, new Uint8Array(1));
    expect(
      (
        await api("PUT", `/b/${bucket}/rename`, {
          body: JSON.stringify({ new_name: renamed }),
          headers: { "content-type": "application/json" },
        })
      ).status,
    ).toBe(200);
    await withVariables(renamed, {});
    await reportWindow(windowEnd + WINDOW_MS, [renamed]);
    const pending = (await pendingWindows()).filter((row) => row.bucket === renamed);
    for (const row of pending) expect(row.window_end_ms).toBeGreaterThan(started);
    const { entries } = await bucketInfo(SYSTEM_BUCKET);
    const entry = entries.find((candidate) => candidate.name === `usage/${INSTANCE}/${renamed}`);
    if (entry) expect(entry.oldest_record as number).toBeGreaterThan(started * 1000);
    expect(pending.length > 0 || entry !== undefined).toBe(true);
  });

  it("a hand-over that D1 refused is retried by the alarm, and the window is reported once", async () => {
    const bucket = uniqueName("usage-fault");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, {});
    const windowEnd = await freshWindow();
    await putRecord(bucket, "e", 1, new Uint8Array(9));
    await sleep(600); // the usage flush to the registry, before D1 fails
    const failingDb = {
      prepare() {
        throw new Error("D1 is unavailable (injected by test)");
      },
      batch() {
        throw new Error("D1 is unavailable (injected by test)");
      },
    } as unknown as D1Database;
    await runInDurableObject(stubOf(bucket), (instance) => {
      const holder = instance as unknown as { env: Bindings };
      holder.env = { ...holder.env, DB: failingDb };
    });
    await sleep(Math.max(0, windowEnd - Date.now()) + 20);
    await runDurableObjectAlarm(stubOf(bucket));
    expect(await pendingWindows()).toEqual([]);
    await runInDurableObject(stubOf(bucket), (instance, state) => {
      expect(state.storage.sql.exec("SELECT sum(write_bytes) AS bytes FROM usage_traffic").one().bytes).toBe(9);
      const holder = instance as unknown as { env: Bindings };
      holder.env = { ...holder.env, DB: env.DB };
    });
    await reportWindow(windowEnd, [bucket]);
    expect((await usageRecord(bucket, windowEnd)).body).toMatchObject({ write_bytes: 9, records_written: 1 });
    expect(await usageRecordCount(bucket)).toBe(1);
    expect(await pendingWindows()).toEqual([]);
  });

  it("a repeated report of a window writes nothing twice", async () => {
    const bucket = uniqueName("usage-retry");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, {});
    const windowEnd = await freshWindow();
    await putRecord(bucket, "e", 1, new Uint8Array(6));
    await reportWindow(windowEnd, [bucket]);
    const first = await usageRecord(bucket, windowEnd);
    expect(first.body).toMatchObject({ write_bytes: 6, records_written: 1 });
    const totals = await usageRecordCount("total");

    // A bucket that hands the same window over again (it was evicted before it forgot it), and a
    // report that ran again after writing (it crashed before deleting the rows).
    await env.DB.prepare(
      `INSERT INTO usage_windows (bucket, window_end_ms, write_bytes, records_written, written_entries) VALUES (?, ?, 6, 1, 1)`,
    )
      .bind(bucket, windowEnd)
      .run();
    await runInDurableObject(stubOf(SYSTEM_BUCKET), (instance) => instance.armUsageReport(windowEnd));
    await sleep(Math.max(0, windowEnd + usageSettleMs(WINDOW_MS) - Date.now()) + 20);
    await runDurableObjectAlarm(stubOf(SYSTEM_BUCKET));

    expect(await pendingWindows()).toEqual([]);
    expect(await usageRecordCount(bucket)).toBe(1);
    expect(await usageRecordCount("total")).toBe(totals);
    expect(await usageRecord(bucket, windowEnd)).toEqual(first);
  });

  it("RS_SYSTEM_EVENTS_ENABLED=false: no traffic is kept and no usage record is written", async () => {
    const bucket = uniqueName("usage-off");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, {});
    await withVariables(bucket, { RS_SYSTEM_EVENTS_ENABLED: "false" });
    const totals = await usageRecordCount("total");
    const windowEnd = await freshWindow();
    await putRecord(bucket, "e", 1, new Uint8Array(6));
    await readBody(`/b/${bucket}/e?ts=1`);
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM usage_traffic").one().n).toBe(0);
    });
    await reportWindow(windowEnd, [bucket]);
    expect(await pendingWindows()).toEqual([]);
    expect(await usageRecordCount(bucket)).toBe(0);
    expect(await usageRecordCount("total")).toBe(totals);
  });

  it("RS_SYSTEM_EVENTS_ENABLED=false in `$system`: windows handed over are not written", async () => {
    const bucket = uniqueName("usage-sys-off");
    await createBucket(bucket);
    await withVariables(SYSTEM_BUCKET, { RS_SYSTEM_EVENTS_ENABLED: "false" });
    await withVariables(bucket, {});
    const totals = await usageRecordCount("total");
    const windowEnd = await freshWindow();
    await putRecord(bucket, "e", 1, new Uint8Array(6));
    await reportWindow(windowEnd, [bucket]);
    expect(await usageRecordCount(bucket)).toBe(0);
    expect(await usageRecordCount("total")).toBe(totals);
    await env.DB.prepare("DELETE FROM usage_windows WHERE bucket = ?").bind(bucket).run();
  });
});
