#!/usr/bin/env node
// `npm run bench:e2e`: the end-to-end check of issue 6 item 5 (and issue 4's 100 MiB memory
// criterion) through the user path: `npx tsx scripts/start.ts` (Miniflare, as `npm start` runs it)
// driven by the official `reduct-js` client from npm.
//
//  1. copies what `npm start` runs into a temporary directory (so edits to src/ during the run do
//     not change the code under test) and starts it there with the harness's launcher
//     (scripts/lib/server.ts) on a free 127.0.0.1 port, with a temporary RS_DATA_PATH and a
//     random RS_API_TOKEN;
//  2. W2: writes N × 1 KiB records in batches of 80 with `bucket.beginWriteRecordBatch()` (batch
//     protocol v2: the server advertises API 1.21), once with one batch in flight (a plain
//     `await batch.send()` loop) and once with 8 in flight; per-batch latency is `send()` time;
//  3. W4: reads each W2 entry back with `bucket.query(entry)` (v2 batched reads), checking every
//     payload; per-batch time is the interval between the client's successive
//     `GET /io/<bucket>/read` requests (fetch, parse and consume one batch);
//  4. W3-e2e: uploads a 100 MiB record (twice, as two records: the first includes one-time warm-up)
//     as a ReadableStream (`beginWrite` + `write(stream, size)`,
//     so `x-reduct-content-length` is sent) while sampling VmRSS of every process of the server
//     (start.ts and its workerd) every 20 ms, and reads VmHWM after
//     resetting it (`echo 5 > /proc/<pid>/clear_refs`) where the kernel allows it; growth is the
//     peak minus the VmRSS just before that upload. Then reads the first back with `beginRead`
//     (memory sampled the same way) and checks the sha256.
//  5. prints a Markdown table and writes JSON to bench/results/ (gitignored), then stops the server
//     group (SIGTERM, SIGKILL after 5 s) and removes the temporary directory, on every exit path.
//
// Options: --records N (10000), --batch N (80), --size BYTES (1024), --big-mib N (100, 0 = skip),
//          --keep-alive (reduct-js defaults to `Connection: close` per request; this turns it off).
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Bucket } from "reduct-js";
import {
  descendantsOf,
  groupAlive,
  processStats,
  root,
  type Server,
  sleep,
  snapshotTree,
  startServer,
  stopAllServers,
  treeVersion,
} from "../scripts/lib/server.ts";
import { percentile } from "../scripts/lib/stats.ts";
import { resetPeakRss } from "./lib/proc.ts";

const RUN_BUDGET_MS = 15 * 60_000;
const SAMPLE_MS = 20;
const MiB = 1024 * 1024;

const { values: opts } = parseArgs({
  options: {
    records: { type: "string", default: "10000" },
    batch: { type: "string", default: "80" },
    size: { type: "string", default: "1024" },
    "big-mib": { type: "string", default: "100" },
    "keep-alive": { type: "boolean", default: false },
  },
});
const RECORDS = Number(opts.records);
const BATCH = Number(opts.batch);
const SIZE = Number(opts.size);
const BIG_MIB = Number(opts["big-mib"]);

const log = (...args: unknown[]): void => console.log(`[e2e ${((Date.now() - runStarted) / 1000).toFixed(1)}s]`, ...args);
const runStarted = Date.now();

// ---------------------------------------------------------------------------------------------
// Server lifecycle

const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-e2e-"));
const tree = path.join(workDir, "tree");
const dataPath = path.join(workDir, "state");
const logPath = path.join(workDir, "server.log");
const apiToken = randomBytes(16).toString("hex");
let server: Server | undefined;
let cleanedUp = false;

async function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  const stopped = await stopAllServers().then(() => !server || !groupAlive(server.pid));
  if (!stopped) console.error(`[e2e] WARNING: process group ${server?.pid} is still alive`);
  rmSync(workDir, { recursive: true, force: true });
}

process.on("exit", () => {
  try {
    rmSync(workDir, { recursive: true, force: true });
  } catch {}
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await cleanup();
    process.exit(130);
  });
}
const budget = setTimeout(async () => {
  console.error(`[e2e] run budget of ${RUN_BUDGET_MS / 60_000} min exceeded; aborting`);
  await cleanup();
  process.exit(2);
}, RUN_BUDGET_MS);
budget.unref();

