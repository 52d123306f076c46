/**
 * The replication log on the source object: which acknowledged writes and label updates it logs
 * (entries, `when`, mode, $meta, $system), that it is written in the write's transaction (a refused
 * write logs nothing), its bound, and that it travels with a rename and goes with the bucket.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import type { ObjectParts } from "../../src/bucket/object-parts";
import { LOG_FULL_STATUS } from "../../src/bucket/replications";
import { ConfigError, configFromEnv, DEFAULT_REPLICATION_LOG_SIZE, parseConfig } from "../../src/config";
import type { ReplicationSettings } from "../../src/model/replications";
import { api, uniqueName } from "../helpers/http";
import { bytesOf, createBucket, putRecord, writeRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

function settingsFor(src: string, extra: Partial<ReplicationSettings> = {}): ReplicationSettings {
  return {
    src_bucket: src,
    dst_bucket: "nowhere",
    dst_host: "http://replication-target.invalid/",
    entries: [],
    dst_prefix: "",
    // Paused: logs, never sends, so the log stays as written.
    mode: "paused",
    compression: "none",
    ...extra,
  };
}

async function replicate(bucket: string, name: string, extra: Partial<ReplicationSettings> = {}): Promise<void> {
  const set = await stubOf(bucket).setReplications([{ name, settings: settingsFor(bucket, extra) }]);
  expect(set.ok).toBe(true);
}

type Logged = { entry: string; ts: number; kind: string };

async function logOf(bucket: string, name = "r"): Promise<Logged[]> {
  return runInDurableObject(stubOf(bucket), (_instance, state) =>
    state.storage.sql
      .exec<Logged>("SELECT entry, ts, kind FROM replication_log WHERE replication = ? ORDER BY seq", name)
      .toArray()
      .map((row) => ({ ...row })),
  );
}

async function pending(bucket: string, name = "r"): Promise<number> {
  const [status] = await stubOf(bucket).replicationStatus([name]);
  return status?.pending_records ?? -1;
}

describe("which writes a replication logs", () => {
  const cases: {
    name: string;
    settings: Partial<ReplicationSettings>;
    entry: string;
    labels?: Record<string, string>;
    logged: boolean;
  }[] = [
    { name: "no entry patterns: every entry", settings: {}, entry: "a", logged: true },
    { name: "exact entry", settings: { entries: ["a"] }, entry: "a", logged: true },
    { name: "other entry", settings: { entries: ["b"] }, entry: "a", logged: false },
    { name: "glob", settings: { entries: ["cam-*"] }, entry: "cam-1", logged: true },
    { name: "glob that does not match", settings: { entries: ["cam-*"] }, entry: "lidar", logged: false },
    { name: "exclusion", settings: { entries: ["*", "!cam-2"] }, entry: "cam-2", logged: false },
    { name: "when true", settings: { when: { "&x": { $eq: "y" } } }, entry: "a", labels: { x: "y" }, logged: true },
    { name: "when false", settings: { when: { "&x": { $eq: "z" } } }, entry: "a", labels: { x: "y" }, logged: false },
    { name: "when on a missing label", settings: { when: { "&nope": { $eq: "y" } } }, entry: "a", logged: false },
    { name: "when that does not parse: no filter", settings: { when: { $nonsense: [1] } }, entry: "a", logged: true },
    { name: "mode disabled", settings: { mode: "disabled" }, entry: "a", logged: false },
    { name: "mode enabled", settings: { mode: "enabled" }, entry: "a", logged: true },
  ];
  it.each(cases)("$name", async ({ settings, entry, labels, logged }) => {
    const bucket = uniqueName("rlog");
    await createBucket(bucket);
    // An enabled replication meets an unavailable target, so the log stays put.
    if (settings.mode === "enabled") {
      await runInDurableObject(stubOf(bucket), (instance) => {
        (instance as unknown as { parts: ObjectParts }).parts.outbound.fetch = async () => new Response(null, { status: 503 });
      });
    }
    await replicate(bucket, "r", settings);
    await putRecord(bucket, entry, 1000, "x", { labels });
    expect(await logOf(bucket)).toEqual(logged ? [{ entry, ts: 1000, kind: "write" }] : []);
    expect(await pending(bucket)).toBe(logged ? 1 : 0);
  });

  it("a $meta entry goes with its parent and skips `when` (ReductStore's transaction filter)", async () => {
    const bucket = uniqueName("rlog-meta");
    await createBucket(bucket);
    await replicate(bucket, "r", { entries: ["a"], when: { "&x": { $eq: "never" } } });
    await putRecord(bucket, "a/$meta", 1000, "{}", { labels: { key: "schema" } });
    await putRecord(bucket, "b/$meta", 1000, "{}", { labels: { key: "schema" } });
    await putRecord(bucket, "a", 2000, "x", { labels: { x: "y" } });
    expect(await logOf(bucket)).toEqual([{ entry: "a/$meta", ts: 1000, kind: "write" }]);
  });

  it("a stateful `when` ($each_n: every 2nd record, as in queries) counts across writes", async () => {
    const bucket = uniqueName("rlog-each");
    await createBucket(bucket);
    await replicate(bucket, "r", { when: { $each_n: 2 } });
    for (const ts of [1, 2, 3, 4, 5]) await putRecord(bucket, "a", ts, "x");
    expect((await logOf(bucket)).map((row) => row.ts)).toEqual([2, 4]);
  });

  it("$system is never replicated", async () => {
    const stub = stubOf("$system");
    await runInDurableObject(stub, (instance) => {
      const parts = (instance as unknown as { parts: ObjectParts }).parts;
      expect(parts.replications.journal("$system", Date.now())).toBeUndefined();
    });
  });
});

describe("every acknowledged write path logs in its own transaction", () => {
  it("single write, batch v1, batch v2, large record commit; a refused write logs nothing", async () => {
    const bucket = uniqueName("rlog-paths");
    await createBucket(bucket);
    await replicate(bucket, "r");
    await putRecord(bucket, "a", 1, "one");
    const v1 = await api("POST", `/b/${bucket}/a/batch`, {
      headers: {
        "content-type": "application/octet-stream",
        "x-reduct-time-2": "3,text/plain",
        "x-reduct-time-3": "3,text/plain",
      },
      body: "twothr",
    });
    expect(v1.status).toBe(200);
    const v2 = await api("POST", `/io/${bucket}/write`, {
      headers: {
        "content-type": "application/octet-stream",
        "x-reduct-entries": "b",
        "x-reduct-start-ts": "10",
        "x-reduct-0-0": "2,text/plain",
      },
      body: "v2",
    });
    expect([v2.status, v2.headers.get("x-reduct-error")]).toEqual([200, null]);
    await putRecord(bucket, "big", 5, bytesOf(200 * 1024));
    // A duplicate is refused: nothing logged for it.
    expect((await writeRecord(bucket, "a", 1, "again")).status).toBe(409);
    expect(await logOf(bucket)).toEqual([
      { entry: "a", ts: 1, kind: "write" },
      { entry: "a", ts: 2, kind: "write" },
      { entry: "a", ts: 3, kind: "write" },
      { entry: "b", ts: 10, kind: "write" },
      { entry: "big", ts: 5, kind: "write" },
    ]);
    expect(await pending(bucket)).toBe(5);
  });

  it("label updates: single PATCH, v1 PATCH batch, v2 update; a failed update logs nothing", async () => {
    const bucket = uniqueName("rlog-labels");
    await createBucket(bucket);
    await putRecord(bucket, "a", 1, "one");
    await putRecord(bucket, "a", 2, "two");
    await replicate(bucket, "r");
    expect((await api("PATCH", `/b/${bucket}/a?ts=1`, { headers: { "x-reduct-label-x": "1" } })).status).toBe(200);
    const v1 = await api("PATCH", `/b/${bucket}/a/batch`, { headers: { "x-reduct-time-2": "0,,x=2" } });
    expect(v1.status).toBe(200);
    const v2 = await api("PATCH", `/io/${bucket}/update`, {
      headers: { "x-reduct-entries": "a", "x-reduct-start-ts": "1", "x-reduct-0-0": "0,,y=3" },
    });
    expect(v2.status).toBe(200);
    expect((await api("PATCH", `/b/${bucket}/a?ts=99`, { headers: { "x-reduct-label-x": "1" } })).status).toBe(404);
    expect(await logOf(bucket)).toEqual([
      { entry: "a", ts: 1, kind: "labels" },
      { entry: "a", ts: 2, kind: "labels" },
      { entry: "a", ts: 1, kind: "labels" },
    ]);
  });

  it("a label update that changes nothing logs nothing (two stores replicating into each other settle)", async () => {
    const bucket = uniqueName("rlog-same");
    await createBucket(bucket);
    await putRecord(bucket, "a", 1, "one", { labels: { x: "1" } });
    await putRecord(bucket, "a", 2, "two", { labels: { x: "2" } });
    await replicate(bucket, "r");
    // As a sender echoes them back: the record's current labels.
    expect((await api("PATCH", `/b/${bucket}/a?ts=1`, { headers: { "x-reduct-label-x": "1" } })).status).toBe(200);
    const v1 = await api("PATCH", `/b/${bucket}/a/batch`, {
      headers: { "x-reduct-time-1": "0,,x=1", "x-reduct-time-2": "0,,x=3" },
    });
    expect(v1.status).toBe(200);
    const v2 = await api("PATCH", `/io/${bucket}/update`, {
      headers: { "x-reduct-entries": "a", "x-reduct-start-ts": "1", "x-reduct-0-1": "0,,x=3" },
    });
    expect(v2.status).toBe(200);
    expect(await logOf(bucket)).toEqual([{ entry: "a", ts: 2, kind: "labels" }]);
  });
});

describe("the log's bound", () => {
  it("RS_REPLICATION_LOG_SIZE: default and parsing", () => {
    expect(configFromEnv(env).replicationLogSize).toBe(DEFAULT_REPLICATION_LOG_SIZE);
    expect(DEFAULT_REPLICATION_LOG_SIZE).toBe(1_000_000);
    expect(parseConfig({ RS_REPLICATION_LOG_SIZE: "5" }).replicationLogSize).toBe(5);
    expect(() => parseConfig({ RS_REPLICATION_LOG_SIZE: "zero" })).toThrow(ConfigError);
  });

  it("beyond the cap the oldest rows go and are counted in diagnostics", async () => {
    const bucket = uniqueName("rlog-cap");
    await createBucket(bucket);
    await replicate(bucket, "r");
    await runInDurableObject(stubOf(bucket), (instance) => {
      const holder = instance as unknown as { env: Record<string, unknown> };
      holder.env = { ...holder.env, RS_REPLICATION_LOG_SIZE: "3" };
    });
    for (const ts of [1, 2, 3, 4, 5]) await putRecord(bucket, "a", ts, "x");
    expect((await logOf(bucket)).map((row) => row.ts)).toEqual([3, 4, 5]);
    const [status] = await stubOf(bucket).replicationStatus(["r"]);
    expect(status?.pending_records).toBe(3);
    expect(status?.diagnostics.hourly.errored).toBe(2);
    expect(status?.diagnostics.hourly.errors[LOG_FULL_STATUS]?.count).toBe(2);
  });
});

describe("the log follows the replication set and the bucket", () => {
  it("a replication left out of the set goes with its log; another keeps its own", async () => {
    const bucket = uniqueName("rlog-set");
    await createBucket(bucket);
    const stub = stubOf(bucket);
    await stub.setReplications([
      { name: "r", settings: settingsFor(bucket) },
      { name: "s", settings: settingsFor(bucket, { entries: ["a"] }) },
    ]);
    await putRecord(bucket, "a", 1, "x");
    await putRecord(bucket, "b", 2, "x");
    expect(await pending(bucket, "r")).toBe(2);
    expect(await pending(bucket, "s")).toBe(1);
    await stub.setReplications([{ name: "s", settings: settingsFor(bucket, { entries: ["a"] }) }]);
    expect(await logOf(bucket, "r")).toEqual([]);
    expect(await pending(bucket, "r")).toBe(0);
    expect(await logOf(bucket, "s")).toEqual([{ entry: "a", ts: 1, kind: "write" }]);
  });

  it("deleting the source bucket removes its replications and log", async () => {
    const bucket = uniqueName("rlog-del");
    await createBucket(bucket);
    await replicate(bucket, "r");
    await putRecord(bucket, "a", 1, "x");
    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    expect(await logOf(bucket)).toEqual([]);
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM replications").one().n).toBe(0);
    });
  });

  it("a renamed bucket keeps its replications and log under the new name", async () => {
    const bucket = uniqueName("rlog-ren");
    const renamed = uniqueName("rlog-ren-new");
    await createBucket(bucket);
    // Through the API: the rename hands the new name the replications D1 holds for it.
    const created = await api("POST", "/replications/r", { body: JSON.stringify(settingsFor(bucket)) });
    expect(created.status).toBe(200);
    await putRecord(bucket, "a", 1, "x");
    const response = await api("PUT", `/b/${bucket}/rename`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ new_name: renamed }),
    });
    expect(response.status).toBe(200);
    expect(await logOf(renamed)).toEqual([{ entry: "a", ts: 1, kind: "write" }]);
    expect(await pending(renamed)).toBe(1);
    expect(await logOf(bucket)).toEqual([]);
  });
});

describe("a bucket without replications does not read them on every write", () => {
  /** Counts the reads of the replications table in this bucket's object from now on. */
  async function countReads(bucket: string): Promise<() => Promise<number>> {
    await runInDurableObject(stubOf(bucket), (instance) => {
      const table = (instance as unknown as { parts: ObjectParts }).parts.tables.replications;
      const counted = table as unknown as { reads?: number; all: typeof table.all };
      if (counted.reads === undefined) {
        const all = table.all.bind(table);
        counted.all = () => {
          counted.reads = (counted.reads ?? 0) + 1;
          return all();
        };
      }
      counted.reads = 0;
    });
    return () =>
      runInDurableObject(stubOf(bucket), (instance) => {
        const table = (instance as unknown as { parts: ObjectParts }).parts.tables.replications;
        return (table as unknown as { reads: number }).reads;
      });
  }

  it("the table is read once, then not until the set changes; set() starts logging at once", async () => {
    const bucket = uniqueName("rlog-cache");
    await createBucket(bucket);
    const reads = await countReads(bucket);
    for (const ts of [1, 2, 3]) await putRecord(bucket, "a", ts, "x");
    expect(await reads()).toBeLessThanOrEqual(1);
    await replicate(bucket, "r");
    await putRecord(bucket, "a", 4, "x");
    await putRecord(bucket, "a", 5, "x");
    expect(await logOf(bucket)).toEqual([
      { entry: "a", ts: 4, kind: "write" },
      { entry: "a", ts: 5, kind: "write" },
    ]);
    // Dropped from the set: nothing logged, and the table is not read per write again.
    await stubOf(bucket).setReplications([]);
    const after = await countReads(bucket);
    for (const ts of [6, 7, 8]) await putRecord(bucket, "a", ts, "x");
    expect(await after()).toBe(1);
    expect(await logOf(bucket)).toEqual([]);
  });

  it("a rename's copy of the replications reaches the new name's object, which had cached none", async () => {
    const bucket = uniqueName("rlog-cache-ren");
    const renamed = uniqueName("rlog-cache-ren-new");
    await createBucket(bucket);
    // The new name's object wrote without replications (and cached that), then lost its bucket.
    await createBucket(renamed);
    await putRecord(renamed, "a", 1, "x");
    expect((await api("DELETE", `/b/${renamed}`)).status).toBe(200);
    const replication = uniqueName("rlog-cache-r");
    const created = await api("POST", `/replications/${replication}`, { body: JSON.stringify(settingsFor(bucket)) });
    expect(created.status).toBe(200);
    const response = await api("PUT", `/b/${bucket}/rename`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ new_name: renamed }),
    });
    expect(response.status).toBe(200);
    await putRecord(renamed, "a", 2, "x");
    expect(await logOf(renamed, replication)).toEqual([{ entry: "a", ts: 2, kind: "write" }]);
  });

  it("the copy of the replications table alone makes the cached 'none' stale", async () => {
    const bucket = uniqueName("rlog-cache-copy");
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), (instance, state) => {
      const parts = (instance as unknown as { parts: ObjectParts }).parts;
      expect(parts.replications.journal(bucket, Date.now())).toBeUndefined();
      // What a rename's import does: rows written past the table class, then touched().
      state.storage.sql.exec("INSERT INTO replications (name, settings) VALUES (?, ?)", "r", JSON.stringify(settingsFor(bucket)));
      expect(parts.replications.journal(bucket, Date.now())).toBeUndefined();
      parts.tables.replications.touched();
      expect(parts.replications.journal(bucket, Date.now())).toBeDefined();
    });
  });

  it("a deleted and re-created bucket starts without the old replications", async () => {
    const bucket = uniqueName("rlog-cache-del");
    await createBucket(bucket);
    await replicate(bucket, "r");
    await putRecord(bucket, "a", 1, "x");
    expect((await api("DELETE", `/b/${bucket}`)).status).toBe(200);
    await createBucket(bucket);
    await putRecord(bucket, "a", 2, "x");
    expect(await logOf(bucket)).toEqual([]);
    // And one set on the new bucket logs at once, though the object cached none for it.
    await replicate(bucket, "r");
    await putRecord(bucket, "a", 3, "x");
    expect(await logOf(bucket)).toEqual([{ entry: "a", ts: 3, kind: "write" }]);
  });
});
