/**
 * Shared helpers of the black-box suite (`npm run smoke`). Every `*.test.ts` in this folder talks to a
 * running server through the official `reduct-js` client, exactly as a user would; scripts/smoke.ts
 * starts that server and passes its address in STORAGE_URL and its init token in RS_API_TOKEN.
 *
 * One file per area: client, bucket, records, token, server. The query and batch areas (reduct-js
 * picks their protocols from the advertised `x-reduct-api` minor) get their own files
 * (`query.test.ts`, `batch.test.ts`) when the server implements them; they can reuse
 * `cleanStorage` and `createFixtureBucket` from here.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Bucket, type BucketInfo, Client, QuotaType } from "reduct-js";
import { showVersionNoticeOnce } from "../../scripts/lib/reduct-js-quiet.ts";

showVersionNoticeOnce();

export const STORAGE_URL = process.env.STORAGE_URL || "http://127.0.0.1:8383";
export const API_TOKEN = process.env.RS_API_TOKEN || "";

if (!API_TOKEN) {
  throw new Error("RS_API_TOKEN must be set to the server's init token (scripts/smoke.ts does this)");
}

/** A client authenticated with the init token, or with `apiToken` if given. */
export function makeClient(apiToken = API_TOKEN) {
  return new Client(STORAGE_URL, { apiToken });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The server's own buckets (`$system`) as a full-access client lists them: tests count and compare
 * only the buckets they made, as reduct-js' own suite does.
 */
export async function userBuckets(client: Client): Promise<BucketInfo[]> {
  return (await client.getBucketList()).filter((info) => !info.name.startsWith("$"));
}

export async function systemBucketCount(client: Client): Promise<bigint> {
  const all = await client.getBucketList();
  return BigInt(all.filter((info) => info.name.startsWith("$")).length);
}

/**
 * As reduct-js' test helper: removes every bucket whose name does not start with `$` (waiting until
 * it has left `/list`, since removal may be asynchronous) and every token except `init-token`.
 */
export async function cleanStorage(client: Client): Promise<void> {
  const buckets = (await client.getBucketList()).filter((info) => !info.name.startsWith("$"));
  await Promise.all(
    buckets
      .filter((info) => info.status !== "DELETING")
      .map(async (info) => {
        const bucket = await client.getBucket(info.name);
        await bucket.remove();
      }),
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = (await client.getBucketList()).filter((info) => !info.name.startsWith("$"));
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`buckets still listed 10 s after removal: ${left.map((info) => info.name).join(", ")}`);
    }
    await sleep(50);
  }
  const tokens = await client.getTokenList();
  await Promise.all(tokens.filter((token) => token.name !== "init-token").map((token) => client.deleteToken(token.name)));
}

/**
 * reduct-js' Bucket.test.ts fixture: bucket `bucket` (64000000 / 256 / 0 / NONE); `entry-1` holds one
 * 9-byte record with three labels at 1 s; `entry-2` holds three 9-byte records at 2, 3 and 4 s.
 */
export async function createFixtureBucket(client: Client): Promise<Bucket> {
  const bucket = await client.createBucket("bucket", {
    maxBlockSize: 64000000n,
    maxBlockRecords: 256n,
    quotaSize: 0n,
    quotaType: QuotaType.NONE,
  });
  let rec = await bucket.beginWrite("entry-1", {
    ts: 1000_000n,
    labels: { label1: "label1", label2: 100n, label3: true },
  });
  await rec.write("somedata1");

  rec = await bucket.beginWrite("entry-2", 2000_000n);
  await rec.write("somedata2");

  rec = await bucket.beginWrite("entry-2", 3000_000n);
  await rec.write("somedata3");

  rec = await bucket.beginWrite("entry-2", 4000_000n);
  await rec.write("somedata4");
  return bucket;
}

/**
 * Asserts that `promise` rejects with a reduct-js APIError of `status` (a number or a list of
 * acceptable numbers) and, when given, exactly `message` (the server's `x-reduct-error`).
 */
export async function assertApiError(promise: Promise<unknown>, status: number | number[], message?: string): Promise<void> {
  await assert.rejects(promise, (error: { status?: number; message?: string } | undefined) => {
    const allowed = Array.isArray(status) ? status : [status];
    assert.ok(
      error?.status !== undefined && allowed.includes(error.status),
      `expected an APIError with status ${allowed.join(" or ")}, got status ${error?.status}: ${error?.message}`,
    );
    if (message !== undefined) assert.equal(error?.message, message);
    return true;
  });
}

/** `items[index]`, asserting that it is there (a missing one fails the test as the access would have). */
export function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  assert.ok(item !== undefined, `no item ${index} among ${items.length}`);
  return item;
}

export const md5 = (data: Buffer | string): string => createHash("md5").update(data).digest("hex");

/** Concatenates a web ReadableStream of Uint8Array chunks into one Buffer. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (value) chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Collects every item of an async iterable (reduct-js' tests use `it-all` for this). */
export async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** Resolves like `promise`, or rejects with `what` timed out after `ms` milliseconds. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
