#!/usr/bin/env node
// `npm run soak [-- --minutes M --rate R --quick --server S --baseline]`: the soak test (steady
// load, flat memory), black box against `npm start` (the Worker under Miniflare directly).
//
//  1. Starts the server detached (its own process group) on a free 127.0.0.1 port with a fresh
//     temporary RS_DATA_PATH and a random RS_API_TOKEN; creates bucket `soak`. `--server`:
//     miniflare = `npx tsx scripts/start.ts` (one workerd, the bindings of wrangler.toml); noop = the
//     no-op Worker scripts/lib/noop-worker.ts under the same `npm start`, answering the same
//     request mix (the runtime's own memory curve; only statuses are checked).
//  2. Sends a fixed-rate, open-loop mixed load over 8 keep-alive connections for M minutes:
//     70% small single writes (0–4 KiB, labels sha256 and n), 20% reads of records written earlier
//     (bytes checked), 10% batches and queries (v1 batch writes, v2 /io batch writes, entry
//     queries read with v1 batch reads). Latency is measured from each request's scheduled time,
//     so a server that falls behind shows it.
//  3. Samples every 10 s from the start of the load the workerd process that runs the Worker (found
//     under the server's process group): VmRSS,
//     its anonymous and file-backed parts, and the number of open fds. With workerd's inspector
//     (default; --no-inspect: off) also the V8 heaps of its isolates, and a
//     full GC is forced at minute 2 (the reference; the first quarter of a shorter run) and after
//     the load, to read what the Worker's isolate still holds.
//  4. Reads back everything at the end: every entry listed with a query, each record's bytes
//     compared with what was written, and the record counts of GET /api/v1/b/soak.
// Prints unexpected statuses (goal 0), p50/p99 latency per kind, memory over time and the read-back.
// Memory verdict (scripts/lib/soak-memory.ts): the Worker's JS heap after a full GC must not grow
// (+4 MiB at most) and its ArrayBuffers stay within the block cache's bound; RSS must level off
// (last half of the run < +20 %, or with `--baseline` at most 10 points above the no-op Worker's
// last-half growth under the same stack and load); open fds < +20 %. Raw RSS figures are printed
// either way. `--baseline` runs the no-op first (doubling the run time).
// Exits 1 on any unexpected status, read-back mismatch, or (runs of ≥ 4 minutes) a memory check.
// Bounded: fixed duration, a client backlog cap, per-request timeouts, listing bounds, a run budget.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { z } from "zod";
import { renderV1Batch, renderV2Batch, v1BatchErrors, v2BatchErrors } from "./lib/batch-codec.ts";
import { codeOf, fieldOf } from "./lib/errors.ts";
import { createHttpClient, errorOf, type HttpClient, type HttpResponse } from "./lib/http-client.ts";
import { collectGarbage, type HeapFigures, type HeapUsage, heapUsage } from "./lib/inspector.ts";
import { tsNodeArgs } from "./lib/node-ts.ts";
import { payloadOf, Rng, randomSeed, sha256Hex, sizeOf } from "./lib/prng.ts";
import { entryPath, listEntryV1, queryIdOf } from "./lib/reduct.ts";
import {
  freePort,
  type ProcessStats,
  processStats,
  SERVER_KINDS,
  type Server,
  type ServerKind,
  sleep,
  snapshotTree,
  startServer,
  treeVersion,
  unhandledErrorLines,
} from "./lib/server.ts";
import { type MemoryFigures, type MemorySample, memoryFigures, memoryVerdict, rssLine } from "./lib/soak-memory.ts";
import { percentile } from "./lib/stats.ts";

