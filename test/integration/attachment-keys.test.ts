/**
 * Attachments (`$meta` records) are found and replaced by their `key` label, so no two records of
 * a `$meta` entry may share a key. A write with a taken key replaces the older attachment; a label
 * update that would give a record a key another record holds is refused with 422 on every update
 * path (single PATCH, v1 `PATCH …/batch`, v2 `/io` update), changing nothing, also when the same
 * request frees the key afterwards or two of its items would end with one key.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket, putRecord } from "../helpers/records";

const taken = (entry: string, key: string) => `An attachment of '${entry}' already has key '${key}'`;

/** `x/$meta` with attachments k1 @1, k2 @2, k3 @3 (k3 a tombstone), and a bucket-level `$meta` with k1 @1. */
async function setup(): Promise<string> {
  const bucket = uniqueName("attachment-keys");
  await createBucket(bucket);
  await putRecord(bucket, "x", 1, "data");
  for (const ts of [1, 2, 3]) await putRecord(bucket, "x/$meta", ts, `{"n":${ts}}`, { labels: { key: `k${ts}` } });
  const tombstone = await api("PATCH", `/b/${bucket}/x/$meta?ts=3`, { headers: { "x-reduct-label-remove": "true" } });
  await tombstone.arrayBuffer();
  expect(tombstone.status).toBe(200);
  await putRecord(bucket, "$meta", 1, "{}", { labels: { key: "k1" } });
  return bucket;
}

async function keysOf(bucket: string, entry: string, timestamps: number[]): Promise<Array<string | null>> {
  const keys: Array<string | null> = [];
  for (const ts of timestamps) {
    const response = await api("HEAD", `/b/${bucket}/${entry}?ts=${ts}`);
    expect(response.status).toBe(200);
    keys.push(response.headers.get("x-reduct-label-key"));
  }
  return keys;
}

const unchanged = async (bucket: string) => {
  expect(await keysOf(bucket, "x/$meta", [1, 2, 3])).toEqual(["k1", "k2", "k3"]);
  expect(await keysOf(bucket, "$meta", [1])).toEqual(["k1"]);
};

describe("a label update never gives two attachments one key", () => {
  for (const key of ["k1", "k3"]) {
    it(`single PATCH: key of another attachment (${key === "k3" ? "a tombstone" : "live"}) → 422`, async () => {
      const bucket = await setup();
      const response = await api("PATCH", `/b/${bucket}/x/$meta?ts=2`, { headers: { "x-reduct-label-key": key } });
      await expectError(response, 422, taken("x/$meta", key));
      await unchanged(bucket);
    });
  }

  it("v1 PATCH …/batch: per record; a swap is refused item by item; the rest applies", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/b/${bucket}/x/$meta/batch`, {
      headers: { "x-reduct-time-1": "0,,key=k2", "x-reduct-time-2": "0,,key=k1", "x-reduct-time-3": "0,,note=n" },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-error-1")).toBe(`422,${taken("x/$meta", "k2")}`);
    expect(response.headers.get("x-reduct-error-2")).toBe(`422,${taken("x/$meta", "k1")}`);
    expect(response.headers.get("x-reduct-error-3")).toBeNull();
    await unchanged(bucket);
  });

  it("v1 PATCH …/batch: two items of one request ending with one new key → the second is refused", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/b/${bucket}/x/$meta/batch`, {
      headers: { "x-reduct-time-1": "0,,key=new", "x-reduct-time-2": "0,,key=new" },
    });
    await response.arrayBuffer();
    expect(response.headers.get("x-reduct-error-1")).toBeNull();
    expect(response.headers.get("x-reduct-error-2")).toBe(`422,${taken("x/$meta", "new")}`);
    expect(await keysOf(bucket, "x/$meta", [1, 2])).toEqual(["new", "k2"]);
  });

  it("v1 PATCH …/batch: moving a key to a record once an earlier item freed it applies", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/b/${bucket}/x/$meta/batch`, {
      headers: { "x-reduct-time-1": "0,,key=k9", "x-reduct-time-2": "0,,key=k1" },
    });
    await response.arrayBuffer();
    expect([...response.headers.keys()].filter((name) => name.startsWith("x-reduct-error-"))).toEqual([]);
    expect(await keysOf(bucket, "x/$meta", [1, 2])).toEqual(["k9", "k1"]);
  });

  it("v2 /io update: per record, across entries; keys are per entry", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/io/${bucket}/update`, {
      headers: {
        "x-reduct-entries": "x%2F$meta,$meta",
        "x-reduct-start-ts": "1",
        "x-reduct-0-1": "0,,key=k1",
        "x-reduct-1-0": "0,,key=k2",
      },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-error-0-1")).toBe(`422,${taken("x/$meta", "k1")}`);
    // k2 is taken in x/$meta only: the bucket-level $meta may use it.
    expect(response.headers.get("x-reduct-error-1-0")).toBeNull();
    expect(await keysOf(bucket, "x/$meta", [1, 2, 3])).toEqual(["k1", "k2", "k3"]);
    expect(await keysOf(bucket, "$meta", [1])).toEqual(["k2"]);
  });

  it("an update that keeps a record's own key, or sets other labels, applies", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/b/${bucket}/x/$meta?ts=1`, {
      headers: { "x-reduct-label-key": "k1", "x-reduct-label-v": "2" },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
    await unchanged(bucket);
  });
});
