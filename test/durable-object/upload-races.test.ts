/**
 * Large uploads (reserve → R2 put → commit, the edge's own RPC sequence) racing bucket delete and
 * re-create, bucket rename, entry delete and rename, and FIFO eviction. A commit whose reservation
 * is gone answers 404 or 409 (never 500), a rename never carries reservations along, nothing is
 * left unreachable, and FIFO makes room for uploads in flight by evicting stored data.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BucketObject } from "../../src/bucket/bucket-object";
import { api, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket, putRecord } from "../helpers/records";

const stubOf = (bucket: string) => env.BUCKETS.getByName(bucket) as DurableObjectStub<BucketObject>;

const JSON_HEADERS = { "content-type": "application/json" };

const meta = (entry: string, ts: number, size: number) => ({
  entry,
  ts,
  size,
  contentType: "application/octet-stream",
  labels: {},
});

async function expectStatus(response: Response, status: number): Promise<void> {
  const text = await response.text();
  expect({ status: response.status, error: response.headers.get("x-reduct-error") }, text).toMatchObject({ status });
}

/** Every garbage row of the bucket's object is due now; the alarm runs. */
async function collectGarbageNow(bucket: string): Promise<void> {
  await runInDurableObject(stubOf(bucket), (_instance, state) => {
    state.storage.sql.exec("UPDATE r2_garbage SET not_before_ms = 0");
    state.storage.sql.exec("UPDATE pending_records SET lease_expires_at_ms = 0");
  });
  await runDurableObjectAlarm(stubOf(bucket));
}

async function pendingCount(bucket: string): Promise<number> {
  return runInDurableObject(
    stubOf(bucket),
    (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM pending_records").one().n,
  );
}

interface Race {
  name: string;
  /** Runs between the reservation and the commit. */
  meanwhile: (bucket: string) => Promise<void>;
  /** Acceptable commit statuses. */
  statuses: number[];
  /** Buckets whose objects' alarms must collect the orphan. */
  sweep: (bucket: string) => string[];
}

const renamedName = (bucket: string) => `${bucket}-renamed`;

const races: Race[] = [
  {
    name: "bucket deleted",
    meanwhile: async (b) => expectStatus(await api("DELETE", `/b/${b}`), 200),
    statuses: [404],
    sweep: (b) => [b],
  },
  {
    name: "bucket deleted and created again",
    meanwhile: async (b) => {
      await expectStatus(await api("DELETE", `/b/${b}`), 200);
      await createBucket(b, { quota_type: "HARD", quota_size: 1_000_000 });
    },
    statuses: [404, 409],
    sweep: (b) => [b],
  },
  {
    name: "entry removed",
    meanwhile: async (b) => expectStatus(await api("DELETE", `/b/${b}/big`), 200),
    statuses: [404, 409],
    sweep: (b) => [b],
  },
  {
    name: "entry removed and written again",
    meanwhile: async (b) => {
      await expectStatus(await api("DELETE", `/b/${b}/big`), 200);
      await putRecord(b, "big", 1, "new");
    },
    statuses: [404, 409],
    sweep: (b) => [b],
  },
  {
    name: "bucket renamed",
    meanwhile: async (b) =>
      expectStatus(
        await api("PUT", `/b/${b}/rename`, { headers: JSON_HEADERS, body: JSON.stringify({ new_name: renamedName(b) }) }),
        200,
      ),
    statuses: [404, 409],
    sweep: (b) => [b, renamedName(b)],
  },
  {
    name: "bucket renamed and its old name created again",
    meanwhile: async (b) => {
      await expectStatus(
        await api("PUT", `/b/${b}/rename`, { headers: JSON_HEADERS, body: JSON.stringify({ new_name: renamedName(b) }) }),
        200,
      );
      await createBucket(b);
    },
    statuses: [404, 409],
    sweep: (b) => [b, renamedName(b)],
  },
];

describe("a commit whose reservation went away answers 404 or 409 and leaves nothing behind", () => {
  for (const race of races) {
    it(race.name, async () => {
      const bucket = uniqueName();
      await createBucket(bucket, { quota_type: "HARD", quota_size: 1_000_000 });
      await putRecord(bucket, "big", 0, "first");
      const stub = stubOf(bucket);
      const ticket = await stub.reserveUpload(meta("big", 1, 900_000));
      if (!ticket.ok) throw new Error(ticket.error.message);
      await env.RECORDS.put(ticket.objectKey, bytesOf(900_000));

      await race.meanwhile(bucket);
      const committed = await stub.commitUpload("big", 1, ticket.objectKey);
      expect(committed.ok).toBe(false);
      if (!committed.ok) expect(race.statuses, committed.error.message).toContain(committed.error.status);
      await stub.abortUpload(ticket.objectKey); // what the edge does after a refused commit

      for (const name of race.sweep(bucket)) {
        expect(await pendingCount(name), `${name}: reservations`).toBe(0);
        await collectGarbageNow(name);
      }
      expect(await env.RECORDS.head(ticket.objectKey), "the uploaded object is collected").toBeNull();
    });
  }

  it("a renamed bucket carries no reservation: the timestamp is free and its quota unused", async () => {
    const bucket = uniqueName();
    const renamed = renamedName(bucket);
    await createBucket(bucket, { quota_type: "HARD", quota_size: 1_000_000 });
    const ticket = await stubOf(bucket).reserveUpload(meta("big", 1, 900_000));
    if (!ticket.ok) throw new Error(ticket.error.message);
    await expectStatus(
      await api("PUT", `/b/${bucket}/rename`, { headers: JSON_HEADERS, body: JSON.stringify({ new_name: renamed }) }),
      200,
    );
    expect(await pendingCount(renamed)).toBe(0);
    await expectStatus(await api("GET", `/b/${renamed}/big?ts=1`), 404);
    await putRecord(renamed, "big", 1, bytesOf(500_000));
    await putRecord(renamed, "other", 1, bytesOf(400_000));
    expect((await bucketInfo(renamed)).info.size).toBeLessThanOrEqual(1_000_000);
  });

  it("an upload whose entry is renamed meanwhile lands in the renamed entry", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 2_000_000 });
    await putRecord(bucket, "big", 0, "first");
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload(meta("big", 1, 300_000));
    if (!ticket.ok) throw new Error(ticket.error.message);
    await env.RECORDS.put(ticket.objectKey, bytesOf(300_000));
    await expectStatus(await api("PUT", `/b/${bucket}/big/rename`, { body: JSON.stringify({ new_name: "moved" }) }), 200);
    expect(await stub.commitUpload("big", 1, ticket.objectKey)).toEqual({ ok: true });
    const read = await api("GET", `/b/${bucket}/moved?ts=1`);
    expect(read.status).toBe(200);
    expect((await read.arrayBuffer()).byteLength).toBe(300_000);
    await expectStatus(await api("GET", `/b/${bucket}/big?ts=1`), 404);
  });
});

