/**
 * Lifecycle policies through `npm start` with reduct-js, as its Lifecycle tests use them: create,
 * get and list (reduct-js parses `last_run` as a date), mode, update, delete. A policy runs at once
 * when created, so `last_run` is set by the time the client reads it back.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LifecycleSettings } from "reduct-js";
import { makeClient } from "./helpers.ts";

const client = makeClient();
const BUCKET = "lifecycles-blackbox";
const NAME = "lifecycle-blackbox";
const settings = { bucket: BUCKET, entries: ["entry-1"], olderThan: "1h", interval: "10m" } as LifecycleSettings;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function removeLeftovers(): Promise<void> {
  await client.deleteLifecycle(NAME).catch(() => {});
  await (await client.getBucket(BUCKET).catch(() => null))?.remove().catch(() => {});
}

describe("lifecycles", () => {
  before(async () => {
    await removeLeftovers();
    await client.createBucket(BUCKET);
  });
  after(removeLeftovers);

  it("create, then get and list once the policy has run", async () => {
    await client.createLifecycle(NAME, settings);
    const deadline = Date.now() + 10_000;
    let full = await client.getLifecycle(NAME);
    while (full.info.lastRun === undefined && Date.now() < deadline) {
      await sleep(100);
      full = await client.getLifecycle(NAME);
    }
    assert.equal(full.info.name, NAME);
    assert.equal(full.info.isProvisioned, false);
    assert.ok(full.info.lastRun instanceof Date, "last_run is a time");
    assert.ok(!Number.isNaN(full.info.lastRun.getTime()), `last_run ${String(full.info.lastRun)} is a valid time`);
    assert.equal(full.settings.bucket, BUCKET);
    assert.deepEqual(full.settings.entries, ["entry-1"]);
    const listed = (await client.getLifecycleList()).find((info) => info.name === NAME);
    assert.ok(listed?.lastRun instanceof Date);
  });

  it("mode, update and delete", async () => {
    await client.setLifecycleMode(NAME, "dry_run" as never);
    assert.equal((await client.getLifecycle(NAME)).info.mode, "dry_run");
    await client.updateLifecycle(NAME, { ...settings, entries: ["entry-2"], when: { "&a": { $eq: 1 } } } as LifecycleSettings);
    const updated = await client.getLifecycle(NAME);
    assert.deepEqual(updated.settings.entries, ["entry-2"]);
    // reduct-js parses JSON into null-prototype objects.
    assert.deepEqual(JSON.parse(JSON.stringify(updated.settings.when)), { "&a": { $eq: 1 } });
    await client.deleteLifecycle(NAME);
    await assert.rejects(client.getLifecycle(NAME), (error: { status?: number }) => error.status === 404);
  });
});
