/**
 * Labels with an empty value, as ReductStore treats them: single and v1 batch writes store them
 * (a small and a large single write alike); a v2 write reads `k=` as "no such label" (its values
 * are deltas); every update path reads an empty value as "remove". A stored empty label reads back
 * as an empty `x-reduct-label-<name>` header (single reads), `k=` (v1 batches) and `idx=` (v2
 * batches, where clients read it as absent).
 */
import { describe, expect, it } from "vitest";
import { api } from "../helpers/http";
import { bytesOf, createBucket } from "../helpers/records";

const LARGE = 200 * 1024;

async function ok(response: Response): Promise<Response> {
  await response.arrayBuffer();
  expect(response.status, response.headers.get("x-reduct-error") ?? "").toBe(200);
  for (const [name, value] of response.headers) expect(name.startsWith("x-reduct-error-"), `${name}: ${value}`).toBe(false);
  return response;
}

/** Label headers of a single-record read, empty values included. */
async function singleLabels(bucket: string, entry: string, ts: number, method = "GET"): Promise<Record<string, string>> {
  const response = await api(method, `/b/${bucket}/${entry}?ts=${ts}`);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([n, v]) => [n.slice(15), v]),
  );
}

async function queryId(path: string, body: Record<string, unknown>): Promise<string> {
  const response = await api("POST", path, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  expect(response.status).toBe(200);
  return String(((await response.json()) as { id: number }).id);
}

/** The header lines of the first batch of a query (v1 `…/batch?q=` or v2 `/io/:bucket/read`). */
async function firstBatch(bucket: string, entry: string, protocol: "v1" | "v2"): Promise<Record<string, string>> {
  let response: Response;
  if (protocol === "v1") {
    const id = await queryId(`/b/${bucket}/${entry}/q`, {});
    response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
  } else {
    const id = await queryId(`/io/${bucket}/q`, { entries: [entry] });
    response = await api("GET", `/io/${bucket}/read`, { headers: { "x-reduct-query-id": id } });
  }
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return Object.fromEntries(response.headers);
}

describe("empty label values", () => {
  it("single writes (small and large) store them; every read path returns them as ReductStore renders them", async () => {
    const bucket = `empty-labels-${crypto.randomUUID().slice(0, 8)}`;
    await createBucket(bucket);
    const labelled = { "x-reduct-label-a": "", "x-reduct-label-b": "1" };
    await ok(await api("POST", `/b/${bucket}/e?ts=1`, { headers: { ...labelled, "content-type": "text/plain" }, body: "x" }));
    await ok(
      await api("POST", `/b/${bucket}/e?ts=2`, { headers: { ...labelled, "content-type": "text/plain" }, body: bytesOf(LARGE) }),
    );
    for (const ts of [1, 2]) {
      expect(await singleLabels(bucket, "e", ts)).toEqual({ a: "", b: "1" });
      expect(await singleLabels(bucket, "e", ts, "HEAD")).toEqual({ a: "", b: "1" });
    }
    const single = await queryId(`/b/${bucket}/e/q`, {});
    const viaQuery = await api("GET", `/b/${bucket}/e?q=${single}`);
    await viaQuery.arrayBuffer();
    expect(viaQuery.headers.get("x-reduct-label-a")).toBe("");

    const v1 = await firstBatch(bucket, "e", "v1");
    expect(v1["x-reduct-time-1"]).toBe("1,text/plain,a=,b=1");
    expect(v1["x-reduct-time-2"]).toBe(`${LARGE},text/plain,a=,b=1`);
    const v2 = await firstBatch(bucket, "e", "v2");
    expect(v2["x-reduct-labels"]).toBe("a,b");
    expect(v2["x-reduct-0-0"]).toBe("1,text/plain,0=,1=1");
    expect(v2["x-reduct-0-1"]).toBe(`${LARGE}`);
  });

  it("a v1 batch write stores them; a v2 write reads `k=` as no label", async () => {
    const bucket = `empty-labels-${crypto.randomUUID().slice(0, 8)}`;
    await createBucket(bucket);
    await ok(await api("POST", `/b/${bucket}/v1/batch`, { headers: { "x-reduct-time-5": "1,text/plain,a=,b=1" }, body: "x" }));
    expect(await singleLabels(bucket, "v1", 5)).toEqual({ a: "", b: "1" });
    expect((await firstBatch(bucket, "v1", "v1"))["x-reduct-time-5"]).toBe("1,text/plain,a=,b=1");

    await ok(
      await api("POST", `/io/${bucket}/write`, {
        headers: {
          "x-reduct-entries": "v2",
          "x-reduct-start-ts": "5",
          "x-reduct-labels": "a,b",
          "x-reduct-0-0": "1,text/plain,0=,1=1",
          "x-reduct-0-1": "1,text/plain,0=x,1=",
        },
        body: "xy",
      }),
    );
    expect(await singleLabels(bucket, "v2", 5)).toEqual({ b: "1" });
    expect(await singleLabels(bucket, "v2", 6)).toEqual({ a: "x" });
  });

  it("an update with an empty value removes the label on every update path", async () => {
    const bucket = `empty-labels-${crypto.randomUUID().slice(0, 8)}`;
    await createBucket(bucket);
    await ok(await api("POST", `/b/${bucket}/e/batch`, { headers: { "x-reduct-time-1": "1,,a=,b=1,c=2,d=3" }, body: "x" }));
    await ok(await api("PATCH", `/b/${bucket}/e?ts=1`, { headers: { "x-reduct-label-a": "", "x-reduct-label-z": "9" } }));
    expect(await singleLabels(bucket, "e", 1)).toEqual({ b: "1", c: "2", d: "3", z: "9" });
    await ok(await api("PATCH", `/b/${bucket}/e/batch`, { headers: { "x-reduct-time-1": "0,,b=" } }));
    expect(await singleLabels(bucket, "e", 1)).toEqual({ c: "2", d: "3", z: "9" });
    await ok(
      await api("PATCH", `/io/${bucket}/update`, {
        headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "0,,c=" },
      }),
    );
    expect(await singleLabels(bucket, "e", 1)).toEqual({ d: "3", z: "9" });
  });
});