describe("FIFO makes room for uploads in flight by evicting stored data", () => {
  it("30 reservations of 150 KB in a 1 MB bucket all commit, evicting older records (staged ones too)", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 1_000_000, max_block_records: 2 });
    // Small records, still staged in SQLite, hold most of the quota before the uploads start.
    for (let i = 0; i < 8; i++) await putRecord(bucket, "small", 1 + i, bytesOf(100_000, i + 1));
    const stub = stubOf(bucket);
    const tickets = [];
    for (let i = 0; i < 30; i++) {
      const ticket = await stub.reserveUpload(meta("big", 100 + i, 150_000));
      expect(ticket.ok, `reservation ${i}: ${ticket.ok ? "" : ticket.error.message}`).toBe(true);
      if (ticket.ok) tickets.push({ ts: 100 + i, key: ticket.objectKey });
    }
    await Promise.all(tickets.map((ticket) => env.RECORDS.put(ticket.key, bytesOf(150_000, ticket.ts))));
    // Commits arrive in any order.
    for (const ticket of [...tickets].reverse()) {
      const committed = await stub.commitUpload("big", ticket.ts, ticket.key);
      expect(committed, `commit ${ticket.ts}`).toEqual({ ok: true });
    }
    const { info } = await bucketInfo(bucket);
    expect(info.size as number).toBeLessThanOrEqual(1_000_000 + 30 * 100);
    await expectStatus(await api("GET", `/b/${bucket}/small?ts=1`), 404);
    await expectStatus(await api("GET", `/b/${bucket}/big?ts=129`), 200);
  });

  it("30 concurrent 150 KB writes through the Worker into a 1 MB FIFO bucket all succeed", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 1_000_000 });
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => api("POST", `/b/${bucket}/big?ts=${1000 + i}`, { body: bytesOf(150_000, i + 1) })),
    );
    const outcomes = await Promise.all(
      responses.map(async (response) => {
        await response.text();
        return `${response.status} ${response.headers.get("x-reduct-error") ?? ""}`.trim();
      }),
    );
    expect(outcomes).toEqual(Array(30).fill("200"));
    const { info } = await bucketInfo(bucket);
    expect(info.size as number).toBeLessThanOrEqual(1_000_000 + 30 * 100);
    expect(await pendingCount(bucket)).toBe(0);
  });

  it("HARD still counts uploads in flight: racing reservations cannot overshoot together", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "HARD", quota_size: 1_000_000 });
    const stub = stubOf(bucket);
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await stub.reserveUpload(meta("big", 1 + i, 150_000)));
    expect(results.filter((result) => result.ok)).toHaveLength(6);
    const refused = results.find((result) => !result.ok);
    expect(refused && !refused.ok && refused.error).toEqual({ status: 400, message: `Quota of '${bucket}' exceeded` });
  });
});

describe("the object of an upload in flight stays tracked until its lease ends", () => {
  it("removing the entry keeps the upload's intent row until the lease, so a late put is still collected", async () => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const stub = stubOf(bucket);
    const ticket = await stub.reserveUpload(meta("big", 1, 10_000_000));
    if (!ticket.ok) throw new Error(ticket.error.message);
    const leaseEnd = await runInDurableObject(
      stub,
      (_instance, state) =>
        state.storage.sql.exec<{ at: number }>("SELECT lease_expires_at_ms AS at FROM pending_records").one().at,
    );
    await expectStatus(await api("DELETE", `/b/${bucket}/big`), 200);
    const notBefore = await runInDurableObject(
      stub,
      (_instance, state) =>
        state.storage.sql.exec<{ at: number }>("SELECT not_before_ms AS at FROM r2_garbage WHERE key = ?", ticket.objectKey).one()
          .at,
    );
    expect(notBefore).toBeGreaterThanOrEqual(leaseEnd);
  });
});
