/**
 * Replications through `npm start` with reduct-js, as its replication tests use them: create, list,
 * get (reduct-js parses info, settings and diagnostics), mode, update, delete. The replication
 * targets the same server (another bucket), so it also really sends: a record written to the source
 * arrives in the target bucket and the diagnostics count it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ReplicationSettings } from "reduct-js";
import { API_TOKEN, makeClient, STORAGE_URL } from "./helpers.ts";

const client = makeClient();
const SRC = "replication-blackbox-src";
const DST = "replication-blackbox-dst";
const NAME = "replication-blackbox";
const settings = {
  srcBucket: SRC,
  dstBucket: DST,
  dstHost: STORAGE_URL,
  dstToken: API_TOKEN,
  entries: ["sensor-*"],
} as ReplicationSettings;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function removeLeftovers(): Promise<void> {
  await client.deleteReplication(NAME).catch(() => {});
  for (const name of [SRC, DST]) await (await client.getBucket(name).catch(() => null))?.remove().catch(() => {});
}

describe("replications", () => {
  before(async () => {
    await removeLeftovers();
    await client.createBucket(SRC);
  });
  after(removeLeftovers);

  it("create, list and get; a matching write arrives in the target bucket", async () => {
    await client.createReplication(NAME, settings);
    const listed = (await client.getReplicationList()).find((info) => info.name === NAME);
    assert.ok(listed, "listed");
    assert.equal(listed.isProvisioned, false);
    assert.equal(typeof listed.pendingRecords, "bigint");

    const source = await client.getBucket(SRC);
    const writer = await source.beginWrite("sensor-1", { ts: 1_000_000n, labels: { kind: "a" } });
    await writer.write("replicated bytes");
    const skipped = await source.beginWrite("other", 1_000_000n);
    await skipped.write("not replicated");

    // The target bucket is created by the sender (GET 404, then POST).
    const deadline = Date.now() + 20_000;
    let arrived: string | undefined;
    while (arrived === undefined && Date.now() < deadline) {
      try {
        const record = await (await client.getBucket(DST)).beginRead("sensor-1", 1_000_000n);
        arrived = await record.readAsString();
        assert.deepEqual({ ...record.labels }, { kind: "a" });
      } catch {
        await sleep(200);
      }
    }
    assert.equal(arrived, "replicated bytes");
    await assert.rejects((await client.getBucket(DST)).beginRead("other", 1_000_000n));

    const full = await client.getReplication(NAME);
    assert.equal(full.info.name, NAME);
    assert.equal(full.info.pendingRecords, 0n);
    assert.equal(full.info.isActive, true);
    assert.equal(full.settings.srcBucket, SRC);
    assert.equal(full.settings.dstBucket, DST);
    assert.equal(full.settings.dstToken, null, "the token is never shown back");
    assert.deepEqual(full.settings.entries, ["sensor-*"]);
    assert.ok(full.diagnostics.hourly.ok >= 1n, `ok ${full.diagnostics.hourly.ok}`);
    assert.equal(full.diagnostics.hourly.errored, 0n);
  });

  it("mode, update and delete", async () => {
    await client.setReplicationMode(NAME, "paused" as never);
    assert.equal((await client.getReplication(NAME)).info.mode, "paused");
    await client.updateReplication(NAME, {
      ...settings,
      entries: ["sensor-2"],
      when: { "&kind": { $eq: "b" } },
    } as ReplicationSettings);
    const updated = await client.getReplication(NAME);
    assert.deepEqual(updated.settings.entries, ["sensor-2"]);
    // reduct-js parses JSON into null-prototype objects.
    assert.deepEqual(JSON.parse(JSON.stringify(updated.settings.when)), { "&kind": { $eq: "b" } });
    await client.deleteReplication(NAME);
    await assert.rejects(client.getReplication(NAME), (error: { status?: number }) => error.status === 404);
  });
});
