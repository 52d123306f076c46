import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { MAX_SCANNED_ROWS_PER_CALL } from "../../src/bucket/query-engine";
import { SEAL_IDLE_MS } from "../../src/storage/blocks";
import { api, uniqueName } from "../helpers/http";
import { instrumentR2 } from "../helpers/r2-counter";
import { bytesOf, createBucket } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

let stop: (() => void) | undefined;
afterEach(() => {
  stop?.();
  stop = undefined;
});

/** Writes `count` records of `size` bytes through the object's RPC in chunks (fast setup). */
async function fill(bucket: string, entry: string, count: number, size: number): Promise<void> {
  const stub = stubOf(bucket);
  for (let i = 0; i < count; i += 200) {
    const items = Array.from({ length: Math.min(200, count - i) }, (_, j) => ({
      meta: { entry, ts: 1_000_000 + i + j, size, contentType: "application/octet-stream", labels: {} },
      payload: bytesOf(size, i + j + 1).buffer as ArrayBuffer,
    }));
    const result = await stub.writeRecords(items);
    expect(result.ok && result.outcomes.every((outcome) => outcome.ok)).toBe(true);
  }
  await runInDurableObject(stub, (_instance, state) => {
    state.storage.sql.exec("UPDATE blocks SET last_write_at_ms = last_write_at_ms - ?", SEAL_IDLE_MS + 1);
  });
  await runDurableObjectAlarm(stub);
}

describe("query execution", () => {
  it("reads 10,000 × 1 KiB records back with one query in at most 20 R2 reads", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await fill(bucket, "sensor", 10_000, 1024);
    const created = await api("POST", `/io/${bucket}/q`, { body: JSON.stringify({ query_type: "QUERY", entries: ["sensor"] }) });
    const { id } = (await created.json()) as { id: number };
    const { counts, stop: done } = instrumentR2();
    stop = done;
    let records = 0;
    let bytes = 0;
    for (let i = 0; i < 500; i++) {
      const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
      if (response.status === 204) break;
      records += [...response.headers.keys()].filter((name) => /^x-reduct-0-\d+$/.test(name)).length;
      bytes += (await response.arrayBuffer()).byteLength;
    }
    expect(records).toBe(10_000);
    expect(bytes).toBe(10_000 * 1024);
    expect(counts.classB).toBeLessThanOrEqual(20);
  }, 120_000);

  it("a query survives the object being evicted between batches", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await fill(bucket, "e", 200, 10);
    const created = await api("POST", `/b/${bucket}/e/q`, {
      body: JSON.stringify({ query_type: "QUERY", when: { $each_n: 2 } }),
    });
    const { id } = (await created.json()) as { id: number };
    const read = async () => {
      const response = await api("GET", `/b/${bucket}/e/batch?q=${id}`);
      await response.arrayBuffer();
      return [...response.headers.keys()]
        .filter((name) => name.startsWith("x-reduct-time-"))
        .map((name) => Number(name.slice(14)));
    };
    const first = await read();
    await expect(runInDurableObject(stubOf(bucket), (_i, state) => state.abort("evict"))).rejects.toThrow("evict");
    const second = await read();
    const all = [...first, ...second].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 100 }, (_, i) => 1_000_001 + 2 * i));
  });

  it("the alarm drops queries whose TTL passed", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await fill(bucket, "e", 3, 10);
    const created = await api("POST", `/b/${bucket}/e/q`, { body: JSON.stringify({ query_type: "QUERY", ttl: 1 }) });
    const { id } = (await created.json()) as { id: number };
    await runInDurableObject(stubOf(bucket), async (instance, state) => {
      state.storage.sql.exec("UPDATE queries SET last_access_ms = last_access_ms - 5000");
      await instance.alarm();
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM queries WHERE id = ?", id).one().n).toBe(0);
    });
  });
});

