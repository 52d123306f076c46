/**
 * Group commit of `writeRecords`: concurrent calls share one transaction, each caller still gets
 * its own outcome per record (duplicates, quota), one caller's unexpected failure fails only it, a
 * bucket gone before the group commits refuses the group; and the usage mark (stats_version) a
 * write skips when a flush is pending is not lost to a flush in flight.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Bindings } from "../../src/api/context";
import type { BucketObject } from "../../src/bucket/bucket-object";
import type { ObjectParts } from "../../src/bucket/object-parts";
import { type GroupHost, WriteGroups } from "../../src/bucket/write-group";
import type { StagedItem } from "../../src/model/records";
import { api, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

const item = (ts: number, entry = "e", size = 8): StagedItem => ({
  meta: { entry, ts, size, contentType: "application/octet-stream", labels: {} },
  payload: new ArrayBuffer(size),
});

const partsOf = (instance: BucketObject) => (instance as unknown as { parts: ObjectParts }).parts;

/** Counts the transactions the object opens while `run` runs. */
async function countTransactions<T>(state: DurableObjectState, run: () => Promise<T>): Promise<{ result: T; count: number }> {
  const storage = state.storage;
  const original = storage.transactionSync.bind(storage);
  let count = 0;
  storage.transactionSync = <R>(closure: () => R): R => {
    count++;
    return original(closure);
  };
  try {
    return { result: await run(), count };
  } finally {
    storage.transactionSync = original;
  }
}

const statusesOf = (written: Awaited<ReturnType<BucketObject["writeRecords"]>>) =>
  written.ok ? written.outcomes.map((outcome) => (outcome.ok ? 200 : outcome.error.status)) : [written.error.status];

describe("group commit of concurrent writes", () => {
  it("eight concurrent single writes commit in one transaction; each caller gets its own outcome", async () => {
    const bucket = uniqueName("group");
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      const calls = [[item(1)], [item(2)], [item(1)], [item(3), item(3)], [item(4, "f")], [item(5)], [item(6)], [item(7)]];
      const { result, count } = await countTransactions(state, () =>
        Promise.all(calls.map((items) => instance.writeRecords(items))),
      );
      expect(count).toBe(1);
      // The third call repeats the first one's timestamp, the fourth its own: 409 for the later one.
      expect(result.map(statusesOf)).toEqual([[200], [200], [409], [200, 409], [200], [200], [200], [200]]);
      const rows = state.storage.sql.exec<{ n: number }>("SELECT sum(record_count) AS n FROM entries").one();
      expect(rows.n).toBe(7);
    });
  });

  it("a HARD quota is checked record by record across the group's callers", async () => {
    const bucket = uniqueName("group-quota");
    // Each record accounts for 72 bytes (40 and its descriptor): two fit, the third does not.
    await createBucket(bucket, { quota_type: "HARD", quota_size: 150 });
    await runInDurableObject(stubOf(bucket), async (instance) => {
      const written = await Promise.all([1, 2, 3].map((ts) => instance.writeRecords([item(ts, "e", 40)])));
      const statuses = written.map(statusesOf);
      expect(statuses).toEqual([[200], [200], [400]]);
      const third = written[2];
      expect(third?.ok && !third.outcomes[0]?.ok && third.outcomes[0]?.error.message).toBe(`Quota of '${bucket}' exceeded`);
    });
  });

  it("one caller's unexpected failure fails only that caller; the others are written", async () => {
    const bucket = uniqueName("group-throw");
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      const index = partsOf(instance).index;
      const original = index.ensureEntry.bind(index);
      index.ensureEntry = (name: string) => {
        if (name === "boom") throw new Error("injected by test");
        return original(name);
      };
      try {
        const settled = await Promise.allSettled([
          instance.writeRecords([item(1, "a")]),
          instance.writeRecords([item(1, "boom")]),
          instance.writeRecords([item(1, "c")]),
        ]);
        expect(settled.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      } finally {
        index.ensureEntry = original;
      }
      const names = state.storage.sql.exec<{ name: string }>("SELECT name FROM entries ORDER BY name").toArray();
      expect(names.map((row) => row.name)).toEqual(["a", "c"]);
    });
  });

  it("a bucket deleted before the group commits refuses the group's writes", async () => {
    const bucket = uniqueName("group-gone");
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      const write = instance.writeRecords([item(1)]);
      const deleted = await instance.deleteBucket();
      expect(deleted.ok).toBe(true);
      expect(statusesOf(await write)).toEqual([404]);
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM entries").one().n).toBe(0);
    });
  });

  it("the API's single writes answer per record as before (duplicate in the same instant)", async () => {
    const bucket = uniqueName("group-api");
    await createBucket(bucket);
    const responses = await Promise.all([1, 1, 2].map((ts) => api("POST", `/b/${bucket}/e?ts=${ts}`, { body: "x" })));
    expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 409]);
  });
});

