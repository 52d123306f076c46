import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { SEAL_IDLE_MS } from "../../src/storage/blocks";
import { setR2Wrapper } from "../../src/storage/r2-binding";
import { api, uniqueName } from "../helpers/http";
import { instrumentR2 } from "../helpers/r2-counter";
import { bucketInfo, bytesOf, createBucket, putRecord, sha256 } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

/** Pretends every open block has been idle long enough, then runs the alarm. */
async function sealNow(bucket: string): Promise<void> {
  await runInDurableObject(stubOf(bucket), (_instance, state) => {
    state.storage.sql.exec("UPDATE blocks SET last_write_at_ms = last_write_at_ms - ?", SEAL_IDLE_MS + 1);
  });
  await runDurableObjectAlarm(stubOf(bucket));
}

async function blockStates(bucket: string): Promise<{ state: string; record_count: number; object_key: string | null }[]> {
  return runInDurableObject(stubOf(bucket), (_instance, state) =>
    state.storage.sql
      .exec<{ state: string; record_count: number; object_key: string | null }>(
        "SELECT state, record_count, object_key FROM blocks ORDER BY id",
      )
      .toArray(),
  );
}

/** Aborts the bucket's object: the next call gets a fresh instance built only from storage. */
async function evict(bucket: string): Promise<void> {
  await expect(runInDurableObject(stubOf(bucket), (_instance, state) => state.abort("test eviction"))).rejects.toThrow(
    "test eviction",
  );
}

let stopInstrument: (() => void) | undefined;
afterEach(() => {
  stopInstrument?.();
  stopInstrument = undefined;
});

describe("block packing", () => {
  it("writes 1,000 records of 1 KiB with at most 2 R2 writes", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const { counts, stop } = instrumentR2();
    stopInstrument = stop;
    for (let i = 0; i < 1000; i++) await putRecord(bucket, "sensor", 1_000_000 + i, bytesOf(1024, i + 1));
    await sealNow(bucket);
    expect(counts.puts).toBeLessThanOrEqual(2);
    expect(counts.puts).toBeGreaterThanOrEqual(1);
    const blocks = await blockStates(bucket);
    expect(blocks.every((block) => block.state === "sealed" && block.object_key !== null)).toBe(true);
    expect(blocks.reduce((sum, block) => sum + block.record_count, 0)).toBe(1000);
  });

  it("reads staged and sealed records identically, with ranged gets for sealed ones", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { max_block_records: 4 });
    const payloads = Array.from({ length: 10 }, (_, i) => bytesOf(100 + i, i + 3));
    for (const [i, payload] of payloads.entries()) await putRecord(bucket, "e", i + 1, payload);
    // Blocks of 4 records: the first two are full and sealed, the last one still open.
    await runDurableObjectAlarm(stubOf(bucket));
    const states = (await blockStates(bucket)).map((block) => block.state);
    expect(states).toEqual(["sealed", "sealed", "open"]);

    const { counts, stop } = instrumentR2();
    stopInstrument = stop;
    for (const [i, payload] of payloads.entries()) {
      const response = await api("GET", `/b/${bucket}/e?ts=${i + 1}`);
      expect(await sha256(await response.arrayBuffer())).toBe(await sha256(payload));
    }
    expect(counts.gets).toBe(8); // the 2 staged records come from SQLite
  });

  it("new block limits apply to new blocks", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "a");
    await putRecord(bucket, "e", 2, "b");
    await api("PUT", `/b/${bucket}`, { body: JSON.stringify({ max_block_records: 1 }) }).then((r) => r.text());
    await putRecord(bucket, "e", 3, "c");
    await putRecord(bucket, "e", 4, "d");
    const { entries } = await bucketInfo(bucket);
    expect(entries[0]?.block_count).toBe(3);
  });

  it("keeps data through eviction of the object (nothing load-bearing in memory)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "staged-bytes");
    await evict(bucket);
    expect(await (await api("GET", `/b/${bucket}/e?ts=1`)).text()).toBe("staged-bytes");
    await sealNow(bucket);
    await evict(bucket);
    expect(await (await api("GET", `/b/${bucket}/e?ts=1`)).text()).toBe("staged-bytes");
  });
});