describe("ranged reads of large blocks", () => {
  it("a selective query over large blocks fetches ranges, not whole blocks, byte for byte", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    await fill(bucket, "frames", 64, 100 * 1024); // 6.4 MB in one block (> the 2 MiB whole-block limit)
    const created = await api("POST", `/io/${bucket}/q`, {
      body: JSON.stringify({ query_type: "QUERY", entries: ["frames"], when: { $each_n: 8 } }),
    });
    const { id } = (await created.json()) as { id: number };
    const { counts, stop: done } = instrumentR2();
    stop = done;
    const bodies: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      const response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": String(id) } });
      if (response.status === 204) break;
      bodies.push(new Uint8Array(await response.arrayBuffer()));
    }
    const received = new Uint8Array(bodies.reduce((sum, body) => sum + body.byteLength, 0));
    let offset = 0;
    for (const body of bodies) {
      received.set(body, offset);
      offset += body.byteLength;
    }
    // Records 8, 16, …, 64 of the fill (every 8th); each is 100 KiB.
    const expected = Array.from({ length: 8 }, (_, i) => bytesOf(100 * 1024, 8 * (i + 1)));
    expect(received.byteLength).toBe(8 * 100 * 1024);
    expected.forEach((record, i) => {
      expect(received.subarray(i * 100 * 1024, (i + 1) * 100 * 1024)).toEqual(record);
    });
    // Only the selected records' bytes were downloaded, not the 6.4 MB block.
    expect(counts.bytesRead).toBe(8 * 100 * 1024);
  });
});

describe("a long scan yields between calls", () => {
  it("one readQuery call scans a bounded number of rows; other calls run between the calls of a scan", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const stub = stubOf(bucket);
    const rows = 2 * MAX_SCANNED_ROWS_PER_CALL + 500;
    for (let i = 0; i < rows; i += 1000) {
      const items = Array.from({ length: Math.min(1000, rows - i) }, (_, j) => ({
        meta: {
          entry: "e",
          ts: 1_000_000 + i + j,
          size: 1,
          contentType: "text/plain",
          labels: { hit: i + j === rows - 1 ? "yes" : "no" },
        },
        payload: new Uint8Array([1]).buffer as ArrayBuffer,
      }));
      expect((await stub.writeRecords(items)).ok).toBe(true);
    }
    const created = await stub.createQuery({
      kind: "entry",
      entries: ["e"],
      start: null,
      stop: null,
      ttlSeconds: 60,
      continuous: false,
      onlyMetadata: false,
      strict: false,
      when: { "&hit": { $eq: "yes" } },
    });
    if (!created.ok) throw new Error("query not created");
    const limits = { maxRecords: 85, maxBytes: 8_000_000, maxMetadataBytes: 16_000, contiguousEntries: false };

    const first = await stub.readQuery(created.id, { kind: "entry", entry: "e" }, limits, true);
    if (!first.ok) throw new Error("read failed");
    expect({ empty: first.batch.empty, last: first.batch.last, commit: first.commit }).toEqual({
      empty: true,
      last: false,
      commit: null,
    });
    const cursor = await runInDurableObject(stub, (_instance, state) =>
      JSON.parse(
        state.storage.sql.exec<{ cursors: string }>("SELECT cursors FROM queries WHERE id = ?", created.id).one().cursors,
      ),
    );
    // The empty call kept its progress: exactly one call's worth of rows.
    expect(cursor.e.after).toBe(1_000_000 + MAX_SCANNED_ROWS_PER_CALL - 1);

    // The rest of the scan, with another request sent right behind each call: it runs in between.
    const order: string[] = [];
    for (let call = 0; call < 10; call++) {
      const read = stub.readQuery(created.id, { kind: "entry", entry: "e" }, limits, true).then((result) => {
        order.push("read");
        return result;
      });
      const other = stub.getBucket().then(() => order.push("other"));
      const [result] = await Promise.all([read, other]);
      if (!result.ok) throw new Error("read failed");
      if (!result.batch.empty || result.batch.last) {
        expect(result.batch.records.map((record) => record.ts)).toEqual([1_000_000 + rows - 1]);
        break;
      }
    }
    // Both reads and both other calls completed: each call ended after its bounded slice (the cursor
    // check above), so the other calls were never held for the whole scan. Their relative order is
    // the scheduler's, not ours.
    expect([...order].sort()).toEqual(["other", "other", "read", "read"]);
  }, 120_000);
});
