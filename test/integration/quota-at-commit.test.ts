/**
 * A large upload is checked against the quota again when it commits: if the bucket's quota type
 * becomes HARD (from NONE or FIFO) while the bytes are in flight and the record no longer fits,
 * the write answers what HARD answers (400 `Quota of '<b>' exceeded`; per record on the batch
 * paths), the record never appears, the bucket's size is unchanged, and the uploaded R2 object is
 * collected. Through the Worker's fetch on the single, v1 batch and v2 batch write paths.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket } from "../helpers/records";

const SIZE = 300 * 1024;
const CHUNK = 16 * 1024;

/** A body that hands out one chunk per read and tells when the server has read `afterReads` chunks. */
function pacedBody(bytes: Uint8Array, afterReads: number) {
  let reads = 0;
  let offset = 0;
  let signal!: () => void;
  let release!: () => void;
  const reading = new Promise<void>((resolve) => {
    signal = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      reads += 1;
      if (reads === afterReads) {
        signal();
        await released;
      }
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + CHUNK));
      offset += CHUNK;
    },
  });
  return { stream, reading, release };
}

type Path = "single" | "v1" | "v2";

function send(path: Path, bucket: string, body: ReadableStream<Uint8Array>): Promise<Response> {
  const length = { "content-length": String(SIZE) };
  if (path === "single") return api("POST", `/b/${bucket}/big?ts=1`, { headers: length, body });
  if (path === "v1") {
    return api("POST", `/b/${bucket}/big/batch`, {
      headers: { ...length, "x-reduct-time-1": `${SIZE},application/octet-stream` },
      body,
    });
  }
  return api("POST", `/io/${bucket}/write`, {
    headers: {
      ...length,
      "x-reduct-entries": "big",
      "x-reduct-start-ts": "1",
      "x-reduct-0-0": `${SIZE},application/octet-stream`,
    },
    body,
  });
}

/** The write's failure: the request's own error or its record's. */
function failure(response: Response): string | null {
  if (response.status !== 200) return `${response.status},${response.headers.get("x-reduct-error")}`;
  for (const [name, value] of response.headers) if (name.startsWith("x-reduct-error-")) return value;
  return null;
}

async function r2Keys(): Promise<Set<string>> {
  const keys = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await env.RECORDS.list({ cursor });
    for (const object of page.objects) keys.add(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
  return keys;
}

/** Makes every delayed R2 deletion of the bucket due now and runs its alarm. */
async function collectGarbageNow(bucket: string): Promise<void> {
  const stub = env.BUCKETS.getByName(bucket);
  await runInDurableObject(stub, (_instance, state) => {
    state.storage.sql.exec("UPDATE r2_garbage SET not_before_ms = 0");
  });
  await runDurableObjectAlarm(stub);
}

describe("a large upload's commit re-checks a quota that became HARD", () => {
  for (const from of ["NONE", "FIFO"] as const) {
    for (const path of ["single", "v1", "v2"] as const) {
      it(`${from} → HARD during a ${path} upload: 400 Quota exceeded, nothing stored, object collected`, async () => {
        const bucket = uniqueName("quota-commit");
        await createBucket(bucket, from === "FIFO" ? { quota_type: "FIFO", quota_size: 10_000_000 } : undefined);
        const before = await r2Keys();
        const sizeBefore = (await bucketInfo(bucket)).info.size;

        const body = pacedBody(bytesOf(SIZE, 7), 3);
        const answer = send(path, bucket, body.stream);
        await body.reading;
        const settings = await api("PUT", `/b/${bucket}`, {
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ quota_type: "HARD", quota_size: 100_000 }),
        });
        await settings.arrayBuffer();
        expect(settings.status).toBe(200);
        body.release();
        const response = await answer;
        await response.arrayBuffer();

        expect(failure(response)).toBe(`400,Quota of '${bucket}' exceeded`);
        const read = await api("GET", `/b/${bucket}/big?ts=1`);
        await read.arrayBuffer();
        expect(read.status).toBe(404);
        expect((await bucketInfo(bucket)).info.size).toBe(sizeBefore);
        await collectGarbageNow(bucket);
        expect([...(await r2Keys())].filter((key) => !before.has(key))).toEqual([]);
        // The timestamp is free again, for a record that fits.
        const small = await api("POST", `/b/${bucket}/big?ts=1`, { body: "fits" });
        await small.arrayBuffer();
        expect(small.status).toBe(200);
      });
    }
  }

  it("an upload that still fits the new HARD quota commits", async () => {
    const bucket = uniqueName("quota-commit");
    await createBucket(bucket);
    const before = await r2Keys();
    const body = pacedBody(bytesOf(SIZE, 8), 3);
    const answer = send("single", bucket, body.stream);
    await body.reading;
    const settings = await api("PUT", `/b/${bucket}`, { body: JSON.stringify({ quota_type: "HARD", quota_size: 1_000_000 }) });
    await settings.arrayBuffer();
    body.release();
    const response = await answer;
    await response.arrayBuffer();
    expect(failure(response)).toBeNull();
    const read = await api("HEAD", `/b/${bucket}/big?ts=1`);
    expect(read.status).toBe(200);
    await collectGarbageNow(bucket);
    expect([...(await r2Keys())].filter((key) => !before.has(key))).toHaveLength(1);
  });
});