const { values: options } = parseArgs({
  options: {
    minutes: { type: "string" },
    rate: { type: "string" },
    seed: { type: "string" },
    quick: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    "live-tree": { type: "boolean", default: false },
    server: { type: "string", default: "miniflare" },
    json: { type: "string" },
    inspect: { type: "boolean" },
    "no-inspect": { type: "boolean", default: false },
    baseline: { type: "boolean", default: false },
    "no-baseline": { type: "boolean", default: false },
    "baseline-json": { type: "string" },
    "as-baseline": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (options.help) {
  console.log(`usage: npx tsx scripts/soak.ts [--minutes M] [--rate R] [--seed S] [--quick] [--keep]
  --minutes M  load duration (default 10; --quick: 1)
  --rate R     requests per second, fixed (default 100)
  --seed S     seed of the workload (printed)
  --keep       keep the temporary directory (state, server log)
  --live-tree  run the repository itself instead of a snapshot copy taken at the start (the code
               under test then is whatever the tree holds when the server starts)
  --server S   miniflare (default): \`npm start\` (the Worker under Miniflare directly, one workerd);
               noop: a no-op Worker (scripts/lib/noop-worker.ts) under the same \`npm start\`
               answering the same request mix (the runtime's own memory; statuses only, no read-back)
  --inspect    read the V8 heaps of every isolate through workerd's inspector and force a full GC at
               minute 2 and at the end: the Worker-heap checks of the memory verdict. Default on;
               --no-inspect: off.
  --baseline   first run the no-op Worker under the same stack with the same load, length and seed,
               then judge RSS growth against it (doubles the run time). Default for runs of ≥ 4
               minutes; --no-baseline: judge RSS by its last-half growth alone (the runtime itself
               grows for 10+ minutes, so only long runs pass that)
  --baseline-json FILE  judge against an earlier no-op run's --json output instead
  --json FILE  also write the summary and every memory sample to FILE`);
  process.exit(0);
}
const MINUTES = Number(options.minutes ?? (options.quick ? 1 : 10));
const RATE = Number(options.rate ?? 100);
if (!(MINUTES > 0 && MINUTES <= 240)) throw new Error(`--minutes must be in (0, 240], got ${options.minutes}`);
if (!(RATE > 0 && RATE <= 2000)) throw new Error(`--rate must be in (0, 2000], got ${options.rate}`);
const SERVER = options.server;
if (!Object.hasOwn(SERVER_KINDS, SERVER)) throw new Error(`--server must be one of ${Object.keys(SERVER_KINDS).join(", ")}`);
/** The no-op Worker stores nothing: only statuses are checked, nothing is read back. */
const NOOP = SERVER === "noop";
const NOOP_OF = "noop";
const INSPECT = !options["no-inspect"];
if ((options.baseline || options["baseline-json"]) && NOOP) throw new Error("--baseline is for a run of reduct-edge");
let inspectorPort: number | undefined;
const SEED = options.seed ?? randomSeed();
const DURATION_MS = Math.round(MINUTES * 60_000);
const WARMUP_MS = Math.min(60_000, Math.round(DURATION_MS / 4));
const SAMPLE_EVERY_MS = 10_000;
/** The memory reference: minute 2, or the end of the warm-up (a quarter) of a run shorter than 4 minutes. */
const REFERENCE_MS = DURATION_MS >= 240_000 ? 120_000 : WARMUP_MS;
const CONNECTIONS = 8;
const MAX_BACKLOG = 2_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Pause between the end of the load and the final forced GC (see main). */
const SETTLE_MS = 10_000;
/** How RSS is judged: against a no-op run made first ("run"), an earlier one ("json"), or alone. */
const BASELINE_MODE =
  NOOP || options["as-baseline"]
    ? "none"
    : options["baseline-json"]
      ? "json"
      : options.baseline || (DURATION_MS >= 240_000 && !options["no-baseline"])
        ? "run"
        : "none";
const RUN_BUDGET_MS = (DURATION_MS + 300_000) * (BASELINE_MODE === "run" ? 2 : 1);
const BUCKET = "soak";
const ENTRIES: readonly [string, ...string[]] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
const BASE_TS = 1_700_000_000_000_000;

const runStarted = Date.now();
const elapsed = () => `${((Date.now() - runStarted) / 1000).toFixed(1)} s`;
const log = (...args: unknown[]): void => console.log(`soak [${elapsed()}]`, ...args);

const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-soak-"));
const apiToken = randomBytes(16).toString("hex");
const tree = options["live-tree"] ? undefined : snapshotTree(path.join(workDir, "tree"));
let server: Server | undefined;
let finishing = false;

async function finish(code: number): Promise<void> {
  if (finishing) return;
  finishing = true;
  baselineChild?.kill("SIGTERM");
  if (server) await server.stop();
  if (code !== 0 || options.keep) console.log(`soak: state and server log kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`soak: ${signal} received, stopping the server`);
    finish(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`soak: the run exceeded its budget of ${RUN_BUDGET_MS / 1000} s`);
  finish(1);
}, RUN_BUDGET_MS);
watchdog.unref();

// ---------------------------------------------------------------------------------------------
// Load

const rng = new Rng(SEED, "soak");
const tsOf = new Map(ENTRIES.map((entry) => [entry, BASE_TS]));
/** entry → Map ts → { size, sha } of every ACKed record. */
const written = new Map(ENTRIES.map((entry) => [entry, new Map<number, { size: number; sha: string }>()]));
/** entry → array of ACKed timestamps (for picking reads and query windows). */
const writtenTs = new Map(ENTRIES.map((entry): [string, number[]] => [entry, []]));
type OpKind = "write" | "read" | "batch" | "query";
const latencies: Record<OpKind, number[]> = { write: [], read: [], batch: [], query: [] };
const unexpected = new Map<string, number>();
const mismatches: string[] = [];
let indeterminate = 0;
let sequence = 0;
let issued = 0;
let completed = 0;
let dropped = 0;

/** The first unexpected answers in full (status, headers, body excerpt), for the report. */
const unexpectedSamples: {
  atS: string;
  request: string | undefined;
  status: number | undefined;
  headers: HttpResponse["headers"] | undefined;
  body: string | undefined;
}[] = [];
let loadStartedAt = 0;

function noteUnexpected(kind: string, what: string, response?: HttpResponse, request?: string) {
  const key = `${kind}: ${what}`;
  unexpected.set(key, (unexpected.get(key) ?? 0) + 1);
  if (unexpectedSamples.length < 5) {
    unexpectedSamples.push({
      atS: ((Date.now() - loadStartedAt) / 1000).toFixed(1),
      request,
      status: response?.status,
      headers: response?.headers,
      body: response?.body?.toString("utf8").slice(0, 300),
    });
  }
}

/** A record the soak writes. */
interface SoakRecord {
  entry: string;
  ts: number;
  data: Buffer;
  sha: string;
  contentType: string;
  labels: Record<string, string>;
}

/** The bookkeeping of an entry of ENTRIES (every one has it from the start). */
function ownOf<T>(map: Map<string, T>, entry: string): T {
  const own = map.get(entry);
  if (own === undefined) throw new Error(`soak: ${entry} is not one of the soak's entries`);
  return own;
}

function newRecord(entry: string): SoakRecord {
  const ts = ownOf(tsOf, entry) + rng.int(1, 1_000);
  tsOf.set(entry, ts);
  const size = sizeOf("small", SEED, BUCKET, entry, ts);
  const data = payloadOf(size, SEED, BUCKET, entry, ts);
  const sha = sha256Hex(data);
  return { entry, ts, data, sha, contentType: "application/octet-stream", labels: { sha256: sha, n: String(++sequence) } };
}

function remember(record: SoakRecord): void {
  ownOf(written, record.entry).set(record.ts, { size: record.data.length, sha: record.sha });
  ownOf(writtenTs, record.entry).push(record.ts);
}

async function opWrite(client: HttpClient): Promise<void> {
  const record = newRecord(rng.pick(ENTRIES));
  const headers: Record<string, string> = { "content-type": record.contentType };
  for (const [k, v] of Object.entries(record.labels)) headers[`x-reduct-label-${k}`] = v;
  const response = await client.request("POST", `${entryPath(BUCKET, record.entry)}?ts=${record.ts}`, {
    headers,
    body: record.data,
  });
  if (response.status === 200) remember(record);
  else noteUnexpected("write", `${response.status} ${errorOf(response)}`, response, `POST ${record.entry}?ts=${record.ts}`);
}

async function opRead(client: HttpClient): Promise<void> {
  const entry = rng.pick(ENTRIES);
  const stamps = ownOf(writtenTs, entry);
  const ts = stamps[rng.int(0, stamps.length - 1)];
  if (ts === undefined) return opWrite(client);
  const response = await client.request("GET", `${entryPath(BUCKET, entry)}?ts=${ts}`);
  if (response.status !== 200) {
    noteUnexpected("read", `${response.status} ${errorOf(response)}`, response, `GET ${entry}?ts=${ts}`);
    return;
  }
  const expected = ownOf(written, entry).get(ts);
  if (!NOOP && sha256Hex(response.body) !== expected?.sha)
    mismatches.push(`GET ${entry}@${ts}: bytes differ from what was written`);
}

async function opBatchV1(client: HttpClient): Promise<void> {
  const entry = rng.pick(ENTRIES);
  const records = Array.from({ length: rng.int(2, 10) }, () => newRecord(entry));
  const { headers, body } = renderV1Batch(
    records.map((r) => ({ ts: r.ts, contentType: r.contentType, labels: r.labels, data: r.data })),
  );
  const response = await client.request("POST", `${entryPath(BUCKET, entry)}/batch`, { headers, body });
  if (response.status !== 200) {
    noteUnexpected("batch v1", `${response.status} ${errorOf(response)}`, response, `POST ${entry}/batch`);
    return;
  }
  const errors = v1BatchErrors(response.headers);
  for (const record of records) {
    const error = errors.get(record.ts);
    if (error !== undefined) noteUnexpected("batch v1 record", error);
    else remember(record);
  }
}

async function opBatchV2(client: HttpClient): Promise<void> {
  const first = rng.int(0, ENTRIES.length - 1);
  const entries = [ENTRIES[first], ENTRIES[(first + 1 + rng.int(0, ENTRIES.length - 2)) % ENTRIES.length]].filter(
    (entry) => entry !== undefined,
  );
  const records = entries.flatMap((entry) => Array.from({ length: rng.int(1, 4) }, () => newRecord(entry)));
  const rendered = renderV2Batch(
    records.map((r) => ({ entry: r.entry, ts: r.ts, contentType: r.contentType, labels: r.labels, data: r.data })),
    { labelIndexes: rng.chance(0.5) },
  );
  const response = await client.request("POST", `/api/v1/io/${BUCKET}/write`, { headers: rendered.headers, body: rendered.body });
  if (response.status !== 200) {
    noteUnexpected("batch v2", `${response.status} ${errorOf(response)}`, response, "POST /io/soak/write");
    return;
  }
  const errors = v2BatchErrors(response.headers, rendered.entries, rendered.startTs);
  for (const record of records) {
    const error = errors.get(`${record.entry}\u0000${record.ts}`);
    if (error) noteUnexpected("batch v2 record", error);
    else remember(record);
  }
}

/** A bounded entry query (about 20 records from a random start) read with v1 batch reads. */
async function opQuery(client: HttpClient): Promise<void> {
  const entry = rng.pick(ENTRIES);
  const stamps = ownOf(writtenTs, entry);
  const start = stamps[rng.int(0, stamps.length - 1)];
  if (start === undefined) return opWrite(client);
  const created = await client.request("POST", `${entryPath(BUCKET, entry)}/q`, {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_type: "QUERY", start, stop: start + 10_000, ttl: 30 }),
  });
  if (created.status !== 200) {
    noteUnexpected("query create", `${created.status} ${errorOf(created)}`, created, `POST ${entry}/q`);
    return;
  }
  const id = queryIdOf(created.body);
  for (let batch = 0; batch < 20; batch++) {
    const response = await client.request("GET", `${entryPath(BUCKET, entry)}/batch?q=${id}`);
    if (response.status === 204) return;
    if (response.status !== 200) {
      noteUnexpected("query read", `${response.status} ${errorOf(response)}`, response, `GET ${entry}/batch?q=${id}`);
      return;
    }
  }
  noteUnexpected("query read", "more than 20 batches for a 10 ms window");
}

function chooseOp(): [OpKind, (client: HttpClient) => Promise<void>] {
  const u = rng.next();
  if (u < 0.7) return ["write", opWrite];
  if (u < 0.9) return ["read", opRead];
  if (u < 0.94) return ["batch", opBatchV1];
  if (u < 0.97) return ["batch", opBatchV2];
  return ["query", opQuery];
}

async function runLoad(client: HttpClient): Promise<number> {
  const started = Date.now();
  const inFlight = new Set<Promise<void>>();
  const tickMs = 5;
  while (Date.now() - started < DURATION_MS) {
    const due = Math.floor(((Date.now() - started) * RATE) / 1000);
    while (issued < due) {
      const scheduledAt = started + (issued * 1000) / RATE;
      issued++;
      if (inFlight.size >= MAX_BACKLOG) {
        dropped++;
        continue;
      }
      const [kind, op] = chooseOp();
      const promise = op(client)
        .then(() => {
          latencies[kind].push(Date.now() - scheduledAt);
        })
        .catch((error) => {
          indeterminate++;
          noteUnexpected(kind, `no answer: ${codeOf(error) ?? fieldOf(error, "message")}`);
        })
        .finally(() => {
          completed++;
          inFlight.delete(promise);
        });
      inFlight.add(promise);
    }
    await sleep(tickMs);
  }
  const drainDeadline = Date.now() + REQUEST_TIMEOUT_MS + 5_000;
  while (inFlight.size && Date.now() < drainDeadline) await sleep(50);
  return (Date.now() - started) / 1000;
}

// ---------------------------------------------------------------------------------------------
// Sampling

const samples: (MemorySample & ProcessStats & { heap: HeapUsage | undefined; load1: number })[] = [];
/** --inspect: forced full GCs (at the reference time and after the load) and the memory around them. */
type GcSample = Partial<ProcessStats> & { heap: HeapUsage };
const gcs: { what: string; atS: number; before: GcSample; after: GcSample; missed: string[] }[] = [];

/**
 * --inspect: a full GC in every isolate of workerd, then RSS and V8 heaps again. workerd runs the
 * inspector's GC command only in an isolate that has work, so a few light requests keep the
 * Worker (and, through it, the bucket's object, D1 and R2) busy meanwhile.
 */
async function fullGc(client: HttpClient, what: string, startedAt: number): Promise<void> {
  const port = inspectorPort;
  const pid = server?.workerdPid();
  if (port === undefined || pid === undefined) throw new Error("a forced GC needs --inspect and a running workerd");
  const before = { ...processStats(pid), heap: await heapUsage(port) };
  let kicking = true;
  const kicks = (async () => {
    while (kicking) {
      const first = ownOf(writtenTs, ENTRIES[0])[0];
      await Promise.all([
        client.request("GET", `/api/v1/b/${BUCKET}`).catch(() => {}),
        first === undefined ? undefined : client.request("GET", `${entryPath(BUCKET, ENTRIES[0])}?ts=${first}`).catch(() => {}),
      ]);
      await sleep(100);
    }
  })();
  let missed: Awaited<ReturnType<typeof collectGarbage>>;
  try {
    missed = await collectGarbage(port, 5_000);
  } finally {
    kicking = false;
    await kicks;
  }
  await sleep(1_000);
  const after = { ...processStats(pid), heap: await heapUsage(port) };
  gcs.push({ what, atS: Math.round((Date.now() - startedAt) / 1000), before, after, missed });
}

function sampler(startedAt: number, client: HttpClient): () => Promise<void> {
  let stopped = false;
  let referenceGc: Promise<unknown> | undefined;
  const loop = (async () => {
    let next = startedAt;
    let referenceGcDone = false;
    while (!stopped) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(Math.min(wait, 500));
      if (stopped || Date.now() < next) continue;
      const runtime = server?.workerdPid();
      const stats = runtime ? processStats(runtime) : undefined;
      const heap = inspectorPort ? await heapUsage(inspectorPort).catch(() => undefined) : undefined;
      if (stats) {
        samples.push({
          atS: Math.round((Date.now() - startedAt) / 1000),
          pid: runtime,
          ...stats,
          heap,
          load1: os.loadavg()[0] ?? Number.NaN,
        });
      }
      if (inspectorPort && !referenceGcDone && Date.now() - startedAt >= REFERENCE_MS) {
        referenceGcDone = true;
        // Not awaited: the sampling goes on meanwhile.
        referenceGc = fullGc(client, "reference", startedAt).catch((error) => console.error("soak: forced GC failed:", error));
      }
      next += SAMPLE_EVERY_MS;
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    await referenceGc;
  };
}

// ---------------------------------------------------------------------------------------------
// Read-back

/** What GET /b/:bucket tells of the soak's bucket. */
interface BucketAnswer {
  info: { size: number };
  entries: { name: string; record_count: number }[];
}

async function readBack(client: HttpClient): Promise<{ records: number; bytes: number; bucketSize: number }> {
  let records = 0;
  let bytes = 0;
  const deadline = Date.now() + 240_000;
  const response = await client.request("GET", `/api/v1/b/${BUCKET}`);
  const info = JSON.parse(response.body.toString("utf8")) as BucketAnswer;
  const counts = new Map(info.entries.map((entry) => [entry.name, entry.record_count]));
  for (const entry of ENTRIES) {
    const expected = ownOf(written, entry);
    const listing = await listEntryV1(client, BUCKET, entry, { deadline });
    for (const problem of listing.problems) mismatches.push(problem);
    const seen = new Set<number>();
    for (const record of listing.records) {
      seen.add(record.ts);
      records++;
      bytes += record.size;
      const want = expected.get(record.ts);
      if (!want) {
        if (indeterminate === 0) mismatches.push(`${entry}@${record.ts}: listed but never ACKed`);
      } else if (want.sha !== record.sha256 || record.labels.sha256 !== want.sha) {
        mismatches.push(`${entry}@${record.ts}: bytes or labels differ from what was written`);
      }
    }
    for (const ts of expected.keys()) if (!seen.has(ts)) mismatches.push(`${entry}@${ts}: ACKed but not listed`);
    if (counts.get(entry) !== listing.records.length) {
      mismatches.push(`${entry}: GET /b says record_count ${counts.get(entry)}, the listing has ${listing.records.length}`);
    }
  }
  return { records, bytes, bucketSize: info.info.size };
}

// ---------------------------------------------------------------------------------------------
// Report helpers

/** Table columns of a heapUsage() result (MiB): the Worker's isolate and all isolates. */
function heapColumns(heap: HeapUsage | undefined): Record<string, string | number> {
  const pair = (h: HeapFigures | undefined): string => (h ? `${(h.used / 1024).toFixed(1)}/${(h.total / 1024).toFixed(1)}` : "–");
  return {
    "V8 Worker used/total MiB": pair(heap?.user),
    "Worker ArrayBuffers MiB": heap?.user ? Number((heap.user.backing / 1024).toFixed(1)) : "–",
    "V8 all isolates used/total MiB": pair(heap?.all),
  };
}

/** reduct-edge's RSS growth minus the no-op's, reference → end and over the last half. */
function baselineDelta(figures: MemoryFigures, base: MemoryFigures): string {
  const mib = (kib: number): string => (kib / 1024).toFixed(1);
  const grown = (f: MemoryFigures): number => f.end.rssKiB - f.reference.rssKiB;
  const lastHalf = (f: MemoryFigures): number => f.end.rssKiB - f.half.rssKiB;
  return (
    `reference → end ${mib(grown(figures))} − ${mib(grown(base))} = ${mib(grown(figures) - grown(base))} MiB; ` +
    `last half ${mib(lastHalf(figures))} − ${mib(lastHalf(base))} = ${mib(lastHalf(figures) - lastHalf(base))} MiB ` +
    `(${((figures.rssLastHalf - base.rssLastHalf) * 100).toFixed(1)} points)`
  );
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * --baseline: the no-op Worker under the same stack, same load, length and seed, run first as a
 * child soak (its output prefixed); --baseline-json: an earlier such run. Its samples and GCs.
 */
let baselineRun: Awaited<ReturnType<typeof runBaseline>> | undefined;
let baselineChild: ChildProcess | undefined;

/** A figure as JSON holds it: NaN (a /proc field missing) is written as null. */
const figure = z.union([z.number(), z.null().transform(() => Number.NaN)]);
const HeapFiguresJson = z.looseObject({ used: figure, total: figure, backing: figure });
/** What memoryFigures reads of an earlier run's --json file (an input, so checked). */
const BaselineFile = z.looseObject({
  server: z.unknown(),
  minutes: z.unknown(),
  rate: z.unknown(),
  samples: z.array(z.looseObject({ atS: z.number(), pid: z.number().optional(), rssKiB: figure, anonKiB: figure, fds: figure })),
  gcs: z
    .array(
      z.looseObject({
        what: z.string(),
        after: z
          .looseObject({ rssKiB: figure.optional(), heap: z.looseObject({ user: HeapFiguresJson.optional() }).optional() })
          .optional(),
      }),
    )
    .optional(),
});

async function runBaseline() {
  if (options["baseline-json"]) {
    const earlier = BaselineFile.parse(JSON.parse(readFileSync(options["baseline-json"], "utf8")));
    if (earlier.server !== NOOP_OF)
      throw new Error(`${options["baseline-json"]} is a --server ${earlier.server} run, not ${NOOP_OF}`);
    if (earlier.minutes !== MINUTES || earlier.rate !== RATE) {
      console.log(
        `soak: note: the baseline ran ${earlier.minutes} min at ${earlier.rate} req/s, this run ${MINUTES} min at ${RATE}`,
      );
    }
    return { ...earlier, source: options["baseline-json"] };
  }
  const file = path.join(workDir, "baseline.json");
  const args = [fileURLToPath(import.meta.url), "--server", NOOP_OF, "--minutes", String(MINUTES), "--rate", String(RATE)];
  args.push("--seed", SEED, "--json", file, "--as-baseline", INSPECT ? "--inspect" : "--no-inspect");
  if (options["live-tree"]) args.push("--live-tree");
  console.log(`soak: --baseline: running the no-op Worker under the same stack first (${MINUTES} min)`);
  const child = spawn(process.execPath, tsNodeArgs(fileURLToPath(import.meta.url), ...args.slice(1)), {
    stdio: ["ignore", "pipe", "inherit"],
  });
  baselineChild = child;
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => console.log(`  baseline | ${line}`));
  const code = await new Promise((resolve) => child.on("exit", (exitCode) => resolve(exitCode)));
  baselineChild = undefined;
  if (code !== 0) throw new Error(`the no-op baseline run failed (exit ${code}); its output is above`);
  return { ...BaselineFile.parse(JSON.parse(readFileSync(file, "utf8"))), source: `--server ${NOOP_OF}, same run` };
}

async function main() {
  if (BASELINE_MODE !== "none") baselineRun = await runBaseline();
  console.log(`soak: seed ${SEED}, ${MINUTES} min at ${RATE} req/s over ${CONNECTIONS} connections, work dir ${workDir}`);
  console.log(
    `soak: server code ${treeVersion()}${tree ? ", run from a snapshot copy" : ", run from the live tree"}, --server ${SERVER}`,
  );
  inspectorPort = INSPECT ? await freePort() : undefined;
  server = await startServer(
    {
      tag: "soak server",
      dataPath: path.join(workDir, "state"),
      logPath: path.join(workDir, "server.log"),
      env: {
        RS_API_TOKEN: apiToken,
        RS_INSTANCE_NAME: "soak",
        ...(inspectorPort ? { RS_INSPECTOR_PORT: String(inspectorPort) } : {}),
      },
      tree,
      kind: SERVER as ServerKind,
    },
    90_000,
  );
  log(`server alive after ${server.aliveSeconds.toFixed(1)} s on ${server.url} (workerd ${server.workerdPid()})`);
  const client = createHttpClient(server.url, { token: apiToken, connections: CONNECTIONS, timeoutMs: REQUEST_TIMEOUT_MS });
  const created = await client.request("POST", `/api/v1/b/${BUCKET}`, { body: "" });
  if (created.status !== 200) throw new Error(`creating ${BUCKET} answered ${created.status} ${errorOf(created)}`);

  const loadStarted = Date.now();
  loadStartedAt = loadStarted;
  const stopSampler = sampler(loadStarted, client);
  const progress = setInterval(() => {
    const s = samples[samples.length - 1];
    log(
      `${completed}/${issued} requests done, ${[...unexpected.values()].reduce((a, b) => a + b, 0)} unexpected` +
        (s ? `, workerd RSS ${(s.rssKiB / 1024).toFixed(1)} MiB, ${s.fds} fds` : ""),
    );
  }, 30_000);
  const loadSeconds = await runLoad(client);
  clearInterval(progress);
  await stopSampler();
  if (inspectorPort) {
    // Quiet first: idle blocks are sealed 5 s after their last write (SEAL_IDLE_MS), and a seal
    // holds its block's bytes twice until the R2 put is done; after that only the block cache
    // should hold ArrayBuffers.
    await sleep(SETTLE_MS);
    await fullGc(client, "end", loadStarted).catch((error) => console.error("soak: forced GC failed:", error));
  }
  log(`load finished: ${issued} requests in ${loadSeconds.toFixed(1)} s; reading everything back`);
  const readStarted = Date.now();
  const back = NOOP ? { records: 0, bytes: 0, bucketSize: 0 } : await readBack(client);
  const readSeconds = (Date.now() - readStarted) / 1000;
  client.close();

  // Report
  const unexpectedTotal = [...unexpected.values()].reduce((a, b) => a + b, 0);
  const latencyRows = Object.entries(latencies).map(([kind, values]) => ({
    kind,
    count: values.length,
    "p50 ms": Number(percentile(values, 50).toFixed(1)),
    "p99 ms": Number(percentile(values, 99).toFixed(1)),
    "max ms": values.length ? Math.max(...values) : Number.NaN,
  }));
  const all = Object.values(latencies).flat();
  latencyRows.push({
    kind: "all",
    count: all.length,
    "p50 ms": Number(percentile(all, 50).toFixed(1)),
    "p99 ms": Number(percentile(all, 99).toFixed(1)),
    "max ms": all.length ? Math.max(...all) : Number.NaN,
  });
  console.log("\nsoak: latency (from the scheduled send time)");
  console.table(latencyRows);
  console.log("soak: RSS and open fds over time of the workerd running reduct-edge");
  console.table(
    samples.map((s) => ({
      "t (s)": s.atS,
      pid: s.pid,
      "RSS MiB": Number((s.rssKiB / 1024).toFixed(1)),
      "anon MiB": Number((s.anonKiB / 1024).toFixed(1)),
      "file MiB": Number((s.fileKiB / 1024).toFixed(1)),
      fds: s.fds,
      "load avg (1 min)": Number(s.load1.toFixed(2)),
      ...(inspectorPort ? heapColumns(s.heap) : {}),
    })),
  );
  if (gcs.length) {
    const row = (what: string, x: GcSample) => ({
      what,
      "RSS MiB": Number(((x.rssKiB ?? Number.NaN) / 1024).toFixed(1)),
      "anon MiB": Number(((x.anonKiB ?? Number.NaN) / 1024).toFixed(1)),
      ...heapColumns(x.heap),
    });
    console.log(`soak: workerd before and after a forced full GC (inspector; every isolate)`);
    console.table(
      gcs.flatMap((gc) => [row(`${gc.what} (${gc.atS} s), before`, gc.before), row(`${gc.what} (${gc.atS} s), after`, gc.after)]),
    );
    for (const gc of gcs)
      if (gc.missed.length) console.log(`soak: ${gc.what}: idle isolates not collected: ${gc.missed.join(", ")}`);
  }

  // Memory: see scripts/lib/soak-memory.ts for the checks and why RSS alone is not the verdict.
  const figureOptions = { durationS: DURATION_MS / 1000, referenceS: REFERENCE_MS / 1000 };
  const figures = memoryFigures({ samples, gcs, ...figureOptions });
  const baselineFigures = baselineRun ? memoryFigures({ ...baselineRun, ...figureOptions }) : undefined;
  const verdict = figures ? memoryVerdict(figures, baselineFigures, { inspected: INSPECT }) : undefined;
  const enforceFlat = DURATION_MS >= 240_000 && !options["as-baseline"];
  const summary = {
    seed: SEED,
    "duration (s)": loadSeconds.toFixed(1),
    "target rate (req/s)": RATE,
    "achieved rate (req/s)": (completed / loadSeconds).toFixed(1),
    requests: issued,
    "dropped (client backlog)": dropped,
    "unexpected statuses": unexpectedTotal,
    "no answer": indeterminate,
    "ACKed records": [...written.values()].reduce((sum, map) => sum + map.size, 0),
    "read back": `${back.records} records, ${back.bytes} bytes in ${readSeconds.toFixed(1)} s (bucket size ${back.bucketSize})`,
    "read-back mismatches": mismatches.length,
    "workerd memory": figures ? rssLine(figures) : "not enough samples",
    ...(baselineFigures && baselineRun
      ? {
          [`no-op baseline (${baselineRun.source})`]: rssLine(baselineFigures),
          "reduct-edge minus no-op": figures ? baselineDelta(figures, baselineFigures) : "not enough samples",
        }
      : {}),
    ...Object.fromEntries((verdict?.checks ?? []).map((c) => [`memory: ${c.what}`, `${c.ok ? "ok" : "NO"}: ${c.text}`])),
    "memory verdict": verdict
      ? `${verdict.ok ? "flat" : "NOT FLAT"}${enforceFlat ? "" : ` (reported only: ${options["as-baseline"] ? "baseline run" : "run < 4 min"})`}`
      : "not judged",
    "run time": elapsed(),
  };
  if (options.json) {
    writeFileSync(
      options.json,
      `${JSON.stringify({ server: SERVER, minutes: MINUTES, rate: RATE, seed: SEED, summary, latency: latencyRows, figures, baselineFigures, verdict, samples, gcs }, null, 1)}\n`,
    );
  }
  console.log("soak: summary");
  console.table(Object.entries(summary).map(([what, value]) => ({ what, value })));
  if (unexpected.size) {
    console.log("soak: unexpected statuses");
    for (const [what, count] of unexpected) console.log(`  ${count} × ${what}`);
    for (const sample of unexpectedSamples) console.log("  e.g.", JSON.stringify(sample));
  }
  for (const text of mismatches.slice(0, 20)) console.log(`soak: MISMATCH ${text}`);

  const uncaught = unhandledErrorLines(server.log());
  if (uncaught.length)
    console.log(`soak: ${uncaught.length} uncaught/unhandled lines in the server log, e.g. ${uncaught[0]?.slice(0, 200)}`);

  const failed =
    unexpectedTotal > 0 ||
    mismatches.length > 0 ||
    dropped > 0 ||
    uncaught.length > 0 ||
    (enforceFlat && verdict !== undefined && !verdict.ok);
  console.log(`soak: ${failed ? "FAILED" : "passed"} (seed ${SEED}) in ${elapsed()}`);
  await finish(failed ? 1 : 0);
}

main().catch(async (error) => {
  console.error("soak:", error?.stack ?? error);
  await finish(1);
});
