/**
 * A body that declares its length, sends part of it and then goes quiet while the connection stays
 * open gets 400 `Timeout while receiving data` after the I/O timeout (`RS_IO_OPERATION_TIMEOUT`,
 * 1 s here), on every write path, small and large records alike. Nothing of the record in flight is
 * stored, its timestamp and quota reservation are free again.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { SMALL_RECORD_MAX_BYTES } from "../../src/storage/blocks";
import { CODINGS, compressIncompressible } from "../helpers/encoding";
import { api, BASE, expectError, TOKEN, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket } from "../helpers/records";

const IO_TIMEOUT_S = 1;
const STALL = "Timeout while receiving data";
const LARGE = SMALL_RECORD_MAX_BYTES + 64 * 1024;

/** Sends `sent` of a body and then nothing, never closing it; returns the answer and how long it took. */
async function stalledRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  sent: Uint8Array,
): Promise<{ response: Response; elapsedMs: number; cancelled: Promise<boolean> }> {
  let markCancelled: (value: boolean) => void = () => {};
  const cancelled = new Promise<boolean>((resolve) => {
    markCancelled = resolve;
  });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (sent.byteLength > 0) controller.enqueue(sent);
    },
    cancel() {
      markCancelled(true);
    },
  });
  const request = new Request(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
    body,
  });
  const started = Date.now();
  const response = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    { ...env, RS_IO_OPERATION_TIMEOUT: String(IO_TIMEOUT_S) },
    createExecutionContext(),
  );
  return { response, elapsedMs: Date.now() - started, cancelled };
}

async function expectStalled(result: Awaited<ReturnType<typeof stalledRequest>>): Promise<void> {
  await expectError(result.response, 400, STALL);
  expect(result.elapsedMs).toBeGreaterThanOrEqual(IO_TIMEOUT_S * 1000 - 50);
  expect(result.elapsedMs).toBeLessThan(IO_TIMEOUT_S * 1000 + 4000);
  // The request body is let go, so the connection does not stay held.
  expect(await Promise.race([result.cancelled, new Promise((resolve) => setTimeout(() => resolve(false), 2000))])).toBe(true);
}

async function status(path: string): Promise<number> {
  const response = await api("GET", path);
  await response.arrayBuffer();
  return response.status;
}

/** After the stall: the record is absent and its timestamp can be written again. */
async function expectFreeAgain(bucket: string, entry: string, ts: number, size: number): Promise<void> {
  expect(await status(`/b/${bucket}/${entry}?ts=${ts}`)).toBe(404);
  const retry = await api("POST", `/b/${bucket}/${entry}?ts=${ts}`, { body: bytesOf(size, 9) });
  await retry.arrayBuffer();
  expect(retry.status).toBe(200);
}

describe("a stalled body gets 400 Timeout while receiving data", () => {
  for (const [what, size, sent] of [
    ["small record", 100, 10],
    ["small record, nothing sent", 100, 0],
    ["large record streamed to R2", LARGE, 64 * 1024],
  ] as const) {
    it(`single write: ${what}`, { timeout: 15_000 }, async () => {
      const bucket = uniqueName("stall");
      await createBucket(bucket, { quota_type: "HARD", quota_size: LARGE * 2 });
      const result = await stalledRequest("POST", `/b/${bucket}/e?ts=5`, { "content-length": String(size) }, bytesOf(sent));
      await expectStalled(result);
      await expectFreeAgain(bucket, "e", 5, size);
      // The quota reservation of the stalled upload is released: the retry is all the bucket holds.
      const { info } = await bucketInfo(bucket);
      expect(info.size).toBeLessThan(size + 200);
    });
  }

  for (const [what, sizes, sent] of [
    ["small records", [10, 100], 10 + 50],
    ["a large record", [10, LARGE], 10 + 64 * 1024],
  ] as const) {
    it(`v1 batch: ${what}; records received in full stay, the one in flight is absent`, { timeout: 15_000 }, async () => {
      const bucket = uniqueName("stall-v1");
      await createBucket(bucket);
      const headers: Record<string, string> = { "content-length": String(sizes[0] + sizes[1]) };
      headers["x-reduct-time-1"] = `${sizes[0]},text/plain`;
      headers["x-reduct-time-2"] = `${sizes[1]},text/plain`;
      await expectStalled(await stalledRequest("POST", `/b/${bucket}/e/batch`, headers, bytesOf(sent)));
      expect(await status(`/b/${bucket}/e?ts=1`)).toBe(200);
      await expectFreeAgain(bucket, "e", 2, sizes[1]);
    });

    it(`v2 write: ${what}; records received in full stay, the one in flight is absent`, { timeout: 15_000 }, async () => {
      const bucket = uniqueName("stall-v2");
      await createBucket(bucket);
      const headers: Record<string, string> = {
        "content-length": String(sizes[0] + sizes[1]),
        "x-reduct-entries": "a,b",
        "x-reduct-start-ts": "1",
        "x-reduct-0-0": `${sizes[0]},text/plain`,
        "x-reduct-1-1": `${sizes[1]},text/plain`,
      };
      await expectStalled(await stalledRequest("POST", `/io/${bucket}/write`, headers, bytesOf(sent)));
      expect(await status(`/b/${bucket}/a?ts=1`)).toBe(200);
      await expectFreeAgain(bucket, "b", 2, sizes[1]);
    });
  }

  for (const coding of CODINGS) {
    it(`${coding} v1 batch: a compressed body that stalls inside a large record; the record is absent`, {
      timeout: 15_000,
    }, async () => {
      const bucket = uniqueName("stall-enc");
      await createBucket(bucket);
      const packed = compressIncompressible(coding, bytesOf(10 + LARGE, 3));
      const headers = {
        "content-encoding": coding,
        "x-reduct-time-1": "10,text/plain",
        "x-reduct-time-2": `${LARGE},text/plain`,
      };
      await expectStalled(await stalledRequest("POST", `/b/${bucket}/e/batch`, headers, packed.subarray(0, 10 + 64 * 1024)));
      await expectFreeAgain(bucket, "e", 2, LARGE);
    });

    it(`${coding} single write: a compressed large record that stalls is absent`, { timeout: 15_000 }, async () => {
      const bucket = uniqueName("stall-enc");
      await createBucket(bucket);
      const packed = compressIncompressible(coding, bytesOf(LARGE, 4));
      const headers = { "content-encoding": coding, "x-reduct-content-length": String(LARGE) };
      await expectStalled(await stalledRequest("POST", `/b/${bucket}/e?ts=5`, headers, packed.subarray(0, 64 * 1024)));
      await expectFreeAgain(bucket, "e", 5, LARGE);
    });
  }

  it("RS_IO_OPERATION_TIMEOUT must be a whole number of seconds", async () => {
    const response = await worker.fetch(
      new Request(`${BASE}/info`, { headers: { authorization: `Bearer ${TOKEN}` } }) as Request<
        unknown,
        IncomingRequestCfProperties
      >,
      { ...env, RS_IO_OPERATION_TIMEOUT: "soon" },
      createExecutionContext(),
    );
    expect(response.status).toBe(500);
    expect(response.headers.get("x-reduct-error")).toContain("RS_IO_OPERATION_TIMEOUT");
    await response.arrayBuffer();
  });
});
