// Black-box check of `$system` usage records through `npm start` and the official reduct-js
// client: with a 2 s window (RS_SYSTEM_EVENTS_USAGE_INTERVAL=2), records written and read in two
// buckets show up in `usage/<instance>/<bucket>` and `usage/<instance>/total` with the window's
// traffic. Run by scripts/smoke.ts, or alone: `npx tsx scripts/usage-check.ts` (RS_PORT picks the
// port, else a free one; never 8383; RS_DATA_PATH the state directory, else a fresh temporary one).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "reduct-js";
import { freePort, sleep, startServer } from "./lib/server.ts";

const WINDOW_S = 2;
const INSTANCE = "usage-check";
/** A window ends, the buckets hand it over at once and the report waits half a window for them. */
const REPORT_WAIT_MS = 20_000;

interface UsageBody {
  timestamp: number;
  instance: string;
  status: number;
  [field: string]: unknown;
}

async function latestUsage(client: Client, name: string): Promise<UsageBody | undefined> {
  const system = await client.getBucket("$system");
  const entries = await system.getEntryList();
  if (!entries.some((entry) => entry.name === `usage/${INSTANCE}/${name}`)) return undefined;
  // Through a query: reduct-js's single-record read parses an application/json body itself and
  // then refuses it as no stream.
  let latest: UsageBody | undefined;
  for await (const record of system.query(`usage/${INSTANCE}/${name}`)) {
    assert.equal(record.labels.status, "200");
    latest = JSON.parse((await record.read()).toString()) as UsageBody;
  }
  return latest;
}

/** Returns true when every check passed; prints one line per check. */
export async function runUsageCheck({ workDir, port }: { workDir: string; port?: number }): Promise<boolean> {
  const apiToken = randomBytes(16).toString("hex");
  const server = await startServer(
    {
      tag: "usage-check",
      port: port ?? (await freePort()),
      dataPath: path.join(workDir, "usage-state"),
      logPath: path.join(workDir, "usage-server.log"),
      env: { RS_API_TOKEN: apiToken, RS_INSTANCE_NAME: INSTANCE, RS_SYSTEM_EVENTS_USAGE_INTERVAL: String(WINDOW_S) },
    },
    120_000,
  );
  try {
    const client = new Client(server.url, { apiToken });
    const first = await client.createBucket("usage-first");
    const second = await client.createBucket("usage-second");
    // Start right after a window began, so every write and read below falls into one window.
    const windowMs = WINDOW_S * 1000;
    await sleep(windowMs - (Date.now() % windowMs) + 50);
    const started = Date.now();
    for (const [bucket, entry, size] of [
      [first, "a", 100],
      [first, "b", 50],
      [second, "a", 30],
    ] as const) {
      const record = await bucket.beginWrite(entry, BigInt(Date.now()) * 1000n);
      await record.write(Buffer.alloc(size));
    }
    await (await first.beginRead("a")).read();
    assert.ok(Date.now() - started < windowMs, "the writes and the read took longer than a window");

    const deadline = Date.now() + REPORT_WAIT_MS;
    let usage: Record<string, UsageBody | undefined> = {};
    while (Date.now() < deadline) {
      usage = {
        first: await latestUsage(client, "usage-first"),
        second: await latestUsage(client, "usage-second"),
        total: await latestUsage(client, "total"),
      };
      if (usage.first && usage.second && usage.total) break;
      await sleep(500);
    }
    assert.ok(usage.first && usage.second && usage.total, `usage records missing: ${JSON.stringify(usage)}`);
    assert.deepEqual(
      [usage.first.write_bytes, usage.first.records_written, usage.first.written_entries, usage.first.read_bytes],
      [150, 2, 2, 100],
    );
    assert.deepEqual([usage.second.write_bytes, usage.second.records_written, usage.second.records_read], [30, 1, 0]);
    assert.deepEqual([usage.total.write_bytes, usage.total.records_written, usage.total.read_bytes], [180, 3, 100]);
    assert.equal(usage.total.timestamp, usage.first.timestamp, "the total and the buckets share the window's end");
    assert.equal(usage.total.timestamp % (windowMs * 1000), 0, "timestamps are window ends");
    assert.equal(usage.total.instance, INSTANCE);
    assert.equal(usage.total.bucket_count, 2);
    assert.equal(usage.first.record_count, 2);
    console.log("usage-check: ok - usage records of two buckets and the total read back through reduct-js");
    return true;
  } catch (error) {
    console.log(`usage-check: not ok - ${String((error as Error)?.stack ?? error).replace(/\n/g, "\n    ")}`);
    return false;
  } finally {
    await server.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const workDir = process.env.RS_DATA_PATH ?? mkdtempSync(path.join(os.tmpdir(), "reduct-edge-usage-"));
  const port = process.env.RS_PORT ? Number(process.env.RS_PORT) : undefined;
  const ok = await runUsageCheck({ workDir, port });
  if (!process.env.RS_DATA_PATH) rmSync(workDir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}
