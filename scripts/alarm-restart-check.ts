// Black-box check that a bucket object's alarm survives a stop of `npm start` in the middle of an
// alarm run: local workerd fires alarms from its own list beside each object's stored alarm, and a
// stop (SIGKILL or SIGTERM) while a run is under way leaves the object's next alarm out of that
// list. Without the launcher setting such alarms again at the start, a lifecycle run stops for
// good: no alarm fires, and the object only repairs itself when a request reaches it and the
// alarm is a minute overdue. Here: a dry_run policy with a 1 µs processing interval over 3,000
// records (one alarm pass per record), the server SIGKILLed mid-run, started again, and then no
// request but GET /lifecycles/:name, which does not touch the alarm; the run must finish within
// 150 s (the launcher sets alarms past their time again at the start, and every 10 s those 20 s
// past their time: workerd loses one now and then while it runs too).
//   node --import tsx scripts/alarm-restart-check.ts   (ports from HARNESS_PORTS when set)
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sleep, startServer, stopAllServers } from "./lib/server.ts";

const RECORDS = 3000;

interface LifecycleInfo {
  info: { is_running: boolean; last_run_result: { matched_records?: number } | null };
}

async function lifecycle(url: string, name: string): Promise<LifecycleInfo> {
  const response = await fetch(`${url}/api/v1/lifecycles/${name}`);
  assert.equal(response.status, 200, `GET /lifecycles/${name} answered ${response.status}`);
  return (await response.json()) as LifecycleInfo;
}

async function seed(url: string, bucket: string, policy: string): Promise<void> {
  const created = await fetch(`${url}/api/v1/b/${bucket}`, { method: "POST" });
  assert.equal(created.status, 200, `POST /b/${bucket} answered ${created.status}`);
  for (let start = 0; start < RECORDS; start += 100) {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 100; i++) headers[`x-reduct-time-${1_000_000 + (start + i) * 1000}`] = "1,application/octet-stream";
    const written = await fetch(`${url}/api/v1/b/${bucket}/a/batch`, { method: "POST", headers, body: "x".repeat(100) });
    assert.equal(written.status, 200, `batch write answered ${written.status}`);
    await written.arrayBuffer();
  }
  const settings = {
    type: "delete",
    bucket,
    entries: ["a"],
    older_than: "1h",
    interval: "1h",
    processing_interval: "1us",
    mode: "dry_run",
  };
  const made = await fetch(`${url}/api/v1/lifecycles/${policy}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  assert.equal(made.status, 200, `POST /lifecycles/${policy} answered ${made.status}`);
}

async function main(): Promise<boolean> {
  const dataPath = mkdtempSync(path.join(os.tmpdir(), "alarm-restart-"));
  const logPath = path.join(dataPath, "server.log");
  const state = path.join(dataPath, "state");
  let ok = false;
  try {
    let server = await startServer({ tag: "alarm-restart", dataPath: state, logPath, ports: process.env.HARNESS_PORTS });
    await seed(server.url, "dense", "tiny");
    // Mid-run: the run has started and is far from done.
    for (let i = 0; i < 100 && !(await lifecycle(server.url, "tiny")).info.is_running; i++) await sleep(100);
    await sleep(1000);
    assert.equal((await lifecycle(server.url, "tiny")).info.is_running, true, "the run ended before the kill");
    await server.kill("SIGKILL");
    server = await server.restart();
    const started = Date.now();
    let last: LifecycleInfo | null = null;
    while (Date.now() - started < 150_000) {
      last = await lifecycle(server.url, "tiny");
      if (!last.info.is_running && last.info.last_run_result !== null) break;
      await sleep(2000);
    }
    assert.ok(last && !last.info.is_running, `the run did not resume after the restart: ${JSON.stringify(last?.info)}`);
    assert.equal(last.info.last_run_result?.matched_records, RECORDS);
    console.log(`alarm-restart-check: ok - the run resumed after a SIGKILL mid-run and matched ${RECORDS} records`);
    ok = true;
  } catch (error) {
    console.error(`alarm-restart-check: FAILED - ${error instanceof Error ? error.message : String(error)} (kept: ${dataPath})`);
  } finally {
    await stopAllServers();
    if (ok) rmSync(dataPath, { recursive: true, force: true });
  }
  return ok;
}

process.exitCode = (await main()) ? 0 : 1;
