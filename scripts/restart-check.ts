// Black-box acceptance check run by scripts/smoke.ts after the test files: what a user stored
// survives a restart of `npm start` on the same RS_DATA_PATH (records in R2 and the bucket object,
// bucket registry and tokens in D1), and RS_INSTANCE_NAME reaches /info on each start; /info's
// uptime counts from when the restarted server started, not from its first /info; a token the
// restart provisions from RS_TOKEN_<ID>_* works with its value and is protected.
// It talks to the servers only through HTTP, with the official reduct-js client where it can.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { type Bucket, Client, QuotaType } from "reduct-js";
import { fieldOf, stackOf, statusOf } from "./lib/errors.ts";
import { showVersionNoticeOnce } from "./lib/reduct-js-quiet.ts";
import type { Server, ServerOptions } from "./lib/server.ts";

showVersionNoticeOnce();

const BUCKET = "restart-check";
const ENTRY = "site-1/sensor-7";
const TS = 1_700_000_000_000_000n;
const md5 = (data: string | Buffer): string => createHash("md5").update(data).digest("hex");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function infoOf(url: string, apiToken: string): Promise<{ instance_name: string }> {
  const response = await fetch(`${url}/api/v1/info`, { headers: { Authorization: `Bearer ${apiToken}` } });
  assert.equal(response.status, 200, `GET /api/v1/info answered ${response.status}`);
  return (await response.json()) as { instance_name: string };
}

async function instanceNameOf(url: string, apiToken: string): Promise<string> {
  return (await infoOf(url, apiToken)).instance_name;
}

/**
 * `first` is smoke.ts's running server; `restart` stops it and starts it again on the same state
 * with the changes given (smoke.ts keeps track of every server it started). Returns true when
 * every check passed; prints one line per check.
 */