describe("streamed uploads", () => {
  it("answers 425 while an upload holds the timestamp and frees it after its lease", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload({ entry: "e", ts: 5, size: 1_000_000, contentType: "x/y", labels: {} });
    expect(ticket.ok).toBe(true);
    const read = await api("GET", `/b/${bucket}/e?ts=5`);
    expect(read.status).toBe(425);
    expect(read.headers.get("x-reduct-error")).toBe(`Record with timestamp 5 in ${bucket}/e is still being written`);
    await read.text();
    const write = await api("POST", `/b/${bucket}/e?ts=5`, { body: "x" });
    expect(write.status).toBe(409);
    await write.text();
    // The uploader dies: after the lease the alarm releases the timestamp.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE pending_records SET lease_expires_at_ms = 0");
      state.storage.sql.exec("UPDATE r2_garbage SET not_before_ms = 0");
    });
    await runDurableObjectAlarm(stub);
    await putRecord(bucket, "e", 5, "after");
    expect((await bucketInfo(bucket)).entries[0]?.record_count).toBe(1);
  });

  it("an R2 failure during a large upload answers 500, stores nothing and leaves no orphan after the sweep", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const { stop } = instrumentR2((operation) => {
      if (operation === "put") throw new Error("injected R2 put failure");
    });
    stopInstrument = stop;
    const response = await api("POST", `/b/${bucket}/e?ts=1`, { body: bytesOf(300_000) });
    expect(response.status).toBe(500);
    expect(response.headers.get("x-reduct-error")).toContain("injected R2 put failure");
    await response.text();
    stop();
    stopInstrument = undefined;
    const read = await api("GET", `/b/${bucket}/e?ts=1`);
    expect(read.status).toBe(404);
    await read.text();
    await putRecord(bucket, "e", 1, bytesOf(300_000));
    await runInDurableObject(stubOf(bucket), (_instance, state) =>
      state.storage.sql.exec("UPDATE r2_garbage SET not_before_ms = 0"),
    );
    await runDurableObjectAlarm(stubOf(bucket));
    const generation = await runInDurableObject(
      stubOf(bucket),
      (_i, state) => state.storage.sql.exec<{ generation: string }>("SELECT generation FROM bucket").one().generation,
    );
    const listed = await env.RECORDS.list({ prefix: `${generation}/` });
    expect(listed.objects.length).toBe(1); // only the committed record's object
  });

  it("a failed seal keeps records readable from SQLite and the alarm retries", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "keep-me");
    const { stop } = instrumentR2((operation) => {
      if (operation === "put") throw new Error("injected seal failure");
    });
    stopInstrument = stop;
    await sealNow(bucket);
    expect((await blockStates(bucket))[0]?.state).not.toBe("sealed");
    expect(await (await api("GET", `/b/${bucket}/e?ts=1`)).text()).toBe("keep-me");
    stop();
    stopInstrument = undefined;
    await runDurableObjectAlarm(stubOf(bucket));
    expect((await blockStates(bucket))[0]?.state).toBe("sealed");
    expect(await (await api("GET", `/b/${bucket}/e?ts=1`)).text()).toBe("keep-me");
  });

  it("the alarm is idempotent when run twice", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "x");
    await sealNow(bucket);
    const before = await blockStates(bucket);
    await runInDurableObject(stubOf(bucket), async (instance) => {
      await instance.alarm();
      await instance.alarm();
    });
    expect(await blockStates(bucket)).toEqual(before);
    expect(await (await api("GET", `/b/${bucket}/e?ts=1`)).text()).toBe("x");
  });
});

describe("quotas", () => {
  it("HARD rejects with the exact error and writes nothing", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "HARD", quota_size: 100 });
    await putRecord(bucket, "e", 1, bytesOf(50));
    const response = await api("POST", `/b/${bucket}/e?ts=2`, { body: bytesOf(60) });
    expect(response.status).toBe(400);
    expect(response.headers.get("x-reduct-error")).toBe(`Quota of '${bucket}' exceeded`);
    await response.text();
    expect((await bucketInfo(bucket)).entries[0]?.record_count).toBe(1);
  });

  it("FIFO evicts whole oldest blocks across entries and never exceeds the quota", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 5000, max_block_records: 5 });
    for (let i = 0; i < 60; i++) {
      await putRecord(bucket, i % 2 === 0 ? "a" : "b", 1000 + i, bytesOf(200, i));
      const { info } = await bucketInfo(bucket);
      expect(info.size as number).toBeLessThanOrEqual(5000);
    }
    const { entries, info } = await bucketInfo(bucket);
    // the oldest records are gone, the newest are kept
    expect(info.latest_record).toBe(1059);
    expect(info.oldest_record as number).toBeGreaterThan(1000);
    const sum = entries.reduce((total, entry) => total + (entry.size as number), 0);
    expect(sum).toBe(info.size);
  });

  it("FIFO rejects a record larger than the quota up front, evicting nothing", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 1000 });
    await putRecord(bucket, "e", 1, bytesOf(100));
    const response = await api("POST", `/b/${bucket}/e?ts=2`, { body: bytesOf(2000) });
    expect(response.status).toBe(400);
    expect(response.headers.get("x-reduct-error")).toBe(`Record of 2000 bytes is larger than the quota of '${bucket}'`);
    await response.text();
    expect((await bucketInfo(bucket)).entries[0]?.record_count).toBe(1);
  });
});