describe("the usage mark under a pending flush", () => {
  it("a write marks usage only when the bucket reads flushed, or a flush in flight took the current version", async () => {
    const bucket = uniqueName("group-mark");
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      const version = () =>
        state.storage.sql
          .exec<{ v: number; f: number }>("SELECT stats_version AS v, stats_flushed_version AS f FROM bucket")
          .one();
      // D1's registry write waits for the test, so the flush stays in flight.
      let release: () => void = () => {};
      let entered: () => void = () => {};
      const inFlight = new Promise<void>((resolve) => {
        entered = resolve;
      });
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holder = instance as unknown as { env: Bindings };
      const original = holder.env;
      holder.env = {
        ...original,
        DB: new Proxy(original.DB, {
          get(target, property, receiver) {
            if (property !== "prepare") return Reflect.get(target, property, receiver);
            return (query: string) => {
              const statement = target.prepare(query);
              if (!query.includes("INSERT INTO buckets")) return statement;
              return {
                bind: (...values: unknown[]) => ({
                  run: async () => {
                    entered();
                    await gate;
                    return statement.bind(...values).run();
                  },
                }),
              };
            };
          },
        }),
      };
      try {
        const before = version();
        expect(statusesOf(await instance.writeRecords([item(1)]))).toEqual([200]);
        await inFlight; // the flush took version before.v + 1 and waits on D1
        const taken = version();
        expect(taken.v).toBe(before.v + 1);
        // This write's change is not in the flush in flight: it must mark a newer version.
        expect(statusesOf(await instance.writeRecords([item(2)]))).toEqual([200]);
        expect(version().v).toBe(taken.v + 1);
        // Marked and not flushed yet: a third write finds the mark and writes no bucket row.
        expect(statusesOf(await instance.writeRecords([item(3)]))).toEqual([200]);
        expect(version().v).toBe(taken.v + 1);
        release();
        const deadline = Date.now() + 5000;
        while ((version().f < version().v || partsOf(instance).usage.isDirty()) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(version().f).toBe(version().v);
      } finally {
        release();
        holder.env = original;
      }
    });
    const listed = (await (await api("GET", "/list")).json()) as { buckets: { name: string; size: number }[] };
    const { info } = (await (await api("GET", `/b/${bucket}`)).json()) as { info: { size: number } };
    expect(listed.buckets.find((entry) => entry.name === bucket)?.size).toBe(info.size);
    expect(info.size).toBeGreaterThan(0);
  });
});

describe("how a group gathers its calls", () => {
  /** A host that records the calls of each commit. */
  function recordingHost(): { host: GroupHost; commits: number[][] } {
    const commits: number[][] = [];
    const host: GroupHost = {
      commit: (calls) => {
        commits.push(calls.map((items) => items[0]?.meta.ts ?? -1));
        return {
          written: calls.map((items) => ({ ok: true, outcomes: items.map(() => ({ ok: true })) })),
          after: async () => {},
        };
      },
    };
    return { host, commits };
  }
  const nextMacrotask = () => new Promise((resolve) => setTimeout(resolve, 0));

  it("after a group of several calls, the next group waits briefly for a call one macrotask behind", async () => {
    const { host, commits } = recordingHost();
    const groups = new WriteGroups(host);
    await Promise.all([groups.write([item(1)]), groups.write([item(2)])]);
    const first = groups.write([item(3)]);
    await nextMacrotask();
    await Promise.all([first, groups.write([item(4)])]);
    expect(commits).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it("a lone writer's calls commit one by one, each without waiting for company", async () => {
    const { host, commits } = recordingHost();
    const groups = new WriteGroups(host);
    for (const ts of [1, 2, 3]) await groups.write([item(ts)]);
    expect(commits).toEqual([[1], [2], [3]]);
  });
});