export async function runRestartCheck({
  first,
  restart,
  apiToken,
  instanceName,
  logPath,
}: {
  first: Server;
  restart: (changes: Partial<ServerOptions>) => Promise<Server>;
  apiToken: string;
  instanceName: string;
  logPath: string;
}) {
  let ok = true;
  const check = async (name: string, fn: () => Promise<void>): Promise<boolean> => {
    try {
      await fn();
      console.log(`restart-check: ok - ${name}`);
      return true;
    } catch (error) {
      ok = false;
      // reduct-js throws APIError objects (status + x-reduct-error message, no stack).
      const status = statusOf(error);
      const detail =
        stackOf(error) ?? (status ? `APIError ${status}: ${fieldOf(error, "message")}` : (fieldOf(error, "message") ?? error));
      console.log(`restart-check: not ok - ${name}\n${String(detail).replace(/^/gm, "    ")}`);
      return false;
    }
  };

  const payload = randomBytes(256 * 1024);
  const labels = { run: randomBytes(4).toString("hex"), kind: "blob" };
  const before: {
    readerToken?: string;
    info?: Awaited<ReturnType<Bucket["getInfo"]>>;
    entries?: Awaited<ReturnType<Bucket["getEntryList"]>>;
    settings?: Awaited<ReturnType<Bucket["getSettings"]>>;
  } = {};

  const written = await check("before restart: RS_INSTANCE_NAME reaches /info; write a bucket, records and a token", async () => {
    assert.equal(await instanceNameOf(first.url, apiToken), instanceName);

    const client = new Client(first.url, { apiToken });
    const bucket = await client.createBucket(BUCKET, {
      maxBlockRecords: 64n,
      quotaType: QuotaType.HARD,
      quotaSize: 10_000_000n,
    });
    let record = await bucket.beginWrite(ENTRY, { ts: TS, labels, contentType: "application/x-smoke" });
    await record.write(payload);
    record = await bucket.beginWrite(ENTRY, { ts: TS + 1n, contentType: "text/plain" });
    await record.write("the latest record");

    before.readerToken = await client.createToken("restart-reader", { fullAccess: false, read: [BUCKET] });
    before.info = await bucket.getInfo();
    before.entries = await bucket.getEntryList();
    before.settings = await bucket.getSettings();
    assert.equal(before.info.entryCount, 2n, "entries site-1 and site-1/sensor-7");
  });
  if (!written) return false;

  const restartedName = `${instanceName}-restarted`;
  // The restart also provisions a token; its value is the operator's, not a generated one.
  const provisionedName = "restart-provisioned";
  const provisionedValue = `provisioned secret ${randomBytes(8).toString("hex")}`;
  let second: Server | undefined;
  const alive = await check("restarted server answers HEAD /api/v1/alive", async () => {
    second = await restart({
      tag: "restarted server",
      logPath,
      env: {
        RS_API_TOKEN: apiToken,
        RS_INSTANCE_NAME: restartedName,
        RS_TOKEN_RC_NAME: provisionedName,
        RS_TOKEN_RC_VALUE: provisionedValue,
        RS_TOKEN_RC_READ: BUCKET,
      },
    });
  });
  if (!alive || !second) return false;
  const restarted: Server = second;
  try {
    // Asked before anything else calls /info: the clock must not start with the first /info.
    await check("after restart: /info uptime counts from the start (>= 2 s when asked 3 s after /alive answered)", async () => {
      await sleep(3_000);
      // As reduct-js reports it (reduct-py's test__info asserts uptime >= 1 after sleeping 1 s).
      const { uptime } = await new Client(restarted.url, { apiToken }).getInfo();
      assert.ok(uptime >= 2n, `uptime ${uptime} s, 3 s after /alive first answered`);
      const sinceRestart = (Date.now() - restarted.startedAt) / 1000;
      assert.ok(
        Number(uptime) <= Math.ceil(sinceRestart),
        `uptime ${uptime} s, but the server was restarted ${sinceRestart} s ago`,
      );
    });

    const client = new Client(restarted.url, { apiToken });
    await check("after restart: RS_INSTANCE_NAME of the new start reaches /info", async () => {
      assert.equal(await instanceNameOf(restarted.url, apiToken), restartedName);
    });
    await check("after restart: the record reads back with its bytes, labels and content type", async () => {
      const bucket = await client.getBucket(BUCKET);
      const record = await bucket.beginRead(ENTRY, TS);
      assert.equal(record.time, TS);
      assert.equal(record.size, BigInt(payload.length));
      assert.equal(record.contentType, "application/x-smoke");
      assert.deepEqual(record.labels, labels);
      const bytes = await record.read();
      assert.equal(bytes.length, payload.length);
      assert.equal(md5(bytes), md5(payload));
      const head = await bucket.beginRead(ENTRY, TS, true);
      assert.equal(head.size, BigInt(payload.length));
    });
    await check("after restart: the latest record is still the latest", async () => {
      const bucket = await client.getBucket(BUCKET);
      const latest = await bucket.beginRead(ENTRY);
      assert.equal(latest.time, TS + 1n);
      assert.equal(latest.contentType, "text/plain");
      assert.equal(await latest.readAsString(), "the latest record");
    });
    await check("after restart: bucket info, entries and settings are unchanged", async () => {
      const bucket = await client.getBucket(BUCKET);
      assert.deepEqual(await bucket.getInfo(), before.info);
      assert.deepEqual(await bucket.getEntryList(), before.entries);
      assert.deepEqual(await bucket.getSettings(), before.settings);
      const listed = (await client.getBucketList()).find((info) => info.name === BUCKET);
      assert.deepEqual(listed, before.info);
      // /info spans every bucket, the server's own $system too, which may gain an audit record
      // between the two calls: the registry's totals are at least what /list showed just before.
      const buckets = await client.getBucketList();
      const info = await client.getInfo();
      const usage = buckets.reduce((sum, listedBucket) => sum + listedBucket.size, 0n);
      const latest = buckets.reduce(
        // biome-ignore lint/complexity/useMathMinMax: bigints; Math.max takes numbers only
        (max, listedBucket) => (listedBucket.latestRecord > max ? listedBucket.latestRecord : max),
        0n,
      );
      assert.ok(info.usage >= usage, `usage ${info.usage} < ${usage}`);
      assert.ok(info.latestRecord >= latest, `latest ${info.latestRecord} < ${latest}`);
      if (!buckets.some((listedBucket) => listedBucket.name.startsWith("$"))) {
        assert.equal(info.usage, usage);
        assert.equal(info.latestRecord, TS + 1n);
      }
    });
    await check("after restart: a token created before the restart still works", async () => {
      const reader = new Client(restarted.url, { apiToken: before.readerToken });
      const me = await reader.me();
      assert.equal(me.name, "restart-reader");
      const bucket = await reader.getBucket(BUCKET);
      const record = await bucket.beginRead(ENTRY, TS + 1n);
      assert.equal(await record.readAsString(), "the latest record");
      const token = await client.getToken("restart-reader");
      assert.deepEqual(token.permissions, { fullAccess: false, read: [BUCKET], write: [] });
    });
    await check("after restart: a token from RS_TOKEN_<ID>_* works with its value and cannot be removed", async () => {
      const provisioned = new Client(restarted.url, { apiToken: provisionedValue });
      const me = await provisioned.me();
      assert.equal(me.name, provisionedName);
      assert.equal(me.isProvisioned, true);
      assert.deepEqual(me.permissions, { fullAccess: false, read: [BUCKET], write: [] });
      const record = await (await provisioned.getBucket(BUCKET)).beginRead(ENTRY, TS + 1n);
      assert.equal(await record.readAsString(), "the latest record");
      const listed = (await client.getTokenList()).find((token) => token.name === provisionedName);
      assert.equal(listed?.isProvisioned, true);
      await assert.rejects(client.deleteToken(provisionedName), (error: { status?: number; message?: string }) => {
        assert.equal(error?.status, 409);
        assert.equal(error?.message, `Can't remove provisioned token '${provisionedName}'`);
        return true;
      });
      await assert.rejects(client.rotateToken(provisionedName), (error: { status?: number; message?: string }) => {
        assert.equal(error?.status, 409);
        assert.equal(error?.message, `Can't rotate provisioned token '${provisionedName}'`);
        return true;
      });
      await assert.rejects(new Client(restarted.url, { apiToken: `${provisionedValue}x` }).me(), (error: { status?: number }) => {
        assert.equal(error?.status, 401);
        return true;
      });
    });
    await check("after restart: the bucket can still be written to and removed", async () => {
      const bucket = await client.getBucket(BUCKET);
      const record = await bucket.beginWrite(ENTRY, TS + 2n);
      await record.write("after restart");
      await assert.rejects(
        (async () => {
          const duplicate = await bucket.beginWrite(ENTRY, TS);
          await duplicate.write("duplicate");
        })(),
        (error: { status?: number }) => error?.status === 409,
      );
      await bucket.remove();
      await client.deleteToken("restart-reader");
    });
  } finally {
    await restarted.stop();
  }
  return ok;
}