describe("alarm scheduling", () => {
  it("keeps an alarm for the idle seal after the usage flush ran, and seals without further writes", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "e", 1, "idle");
    expect(await runDurableObjectAlarm(stubOf(bucket))).toBe(true); // the usage flush
    const next = await runInDurableObject(stubOf(bucket), (_instance, state) => state.storage.getAlarm());
    expect(next).not.toBeNull();
    await sealNow(bucket);
    expect((await blockStates(bucket))[0]?.state).toBe("sealed");
  });

  it("keeps an alarm for a pending upload's lease", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const ticket = await stubOf(bucket).reserveUpload({
      entry: "e",
      ts: 1,
      size: 500_000,
      contentType: "a/b",
      labels: {},
    });
    expect(ticket.ok).toBe(true);
    while (await runDurableObjectAlarm(stubOf(bucket))) {
      const pending = await runInDurableObject(
        stubOf(bucket),
        (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_records").one().n,
      );
      if (pending === 0) break;
      const alarm = await runInDurableObject(stubOf(bucket), (_i, state) => state.storage.getAlarm());
      expect(alarm).not.toBeNull();
      await runInDurableObject(stubOf(bucket), (_i, state) => {
        state.storage.sql.exec("UPDATE pending_records SET lease_expires_at_ms = 0");
      });
    }
    const left = await runInDurableObject(
      stubOf(bucket),
      (_i, state) =>
        state.storage.sql
          .exec<{ n: number }>("SELECT (SELECT count(*) FROM pending_records) + (SELECT count(*) FROM record_chunks) AS n")
          .one().n,
    );
    expect(left).toBe(0);
  });
});

describe("streamed upload failures", () => {
  it("an R2 failure mid-upload is a 500 naming R2, not a 400 blaming the client", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    // R2 reads part of the upload, then fails (the client's body is fine).
    setR2Wrapper(
      (r2) =>
        new Proxy(r2, {
          get(target, property, receiver) {
            if (property !== "put") return Reflect.get(target, property, receiver);
            return async (_key: string, value: ReadableStream<Uint8Array>) => {
              const reader = value.getReader();
              await reader.read();
              await reader.cancel("injected R2 outage");
              throw new Error("injected R2 outage");
            };
          },
        }),
    );
    stopInstrument = () => setR2Wrapper(undefined);
    const response = await api("POST", `/b/${bucket}/e?ts=9`, { body: bytesOf(400_000) });
    expect(response.status).toBe(500);
    expect(response.headers.get("x-reduct-error")).toContain("injected R2 outage");
    await response.text();
  });
});

describe("uploads racing entry changes (review findings)", () => {
  it("removing an entry during an upload frees its quota reservation", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "HARD", quota_size: 1_000_000 });
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload({ entry: "e", ts: 1, size: 900_000, contentType: "a/b", labels: {} });
    expect(ticket.ok).toBe(true);
    expect((await api("DELETE", `/b/${bucket}/e`)).status).toBe(200);
    await putRecord(bucket, "f", 1, bytesOf(200_000));
  });

  it("an upload whose entry was renamed meanwhile commits under the new name, never stuck at 425", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await putRecord(bucket, "a", 1, "x");
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload({ entry: "a", ts: 2, size: 4, contentType: "a/b", labels: {} });
    if (!ticket.ok) throw new Error("reserve failed");
    await env.RECORDS.put(ticket.objectKey, "body");
    expect((await api("PUT", `/b/${bucket}/a/rename`, { body: JSON.stringify({ new_name: "b" }) })).status).toBe(200);
    expect(await stub.commitUpload("a", 2, ticket.objectKey)).toEqual({ ok: true });
    const read = await api("GET", `/b/${bucket}/b?ts=2`);
    expect([read.status, await read.text()]).toEqual([200, "body"]);
  });

  it("a commit after the lease ran out is refused and the timestamp is free again", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload({ entry: "e", ts: 3, size: 4, contentType: "a/b", labels: {} });
    if (!ticket.ok) throw new Error("reserve failed");
    await runInDurableObject(stub, (_i, state) => state.storage.sql.exec("UPDATE pending_records SET lease_expires_at_ms = 1"));
    const late = await stub.commitUpload("e", 3, ticket.objectKey);
    expect(late.ok).toBe(false);
    await stub.abortUpload(ticket.objectKey);
    await putRecord(bucket, "e", 3, "new");
  });
});

describe("hot-path query plans", () => {
  it("per-write block lookups use indexes instead of scanning the entry's blocks", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await runInDurableObject(stubOf(bucket), (_instance, state) => {
      const plan = (query: string) =>
        state.storage.sql
          .exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${query}`)
          .toArray()
          .map((row) => row.detail)
          .join("; ");
      expect(plan("SELECT * FROM blocks WHERE entry_id = 1 AND state = 'open'")).toContain("USING INDEX blocks_open");
      expect(plan("SELECT count(*) FROM blocks WHERE state <> 'sealed' AND state = 'full'")).toContain("blocks_unsealed");
      expect(plan("SELECT * FROM pending_records WHERE entry_id = 1 AND ts = 5")).toContain("PRIMARY KEY");
      // The chunk that may hold a timestamp: one seek on (entry_id, min_ts), no sort.
      const chunkAt = plan("SELECT id FROM record_chunks WHERE entry_id = 1 AND min_ts <= 5 ORDER BY min_ts DESC LIMIT 1");
      expect(chunkAt).toMatch(/USING (COVERING )?INDEX record_chunks_by_entry/);
      expect(chunkAt).not.toContain("TEMP B-TREE");
    });
  });
});