// ---------------------------------------------------------------------------------------------
// Processes and memory

const readText = (file: string): string => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
};

/** Every process of the server with a role: start.ts (node) and the workerd it runs. */
/** A process of the server and what it is. */
interface ServerProcess {
  pid: number;
  role: string;
}

function serverProcesses(): ServerProcess[] {
  if (!server) throw new Error("no server is running");
  const out: ServerProcess[] = [{ pid: server.pid, role: "start.ts (node)" }];
  for (const pid of descendantsOf(server.pid)) {
    const comm = readText(`/proc/${pid}/comm`).trim();
    const args = readText(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
    let role = comm;
    if (comm === "workerd") role = "workerd runtime";
    else if (args.includes("wrangler")) role = `wrangler (${comm})`;
    if (comm === "workerd" && role === "workerd runtime" && out.some((p) => p.role === "workerd runtime")) {
      role = `workerd runtime ${pid}`;
    }
    out.push({ pid, role });
  }
  return out;
}

function memKiB(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  const stats = processStats(pid);
  return {
    rss: stats?.rssKiB ?? Number.NaN,
    hwm: stats?.hwmKiB ?? Number.NaN,
    anon: stats?.anonKiB ?? Number.NaN,
    file: stats?.fileKiB ?? Number.NaN,
  };
}

/** Samples VmRSS of `procs` every SAMPLE_MS until stopped; returns per-process peaks. */
function startSampler(procs: ServerProcess[]) {
  /** The entry of `pid` in a map made from `procs` (every one of them has one). */
  const of = <T>(map: Map<number, T>, pid: number): T => {
    const value = map.get(pid);
    if (value === undefined) throw new Error(`process ${pid} is not sampled`);
    return value;
  };
  const baseline = new Map(procs.map((p) => [p.pid, memKiB(p.pid)]));
  const hwmReset = new Map(procs.map((p) => [p.pid, resetPeakRss(p.pid)]));
  const maxRss = new Map(procs.map((p) => [p.pid, of(baseline, p.pid).rss]));
  const maxAnon = new Map(procs.map((p) => [p.pid, of(baseline, p.pid).anon]));
  let samples = 0;
  const timer = setInterval(() => {
    samples++;
    for (const p of procs) {
      const m = memKiB(p.pid);
      if (m.rss > of(maxRss, p.pid)) maxRss.set(p.pid, m.rss);
      if (m.anon > of(maxAnon, p.pid)) maxAnon.set(p.pid, m.anon);
    }
  }, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      return procs.map((p) => {
        const end = memKiB(p.pid);
        const base = of(baseline, p.pid);
        const hwmOk = hwmReset.get(p.pid) && Number.isFinite(end.hwm);
        const sampledMax = of(maxRss, p.pid);
        const peak = Math.max(sampledMax, hwmOk ? end.hwm : 0);
        return {
          pid: p.pid,
          role: p.role,
          baselineRssMiB: base.rss / 1024,
          peakRssMiB: peak / 1024,
          peakFrom: hwmOk && end.hwm >= sampledMax ? "VmHWM after clear_refs" : "max of 20 ms VmRSS samples",
          sampledMaxRssMiB: sampledMax / 1024,
          vmHwmMiB: hwmOk ? end.hwm / 1024 : null,
          growthMiB: (peak - base.rss) / 1024,
          anonGrowthMiB: (of(maxAnon, p.pid) - base.anon) / 1024,
          endRssMiB: end.rss / 1024,
          samples,
        };
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers

/** One measured workload of this run, as printed and saved. */
type Summary = ReturnType<typeof summarize>;

function summarize(
  name: string,
  records: number,
  bytes: number,
  seconds: number,
  latenciesMs: number[],
  extra: { readRequests?: number; concurrency?: number; protocol?: string; recordsPerBatch?: number; verified?: boolean } = {},
) {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    name,
    records,
    bytes,
    seconds,
    recordsPerSec: records / seconds,
    mbPerSec: bytes / 1e6 / seconds,
    batches: latenciesMs.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1),
    latenciesMs: latenciesMs.map((ms) => Math.round(ms * 10) / 10),
    ...extra,
  };
}

/** Deterministic payload of record `i` (so W4 can check every byte without keeping them all). */
function payload(i: number): Buffer {
  const buf = Buffer.alloc(SIZE);
  let x = (i + 1) * 2654435761;
  for (let j = 0; j < SIZE; j += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, j);
  }
  return buf.subarray(0, SIZE);
}

// Times every batched read request the client sends (reduct-js binds globalThis.fetch when a
// Client is constructed, so this wrapper must be installed first).
const readRequestStarts: number[] = [];
const originalFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? String(input) : input.url;
  if ((init?.method ?? "GET") === "GET" && /\/io\/[^/]+\/read$/.test(new URL(url).pathname)) {
    readRequestStarts.push(performance.now());
  }
  return originalFetch(input, init);
};

async function w2(bucket: Bucket, entry: string, tsBase: bigint, concurrency: number): Promise<Summary> {
  const batches = Math.ceil(RECORDS / BATCH);
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  async function worker() {
    for (;;) {
      const b = next++;
      if (b >= batches) return;
      const batch = bucket.beginWriteRecordBatch();
      for (let i = b * BATCH; i < Math.min(RECORDS, (b + 1) * BATCH); i++) {
        batch.add(entry, tsBase + BigInt(i), payload(i), "application/octet-stream", { n: i % 10 });
      }
      const s = performance.now();
      const errors = await batch.send();
      latencies.push(performance.now() - s);
      if (errors.size > 0) {
        const first = [...errors.values()][0];
        throw new Error(`batch ${b}: ${[...(first?.values() ?? [])][0]?.message ?? "error"} (${first?.size} errors)`);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return summarize(`W2 c=${concurrency}`, RECORDS, RECORDS * SIZE, seconds, latencies, {
    concurrency,
    protocol: "batch v2 (beginWriteRecordBatch → POST /io/<bucket>/write)",
  });
}

async function w4(bucket: Bucket, entry: string, tsBase: bigint, label: string): Promise<Summary> {
  readRequestStarts.length = 0;
  let records = 0;
  let bytes = 0;
  let mismatches = 0;
  const t0 = performance.now();
  for await (const record of bucket.query(entry)) {
    const data = await record.read();
    const i = Number(record.time - tsBase);
    if (!payload(i).equals(data)) mismatches++;
    records++;
    bytes += data.length;
  }
  const end = performance.now();
  const seconds = (end - t0) / 1000;
  const cycles: number[] = [];
  for (const [k, startedAt] of readRequestStarts.entries()) cycles.push((readRequestStarts[k + 1] ?? end) - startedAt);
  if (records !== RECORDS) throw new Error(`${label}: read ${records} records, expected ${RECORDS}`);
  if (mismatches) throw new Error(`${label}: ${mismatches} payloads differ from what was written`);
  return summarize(label, records, bytes, seconds, cycles, {
    protocol: "query → GET /io/<bucket>/q + batched GET /io/<bucket>/read (v2)",
    readRequests: readRequestStarts.length,
    recordsPerBatch: records / Math.max(1, readRequestStarts.length),
    verified: true,
  });
}

/** One BIG_MIB record uploaded as a stream at timestamp `ts`, with the server's memory sampled. */
async function w3Upload(bucket: Bucket, procs: ServerProcess[], ts: bigint) {
  const size = BIG_MIB * MiB;
  const chunk = 1 * MiB;
  await sleep(2_000); // idle before the baseline
  const hash = createHash("sha256");
  let sent = 0;
  const block = randomBytes(chunk);
  const body = new ReadableStream({
    pull(controller) {
      if (sent >= size) {
        controller.close();
        return;
      }
      const n = Math.min(chunk, size - sent);
      const out = Buffer.from(block.subarray(0, n));
      out.writeUInt32LE(sent / chunk, 0); // every chunk differs
      hash.update(out);
      sent += n;
      controller.enqueue(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
    },
  });
  const sampler = startSampler(procs);
  const t0 = performance.now();
  const record = await bucket.beginWrite("big", { ts, contentType: "application/octet-stream" });
  await record.write(body, BigInt(size));
  const seconds = (performance.now() - t0) / 1000;
  const memory = sampler.stop();
  return { ts, seconds, mbPerSec: size / 1e6 / seconds, sha256: hash.digest("hex"), memory };
}

/** Reads the record at `ts` back with `beginRead`, hashing the stream, with memory sampled. */
async function w3Read(bucket: Bucket, procs: ServerProcess[], upload: Upload) {
  const size = BIG_MIB * MiB;
  await sleep(1_000);
  const sampler = startSampler(procs);
  const t0 = performance.now();
  const readBack = await bucket.beginRead("big", upload.ts);
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const part of readBack.stream) {
    hash.update(part);
    bytes += part.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const memory = sampler.stop();
  const sha = hash.digest("hex");
  if (bytes !== size || sha !== upload.sha256) {
    throw new Error(`W3-e2e: read ${bytes} bytes with sha256 ${sha}, wrote ${size} with ${upload.sha256}`);
  }
  return { ts: upload.ts, seconds, mbPerSec: size / 1e6 / seconds, sha256Verified: true, memory };
}

/** Two uploads of BIG_MIB (the first one includes any one-time warm-up), then one read back. */
type Upload = Awaited<ReturnType<typeof w3Upload>>;

async function w3(bucket: Bucket) {
  const procs = serverProcesses();
  const uploads: Upload[] = [];
  for (const ts of [1n, 2n]) {
    const upload = await w3Upload(bucket, procs, ts);
    const runtime = upload.memory.find((m) => m.role === "workerd runtime");
    log(`  upload ${ts}: ${fmt(upload.mbPerSec, 1)} MB/s, workerd runtime +${fmt(runtime?.growthMiB, 1)} MiB`);
    uploads.push(upload);
  }
  const [first, second] = uploads;
  if (!first || !second) throw new Error("W3-e2e: two uploads expected");
  const both: [Upload, Upload] = [first, second];
  const read = await w3Read(bucket, procs, first);
  log(`  read back: ${fmt(read.mbPerSec, 1)} MB/s, sha256 ok`);
  return { name: `W3-e2e ${BIG_MIB} MiB`, bytes: BIG_MIB * MiB, uploads: both, read };
}

// ---------------------------------------------------------------------------------------------
// Run

const fmt = (n: number | null | undefined, d = 0): string =>
  typeof n === "number" && Number.isFinite(n)
    ? n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d })
    : "–";

async function main() {
  const loadBefore = os.loadavg();
  const { Client } = await import("reduct-js");
  const clientVersion = JSON.parse(readFileSync(path.join(root, "node_modules", "reduct-js", "package.json"), "utf8")).version;
  log(`load average ${loadBefore.map((l) => l.toFixed(2)).join(" ")} on ${os.cpus().length} CPUs`);
  const version = treeVersion();
  snapshotTree(tree);
  log(`starting node scripts/start.ts (snapshot of ${version})`);
  server = await startServer(
    { tag: "e2e server", dataPath, logPath, tree, env: { RS_API_TOKEN: apiToken, RS_INSTANCE_NAME: "e2e" } },
    120_000,
  );
  const startupSeconds = server.aliveSeconds;
  log(`alive after ${startupSeconds.toFixed(1)} s on ${server.url}`);

  const client = new Client(server.url, { apiToken, keepAlive: opts["keep-alive"] });
  const info = await client.getInfo();
  const apiVersion = (await originalFetch(`${server.url}/api/v1/alive`, { method: "HEAD" })).headers.get("x-reduct-api");
  log(`server ${info.version}, API ${apiVersion}, reduct-js ${clientVersion}, keepAlive ${opts["keep-alive"]}`);
  const bucket = await client.createBucket("e2e");

  const results: { w2: Summary[]; w4: Summary[]; w3?: Awaited<ReturnType<typeof w3>> } = { w2: [], w4: [] };
  for (const concurrency of [1, 8]) {
    const entry = `w2-c${concurrency}`;
    log(`W2: ${RECORDS} × ${SIZE} B in batches of ${BATCH}, ${concurrency} in flight → ${entry}`);
    const r = await w2(bucket, entry, 1_000_000n, concurrency);
    log(`  ${fmt(r.recordsPerSec)} rec/s, p50 ${fmt(r.p50Ms, 1)} ms, p99 ${fmt(r.p99Ms, 1)} ms`);
    results.w2.push(r);
  }
  for (const concurrency of [1, 8]) {
    const entry = `w2-c${concurrency}`;
    log(`W4: query ${entry}`);
    const r = await w4(bucket, entry, 1_000_000n, `W4 ${entry}`);
    log(`  ${fmt(r.recordsPerSec)} rec/s in ${r.readRequests} read requests, p50 ${fmt(r.p50Ms, 1)} ms`);
    results.w4.push(r);
  }
  if (BIG_MIB > 0) {
    log(`W3-e2e: one ${BIG_MIB} MiB record streamed, sampling RSS every ${SAMPLE_MS} ms`);
    results.w3 = await w3(bucket);
  }
  const loadAfter = os.loadavg();

  const lines = [];
  lines.push(
    `reduct-edge ${version} via \`npx tsx scripts/start.ts\` (Miniflare), reduct-js ${clientVersion} ` +
      `(keepAlive: ${opts["keep-alive"]}), server API ${apiVersion}; ${os.cpus().length} CPUs, Node ${process.version}; ` +
      `load average before ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, after ${loadAfter.map((l) => l.toFixed(2)).join(" ")}; ` +
      `server alive ${startupSeconds.toFixed(1)} s after spawn.`,
    "",
    "| workload | records | records/s | MB/s | batches | p50 per batch | p99 per batch |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const r of [...results.w2, ...results.w4]) {
    lines.push(
      `| ${r.name} | ${fmt(r.records)} | ${fmt(r.recordsPerSec)} | ${fmt(r.mbPerSec, 2)} | ${fmt(r.batches)} | ${fmt(r.p50Ms, 1)} ms | ${fmt(r.p99Ms, 1)} ms |`,
    );
  }
  if (results.w3) {
    const { uploads, read } = results.w3;
    const [u1, u2] = uploads;
    lines.push(
      "",
      `${results.w3.name}, streamed (ReadableStream + x-reduct-content-length): upload 1 ${fmt(u1.seconds, 1)} s (${fmt(u1.mbPerSec, 1)} MB/s), ` +
        `upload 2 ${fmt(u2.seconds, 1)} s (${fmt(u2.mbPerSec, 1)} MB/s), read back ${fmt(read.seconds, 1)} s (${fmt(read.mbPerSec, 1)} MB/s), sha256 verified. ` +
        `Growth = peak (max of VmHWM after clear_refs and ${SAMPLE_MS} ms VmRSS samples) − VmRSS just before that upload/read.`,
      "",
      "| process | VmRSS before upload 1 | growth upload 1 | growth upload 2 | RssAnon growth upload 1 / 2 | growth read |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const m of u1.memory) {
      const m2 = u2.memory.find((x) => x.pid === m.pid);
      const rm = read.memory.find((x) => x.pid === m.pid);
      lines.push(
        `| ${m.role} | ${fmt(m.baselineRssMiB, 1)} MiB | ${fmt(m.growthMiB, 1)} MiB | ${fmt(m2?.growthMiB, 1)} MiB | ${fmt(m.anonGrowthMiB, 1)} / ${fmt(m2?.anonGrowthMiB, 1)} MiB | ${fmt(rm?.growthMiB, 1)} MiB |`,
      );
    }
  }
  const table = lines.join("\n");
  console.log(`\n${table}\n`);

  mkdirSync(path.join(root, "bench", "results"), { recursive: true });
  const file = path.join(root, "bench", "results", `e2e-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        kind: "e2e",
        tree: version,
        node: process.version,
        cpus: os.cpus().length,
        loadBefore,
        loadAfter,
        reductJs: clientVersion,
        keepAlive: opts["keep-alive"],
        serverApi: apiVersion,
        options: { records: RECORDS, batch: BATCH, size: SIZE, bigMiB: BIG_MIB, sampleMs: SAMPLE_MS },
        startupSeconds,
        results,
        table,
      },
      (_key, value) => (typeof value === "bigint" ? value.toString() : value),
      2,
    )}\n`,
  );
  log(`wrote ${path.relative(root, file)}`);
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error("[e2e] FAILED:", error);
  try {
    console.error(`--- server log (last 40 lines) ---\n${readText(logPath).split("\n").slice(-40).join("\n")}`);
  } catch {}
} finally {
  log("stopping the server");
  await cleanup();
}
process.exit(failed ? 1 : 0);
