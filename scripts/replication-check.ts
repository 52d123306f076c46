// Two-instance replication check: two real `npm start` servers, A (source) and B (target), both
// with RS_API_TOKEN. Three replications on A (no compression, gzip, zstd; all through a counting
// proxy, which shows the compressed ones' write bodies are coded) select entries by glob and
// records by `when`. Records are written to A with single writes and v1 batches, some large
// (streamed), some that must not replicate; labels are updated afterwards. Checked in B: every
// matching record once, byte-identical (sha256), with its labels, in timestamp order, nothing
// extra; A's pending_records back to 0 and is_active true. Then B is stopped (SIGTERM) while A is
// written to and started again, and A is SIGKILLed (its process group) several times while it
// replicates: every record A acknowledged arrives exactly once. Then B is SIGKILLed (its process
// group) several times while A sends, each time while a write batch is in flight to it; among the
// records are huge ones (over A's RS_IO_BATCH_MAX_SIZE, set to 1 MiB: they go alone, streamed).
// With --kill-large one of the kills lands while a huge record streams into B: B then answers 409
// for it until its upload lease runs out (80 s and more), so that is not part of the CI run.
// With --outage-seconds N (not in CI): B stopped for N s while A is written, then N s of B answering
// 401 (the replications' token deleted on B, later provisioned again with the same value); every
// record must arrive afterwards, none dropped as refused (over 200 s, A's backoff from 1 s to 60 s
// makes more than the 8 attempts after which a batch refused for good would be dropped).
//
//   npm run replication-check [-- --records 10000] [--seed hex] [--keep] [--label-removals]
//                             [--target-kills 3] [--kill-large] [--outage-seconds 150]
//
// All three replications go through a forwarding proxy, which times B's kills and counts batches.
//
// Ports come from HARNESS_PORTS (from-to) when set, else the kernel's; state and logs go to a fresh
// temporary directory (kept with --keep or on failure). Exits 1 on any violation.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type Bucket, Client } from "reduct-js";
import type { Labels } from "./lib/batch-codec.ts";
import { messageOf, statusOf } from "./lib/errors.ts";
import { createHttpClient, type HttpClient } from "./lib/http-client.ts";
import { KIB, payloadOf, Rng, randomSeed, sha256Hex } from "./lib/prng.ts";
import { listEntryV1 } from "./lib/reduct.ts";
import { showVersionNoticeOnce } from "./lib/reduct-js-quiet.ts";
import {
  freePort,
  type Server,
  type ServerOptions,
  sleep,
  startServer,
  stopAllServers,
  unhandledErrorLines,
} from "./lib/server.ts";

showVersionNoticeOnce();

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "2000" },
    seed: { type: "string" },
    keep: { type: "boolean", default: false },
    "label-removals": { type: "boolean", default: false },
    "target-kills": { type: "string", default: "3" },
    "kill-large": { type: "boolean", default: false },
    "outage-seconds": { type: "string", default: "0" },
  },
});
const TARGET_KILLS = Number(args["target-kills"]);
if (!Number.isInteger(TARGET_KILLS) || TARGET_KILLS < 0)
  throw new Error(`--target-kills must be a whole number, got '${args["target-kills"]}'`);
const KILL_LARGE = args["kill-large"] ?? false;
const OUTAGE_S = Number(args["outage-seconds"]);
if (!Number.isFinite(OUTAGE_S) || OUTAGE_S < 0)
  throw new Error(`--outage-seconds must be a number >= 0, got '${args["outage-seconds"]}'`);
const TOTAL = Number(args.records);
if (!Number.isInteger(TOTAL) || TOTAL < 100) throw new Error(`--records must be a whole number >= 100, got '${args.records}'`);
const SEED = args.seed ?? randomSeed();
/** Label updates that remove a label (an empty value): off by default; B keeps such a label, as a ReductStore target of a ReductStore sender does. */
const REMOVALS = args["label-removals"] ?? false;
const TOKEN = `repl-check-${SEED}-${Math.random().toString(16).slice(2)}`;
/** The replications' dst_token: a token provisioned on B (deleted and provisioned again by the 401 outage). */
const DST_TOKEN = `repl-dst-${Math.random().toString(16).slice(2)}`;
const DST_TOKEN_ENV = { RS_TOKEN_REPL_NAME: "replication", RS_TOKEN_REPL_VALUE: DST_TOKEN, RS_TOKEN_REPL_FULL_ACCESS: "true" };
const SRC = "repl-src";
const ENTRIES = ["sensor-*", "cam/*"];
const WHEN = { "&quality": { $gte: 5 } };
const MATCHING = ["sensor-1", "sensor-2", "cam/front"];
const OTHER = ["other", "logs/sensor-1"];
const LARGE = 300 * KIB;
/** A's RS_IO_BATCH_MAX_SIZE: a HUGE record is over it, so it goes alone, streamed from A's R2. */
const A_BATCH_MAX_BYTES = 1024 * KIB;
const HUGE = A_BATCH_MAX_BYTES + 200 * KIB;
/** Records larger than this are streamed into B's R2 under an upload lease (SMALL_RECORD_MAX_BYTES). */
const STREAMED = 128 * KIB;
const BASE_TS = 1_700_000_000_000_000;

const REPLICATIONS = [
  { name: "r-none", dst: "dst-none", compression: "none" },
  { name: "r-gzip", dst: "dst-gzip", compression: "gzip" },
  { name: "r-zstd", dst: "dst-zstd", compression: "zstd" },
] as const;
type Compression = (typeof REPLICATIONS)[number]["compression"];

const work = mkdtempSync(path.join(os.tmpdir(), "replication-check-"));
const violations: string[] = [];
const violation = (text: string) => {
  violations.push(text);
  console.log(`  VIOLATION: ${text}`);
};
const seconds = (from: number) => (Date.now() - from) / 1000;

// ---------------------------------------------------------------------------------------------
// What was written and what B must hold

interface Written {
  entry: string;
  ts: number;
  size: number;
  sha256: string;
  contentType: string;
  /** The labels on A as far as this script knows. */
  labels: Labels;
  /** false: the write failed (A killed meanwhile): A may or may not have it. */
  acked: boolean;
  /** The labels B must show, or undefined when B must not have the record. */
  expected: Labels | undefined;
}

const written = new Map<string, Written>();
const keyOf = (entry: string, ts: number) => `${entry}@${ts}`;
const selected = (entry: string) => MATCHING.includes(entry);
/** `when` as the check models it: a `quality` label that is a number >= 5 (a missing one fails). */
const passes = (labels: Labels) => labels.quality !== undefined && Number(labels.quality) >= 5;

function merged(labels: Labels, update: Labels): Labels {
  const out: Labels = { ...labels };
  for (const [name, value] of Object.entries(update)) {
    if (value === "") delete out[name];
    else out[name] = value;
  }
  return out;
}

/** A label update A acknowledged; its effect on B as a replication sees it. */
function updated(record: Written, update: Labels): void {
  record.labels = merged(record.labels, update);
  // An update logs only when its new labels pass `when`; one that fails leaves B as it was.
  if (selected(record.entry) && passes(record.labels)) record.expected = { ...record.labels };
}

// ---------------------------------------------------------------------------------------------
// Servers and the proxy

let nextTs = BASE_TS;
const servers: Server[] = [];
let a: Server;
let b: Server;
let proxyUrl = "";
const portRange = process.env.HARNESS_PORTS;

async function start(options: ServerOptions): Promise<Server> {
  const server = await startServer(options, 90_000);
  servers.push(server);
  return server;
}

interface ProxyCounts {
  coded: number;
  plain: number;
  plainWithBytes: number;
  failed: number;
}
const proxyCounts = new Map<string, ProxyCounts>();
let refused = 0;

/** A write batch the proxy is forwarding to B: its largest record and the body bytes passed on so far. */
interface InFlight {
  dst: string;
  /** The batch's entry on B and the timestamp of its largest record. */
  entry: string;
  ts: number;
  largest: number;
  forwarded: number;
  /** Stops passing its body on: B waits for the rest of it. */
  hold: () => void;
}
const inFlight = new Set<InFlight>();
/** When B last answered 200 to a write batch. */
let lastDeliveryAt = 0;
/** Called for every chunk the proxy passes on (after counting it): kills B at the moment it asks for. */
let onForward: ((flight: InFlight) => void) | null = null;

/**
 * Forwards to B and counts the write batches per destination bucket by Content-Encoding; a batch
 * announcing bytes must come coded. A client that goes away (A killed) cuts the forwarded request too.
 */
async function startProxy(): Promise<http.Server> {
  const port = await freePort(portRange);
  const proxy = http.createServer((req, res) => {
    const dst = /^\/api\/v1\/b\/([^/]+)\/.+\/batch$/.exec(req.url ?? "")?.[1];
    if (dst && req.method === "POST") {
      const counts = proxyCounts.get(dst) ?? { coded: 0, plain: 0, plainWithBytes: 0, failed: 0 };
      proxyCounts.set(dst, counts);
      const bytes = Object.entries(req.headers)
        .filter(([name]) => name.startsWith("x-reduct-time-"))
        .reduce((sum, [, value]) => sum + Number(String(value).split(",")[0]), 0);
      if (req.headers["content-encoding"]) counts.coded++;
      else {
        counts.plain++;
        if (bytes > 0) counts.plainWithBytes++;
      }
    }
    const sizes = Object.entries(req.headers)
      .filter(([name]) => name.startsWith("x-reduct-time-"))
      .map(([name, value]) => ({ ts: Number(name.slice("x-reduct-time-".length)), size: Number(String(value).split(",")[0]) }))
      .sort((x, y) => y.size - x.size);
    const entry = /^\/api\/v1\/b\/[^/]+\/(.+)\/batch$/.exec(req.url ?? "")?.[1] ?? "";
    let upstream: http.ClientRequest | undefined;
    const flight: InFlight | undefined =
      dst && req.method === "POST" && sizes[0]
        ? {
            dst,
            entry,
            ts: sizes[0].ts,
            largest: sizes[0].size,
            forwarded: 0,
            hold: () => {
              if (upstream) req.unpipe(upstream);
              req.pause();
            },
          }
        : undefined;
    if (flight) inFlight.add(flight);
    res.on("close", () => {
      if (flight) inFlight.delete(flight);
    });
    // A copy of the body (bounded), saved when B refuses the batch: the request can be replayed.
    const copy: Buffer[] = [];
    let copied = 0;
    req.on("data", (chunk: Buffer) => {
      if (flight) {
        flight.forwarded += chunk.length;
        onForward?.(flight);
      }
      if (copied < 16 * 1024 * 1024) copy.push(chunk);
      copied += chunk.length;
    });
    upstream = http.request(
      { host: "127.0.0.1", port: b.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (dst && answer.statusCode === 400) {
          const file = path.join(work, `refused-${++refused}`);
          writeFileSync(
            `${file}.json`,
            JSON.stringify({ method: req.method, url: req.url, headers: req.headers, answer: answer.headers }, null, 1),
          );
          const save = () => writeFileSync(`${file}.bin`, Buffer.concat(copy));
          if (req.readableEnded) save();
          else req.on("end", save);
          console.log(`  B answered 400 (${answer.headers["x-reduct-error"]}) to ${req.method} ${req.url}: saved in ${file}.*`);
        }
        if (flight && answer.statusCode === 200) lastDeliveryAt = Date.now();
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on("error", () => res.destroy());
      },
    );
    upstream.on("error", () => {
      if (dst) {
        const counts = proxyCounts.get(dst);
        if (counts) counts.failed++;
      }
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.on("aborted", () => upstream.destroy());
    req.on("error", () => upstream.destroy());
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
  proxyUrl = `http://127.0.0.1:${port}`;
  return proxy;
}

const client = (server: Server) => new Client(server.url, { apiToken: TOKEN, timeout: 60_000 });

// ---------------------------------------------------------------------------------------------
// Writing

interface Draft {
  entry: string;
  ts: number;
  data: Buffer;
  contentType: string;
  labels: Labels;
}

const CONTENT_TYPES = ["application/octet-stream", "text/plain", "image/jpeg"] as const;

function draft(rng: Rng, entry: string, size: number): Draft {
  const ts = nextTs;
  nextTs += rng.int(1, 50);
  const labels: Labels = { note: `n${rng.int(0, 999)}`, tag: rng.pick(["a", "b", "c,d"] as const) };
  // Mostly a number, now and then missing (fails `when`, not strict).
  if (!rng.chance(0.08)) labels.quality = String(rng.int(0, 9));
  // Half the payloads compress (text), half do not (keystream).
  const data = rng.chance(0.5)
    ? payloadOf(size, SEED, SRC, entry, ts)
    : Buffer.from(`${entry} ${ts} `.repeat(Math.ceil(size / 24) + 1).slice(0, size));
  return { entry, ts, data, contentType: rng.pick(CONTENT_TYPES), labels };
}

/** A unit of writes: one single write or one v1 batch of one entry. */
type Unit = { kind: "single"; record: Draft } | { kind: "batch"; records: Draft[] };

/** `count` records in units: ~40% single writes, the rest v1 batches; `large` of them 300 KiB. */
function plan(rng: Rng, count: number, large: number, huge = 0): Unit[] {
  const units: Unit[] = [];
  let left = count - large;
  const pickEntry = () => (rng.chance(0.8) ? rng.pick(MATCHING) : rng.pick(OTHER)) ?? "sensor-1";
  while (left > 0) {
    const entry = pickEntry();
    if (rng.chance(0.4)) {
      left--;
      units.push({ kind: "single", record: draft(rng, entry, rng.chance(0.05) ? 0 : rng.int(1, 8 * KIB)) });
    } else {
      const n = Math.min(left, rng.int(5, 40));
      left -= n;
      units.push({
        kind: "batch",
        records: Array.from({ length: n }, () => draft(rng, entry, rng.chance(0.05) ? 0 : rng.int(1, 6 * KIB))),
      });
    }
  }
  // Large records at random places; most pass `when`, one in three goes inside a batch (with an
  // empty record after it). Their timestamps come after the others': entries are written out of order.
  for (let i = 0; i < large; i++) {
    const entry = pickEntry();
    const record = draft(rng, entry, LARGE + rng.int(0, 4 * KIB));
    if (rng.chance(0.75)) record.labels.quality = "9";
    const unit: Unit =
      i % 3 === 2
        ? { kind: "batch", records: [draft(rng, entry, 100), record, draft(rng, entry, 0)] }
        : { kind: "single", record };
    units.splice(rng.int(0, units.length), 0, unit);
  }
  for (const unit of hugeUnits(rng, huge)) units.splice(rng.int(0, units.length), 0, unit);
  return units;
}

/** Huge records that pass `when`; every second one inside a batch between two small ones. */
function hugeUnits(rng: Rng, count: number, first = 0): Unit[] {
  return Array.from({ length: count }, (_, i): Unit => {
    const entry = rng.pick(MATCHING) ?? "sensor-1";
    const record = draft(rng, entry, HUGE + rng.int(0, 64 * KIB));
    record.labels.quality = "8";
    return (first + i) % 2 === 1
      ? { kind: "batch", records: [draft(rng, entry, 10), record, draft(rng, entry, 2 * KIB)] }
      : { kind: "single", record };
  });
}

function remember(record: Draft, acked: boolean): void {
  written.set(keyOf(record.entry, record.ts), {
    entry: record.entry,
    ts: record.ts,
    size: record.data.length,
    sha256: sha256Hex(record.data),
    contentType: record.contentType,
    labels: { ...record.labels },
    acked,
    expected: selected(record.entry) && passes(record.labels) ? { ...record.labels } : undefined,
  });
}

/** Writes one unit through reduct-js; throws when the request failed as a whole. */
async function writeUnit(bucket: Bucket, unit: Unit): Promise<void> {
  if (unit.kind === "single") {
    const { entry, ts, data, contentType, labels } = unit.record;
    const record = await bucket.beginWrite(entry, { ts: BigInt(ts), contentType, labels });
    await record.write(data);
    return;
  }
  const first = unit.records[0];
  if (!first) return;
  const batch = await bucket.beginWriteBatch(first.entry);
  for (const record of unit.records) batch.add(BigInt(record.ts), record.data, record.contentType, record.labels);
  const errors = await batch.write();
  if (errors.size > 0)
    throw new Error(`batch to ${first.entry}: ${[...errors].map(([ts, e]) => `${ts} ${e.status} ${e.message}`).join("; ")}`);
}

const recordsOf = (unit: Unit): Draft[] => (unit.kind === "single" ? [unit.record] : unit.records);

/**
 * Writes `units` with `parallel` writers. `server()` is A as it is now; a failed unit (A down) is
 * remembered as not acknowledged and, with `tolerate`, the writer waits for `ready()` and goes on.
 */
async function writeAll(
  units: Unit[],
  { parallel = 4, server = () => a, tolerate = false, ready = async () => {}, onProgress = (_done: number) => {} } = {},
): Promise<{ failedUnits: number }> {
  let next = 0;
  let done = 0;
  let failedUnits = 0;
  // The bucket of A as it is now (A may be killed again while this asks).
  const bucketOf = async (): Promise<{ at: Server; bucket: Bucket }> => {
    for (let attempt = 1; ; attempt++) {
      const at = server();
      try {
        return { at, bucket: await client(at).getBucket(SRC) };
      } catch (error) {
        if (!tolerate || attempt >= 20) throw error;
        await ready();
        await sleep(200);
      }
    }
  };
  const writer = async () => {
    let { at: bucketServer, bucket } = await bucketOf();
    for (;;) {
      const index = next++;
      const unit = units[index];
      if (!unit) return;
      if (server() !== bucketServer) ({ at: bucketServer, bucket } = await bucketOf());
      try {
        await writeUnit(bucket, unit);
        for (const record of recordsOf(unit)) remember(record, true);
      } catch (error) {
        if (!tolerate) throw error;
        failedUnits++;
        for (const record of recordsOf(unit)) remember(record, false);
        await ready();
        ({ at: bucketServer, bucket } = await bucketOf());
      }
      onProgress(++done);
    }
  };
  await Promise.all(Array.from({ length: parallel }, writer));
  return { failedUnits };
}

// ---------------------------------------------------------------------------------------------
// Waiting and checking

interface Status {
  name: string;
  pending: number;
  active: boolean;
}

async function statuses(): Promise<Status[]> {
  const list = await client(a).getReplicationList();
  return list.map((info) => ({ name: info.name, pending: Number(info.pendingRecords), active: info.isActive }));
}

/** Waits until every replication has nothing pending and is active; the seconds it took. */
async function drained(what: string, timeoutMs: number): Promise<number> {
  const from = Date.now();
  let last: Status[] = [];
  while (Date.now() - from < timeoutMs) {
    try {
      last = await statuses();
      if (last.length === REPLICATIONS.length && last.every((s) => s.pending === 0 && s.active)) return seconds(from);
    } catch {}
    await sleep(250);
  }
  violation(`${what}: not drained within ${timeoutMs / 1000} s: ${JSON.stringify(last)}`);
  return seconds(from);
}

/** B's copy of one replication against the model: { records, absent } counted. */
async function verifyTarget(http: HttpClient, dst: string, what: string): Promise<{ records: number; absent: number }> {
  const entries = new Map<string, Map<number, Written>>();
  let absent = 0;
  for (const record of written.values()) {
    if (!record.acked) continue; // resolved by resolveUnacked
    if (!record.expected) {
      absent++;
      continue;
    }
    const byTs = entries.get(record.entry) ?? new Map<number, Written>();
    byTs.set(record.ts, record);
    entries.set(record.entry, byTs);
  }
  const listed = await http.request("GET", `/api/v1/b/${dst}`);
  if (listed.status !== 200) {
    violation(`${what}: GET /b/${dst} answered ${listed.status}`);
    return { records: 0, absent };
  }
  const names = ((JSON.parse(listed.body.toString()) as { entries?: { name: string }[] }).entries ?? []).map((e) => e.name);
  // A hierarchical entry ("cam/front") brings its parents ("cam") into the entry list.
  const parents = new Set(
    [...entries.keys()].flatMap((entry) =>
      entry
        .split("/")
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join("/")),
    ),
  );
  for (const name of names)
    if (!entries.has(name) && !parents.has(name)) violation(`${what}: ${dst} has an entry '${name}' that must not be replicated`);
  let records = 0;
  let problems = 0;
  const report = (text: string) => {
    if (++problems <= 10) violation(`${what}: ${dst}/${text}`);
  };
  for (const [entry, expected] of entries) {
    const listing = await listEntryV1(http, dst, entry, { deadline: Date.now() + 300_000 });
    for (const problem of listing.problems) report(problem);
    if (listing.missing) {
      report(`${entry}: missing (${expected.size} records expected)`);
      continue;
    }
    const seen = new Set<number>();
    for (const got of listing.records) {
      records++;
      if (seen.has(got.ts)) report(`${entry}: ${got.ts} twice`);
      seen.add(got.ts);
      const want = expected.get(got.ts);
      if (!want) {
        const source = written.get(keyOf(entry, got.ts));
        report(`${entry}: ${got.ts} must not be there (${source ? `labels ${JSON.stringify(source.labels)}` : "never written"})`);
        continue;
      }
      if (got.size !== want.size || got.sha256 !== want.sha256)
        report(
          `${entry}: ${got.ts} differs: ${got.size} bytes ${got.sha256.slice(0, 12)}, sent ${want.size} ${want.sha256.slice(0, 12)}`,
        );
      if (got.contentType !== want.contentType)
        report(`${entry}: ${got.ts} content type ${got.contentType}, sent ${want.contentType}`);
      if (JSON.stringify(sorted(got.labels)) !== JSON.stringify(sorted(want.expected ?? {})))
        report(
          `${entry}: ${got.ts} labels ${JSON.stringify(sorted(got.labels))}, expected ${JSON.stringify(sorted(want.expected ?? {}))}`,
        );
    }
    for (const ts of expected.keys()) if (!seen.has(ts)) report(`${entry}: ${ts} did not arrive`);
  }
  if (problems > 10) violation(`${what}: ${dst}: ${problems - 10} more problems`);
  return { records, absent };
}

const sorted = (labels: Labels): Labels => Object.fromEntries(Object.entries(labels).sort(([x], [y]) => (x < y ? -1 : 1)));

/**
 * Writes whose answer was lost (A killed): A has them or not; what A has must arrive, with the
 * bytes sent, and what A lacks must not. Afterwards they count as acknowledged or are forgotten.
 */
async function resolveUnacked(http: HttpClient): Promise<{ kept: number; lost: number }> {
  const unacked = [...written.values()].filter((record) => !record.acked);
  let kept = 0;
  let lost = 0;
  const byEntry = new Map<string, Written[]>();
  for (const record of unacked) byEntry.set(record.entry, [...(byEntry.get(record.entry) ?? []), record]);
  for (const [entry, records] of byEntry) {
    const listing = await listEntryV1(http, SRC, entry, { deadline: Date.now() + 300_000 });
    const onA = new Map(listing.records.map((record) => [record.ts, record]));
    for (const record of records) {
      const got = onA.get(record.ts);
      if (!got) {
        lost++;
        written.delete(keyOf(entry, record.ts));
        continue;
      }
      kept++;
      if (got.sha256 !== record.sha256) violation(`A kept ${entry}@${record.ts} of a cut write with other bytes`);
      record.acked = true;
    }
  }
  return { kept, lost };
}

async function verifyAll(what: string): Promise<{ records: number; absent: number }[]> {
  const http = createHttpClient(b.url, { token: TOKEN });
  try {
    const results = [];
    for (const { dst } of REPLICATIONS) results.push(await verifyTarget(http, dst, what));
    return results;
  } finally {
    http.close();
  }
}

const expectedCount = () => [...written.values()].filter((record) => record.acked && record.expected).length;

// ---------------------------------------------------------------------------------------------
// B killed and B away

/**
 * SIGKILLs B's process group while a write batch is on its way to it ("batch": one with only
 * records B takes in one piece, none streaming into B's R2; "large": a huge record half sent),
 * then starts it again on its state after a short while. What happened, for the step's line.
 */
async function killTarget(mode: "batch" | "large", optionsB: ServerOptions): Promise<string> {
  const from = Date.now();
  const fits = (flight: InFlight) =>
    mode === "batch"
      ? flight.forwarded > 0 && flight.largest <= STREAMED && [...inFlight].every((other) => other.largest <= STREAMED)
      : flight.largest >= HUGE && flight.forwarded >= 512 * KIB && flight.forwarded < flight.largest - 64 * KIB;
  // Decided as a chunk passes: a poll would miss most batches (a few ms each on loopback).
  let hit: InFlight | undefined = [...inFlight].find(fits);
  if (!hit)
    hit = await new Promise<InFlight | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 20_000);
      onForward = (flight) => {
        if (!fits(flight)) return;
        // A huge record is held half sent, so B is surely inside it when it dies.
        if (mode === "large") flight.hold();
        clearTimeout(timer);
        resolve(flight);
      };
    });
  onForward = null;
  // B counts a record it streams as reserved (HEAD 425) from its first byte: wait for that.
  let reserved = "";
  if (hit && mode === "large") {
    const url = `${b.url}/api/v1/b/${hit.dst}/${hit.entry}?ts=${hit.ts}`;
    for (const until = Date.now() + 10_000; Date.now() < until; await sleep(50)) {
      const head = await fetch(url, { method: "HEAD", headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);
      reserved = String(head?.status ?? "no answer");
      if (head?.status === 425) break;
    }
    if (reserved !== "425") violation(`step 5: the held huge record answers HEAD ${reserved} on B, not 425 (reserved)`);
  }
  const note = hit
    ? `${mode === "large" ? `${(hit.forwarded / KIB).toFixed(0)} KiB into a ${(hit.largest / KIB).toFixed(0)} KiB record (HEAD on B: ${reserved})` : "a batch"} to ${hit.dst} in flight`
    : `nothing in flight (${inFlight.size} requests)`;
  if (!hit && mode === "large") violation("step 5: no huge record was seen streaming to B within 20 s");
  const killedAt = seconds(from);
  const gone = await b.kill("SIGKILL");
  if (!gone) violation("step 5: B's process group survived SIGKILL");
  await sleep(200 + Math.floor(Math.random() * 800));
  b = await start(optionsB);
  // Until A delivers again: a kill at its first retry would double its backoff from kill to kill.
  const back = Date.now();
  while (lastDeliveryAt < back && Date.now() - back < 120_000) await sleep(50);
  if (lastDeliveryAt < back) violation("step 5: A delivered nothing within 120 s of B's restart");
  const delivering = `back in ${b.aliveSeconds.toFixed(1)} s, delivering ${seconds(back).toFixed(1)} s later`;
  return `after ${killedAt.toFixed(1)} s with ${note}, ${delivering}`;
}

/** Failed attempts in A's log because B still had a record reserved (its answer to the HEAD). */
const stillBeingWrittenLines = () =>
  a
    .log()
    .split("\n")
    .filter((line) => line.includes("answered 409 but cannot be read")).length;

/** Lines of A's log (its current start: steps 5 to 7 do not restart it) that say a replication dropped records as refused for good. */
const droppedLines = () =>
  a
    .log()
    .split("\n")
    .filter((line) => line.includes("the target refused for good"));

/** Failed attempts so far by replication and status (the hourly diagnostics). */
async function hourlyErrors(): Promise<Map<string, Record<string, number>>> {
  const byReplication = new Map<string, Record<string, number>>();
  for (const { name } of REPLICATIONS) {
    const response = await fetch(`${a.url}/api/v1/replications/${name}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await response.json()) as { diagnostics?: { hourly?: { errors?: Record<string, { count: number }> } } };
    const counts: Record<string, number> = {};
    for (const [status, { count }] of Object.entries(body.diagnostics?.hourly?.errors ?? {})) counts[status] = count;
    byReplication.set(name, counts);
  }
  return byReplication;
}

/**
 * `begin` takes B away (stopped, or refusing A's token) for OUTAGE_S while A is written to in
 * three parts, `end` brings it back; then every record must arrive and none be dropped.
 */
async function outage(
  what: string,
  rng: Rng,
  perPart: number,
  begin: () => Promise<string>,
  end: () => Promise<void>,
): Promise<{ records: number; absent: number }[]> {
  const before = await hourlyErrors();
  const droppedBefore = droppedLines().length;
  const how = await begin();
  const from = Date.now();
  let records = 0;
  for (let part = 0; part < 3; part++) {
    while (Date.now() - from < (OUTAGE_S * 1000 * part) / 3) await sleep(200);
    const units = plan(rng, perPart, 1, part === 1 ? 1 : 0);
    records += units.flatMap(recordsOf).length;
    await writeAll(units, { parallel: 2 });
  }
  while (Date.now() - from < OUTAGE_S * 1000) await sleep(200);
  const pending = (await statuses()).map((status) => status.pending).join("/");
  const downS = seconds(from);
  await end();
  const s = await drained(what, drainTimeout() + 120_000);
  const results = await verifyAll(what);
  const after = await hourlyErrors();
  // Per replication: the attempts that failed meanwhile, by status.
  const attempts = REPLICATIONS.map(({ name }) => {
    const was = before.get(name) ?? {};
    const failed = Object.entries(after.get(name) ?? {})
      .map(([status, count]) => [status, count - (was[status] ?? 0)] as const)
      .filter(([, count]) => count > 0);
    return `${name} ${failed.map(([status, count]) => `${count} x ${status}`).join(" + ") || "none"}`;
  }).join(", ");
  const dropped = droppedLines().length - droppedBefore;
  if (dropped > 0)
    violation(`${what}: A dropped batches as refused for good: ${droppedLines().slice(droppedBefore).join(" | ")}`);
  console.log(
    `${what}: B ${how} for ${downS.toFixed(1)} s while A was written ${records} records (pending then ${pending}; failed attempts meanwhile: ${attempts}); drained ${s.toFixed(1)} s after B came back; B holds ${results.map((r) => r.records).join("/")} records, none dropped`,
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// The run

async function createReplications(): Promise<void> {
  const settings = (dst: string, host: string) => ({
    srcBucket: SRC,
    dstBucket: dst,
    dstHost: host,
    dstToken: DST_TOKEN,
    entries: [...ENTRIES],
    when: WHEN,
  });
  // reduct-js 1.20 has createReplication but sends no `compression`: the compressed ones go raw.
  const first = REPLICATIONS[0];
  await client(a).createReplication(first.name, settings(first.dst, proxyUrl));
  for (const { name, dst, compression } of REPLICATIONS.slice(1)) {
    const response = await fetch(`${a.url}/api/v1/replications/${name}`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        src_bucket: SRC,
        dst_bucket: dst,
        dst_host: proxyUrl,
        dst_token: DST_TOKEN,
        entries: ENTRIES,
        when: WHEN,
        compression,
      }),
    });
    if (response.status !== 200)
      throw new Error(`POST /replications/${name} answered ${response.status} ${await response.text()}`);
  }
  for (const { name, compression } of REPLICATIONS) {
    const response = await fetch(`${a.url}/api/v1/replications/${name}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await response.json()) as { settings?: { compression?: Compression } };
    if (body.settings?.compression !== compression)
      violation(`replication ${name} shows compression ${body.settings?.compression}, created with ${compression}`);
  }
}

/** Label updates on A (single PATCH and v1 PATCH batches) of every kind the model knows. */
async function updateLabels(rng: Rng, from: number): Promise<Record<string, number>> {
  const bucket = await client(a).getBucket(SRC);
  const counts = { changed: 0, removed: 0, nowPassing: 0, nowFailing: 0, notSelected: 0 };
  const candidates = [...written.values()].filter((record) => record.ts >= from && record.acked);
  const batches = new Map<string, { record: Written; update: Labels }[]>();
  for (const record of candidates) {
    if (!rng.chance(0.12)) continue;
    let update: Labels;
    if (!selected(record.entry)) {
      counts.notSelected++;
      update = { note: "changed", quality: "9" };
    } else if (passes(record.labels)) {
      const roll = rng.next();
      if (roll < 0.5) {
        counts.changed++;
        update = { note: `updated-${rng.int(0, 999)}`, extra: "x" };
      } else if (roll < 0.75 && REMOVALS) {
        counts.removed++;
        update = { tag: "" };
      } else if (roll < 0.75) {
        counts.changed++;
        update = { tag: `t${rng.int(0, 9)}` };
      } else {
        counts.nowFailing++;
        update = { quality: "1", note: "failing now" };
      }
    } else {
      counts.nowPassing++;
      update = { quality: "7", note: "passing now" };
    }
    if (rng.chance(0.5)) {
      await bucket.update(record.entry, BigInt(record.ts), update);
      updated(record, update);
    } else {
      const list = batches.get(record.entry) ?? [];
      list.push({ record, update });
      batches.set(record.entry, list);
    }
  }
  for (const [entry, list] of batches) {
    for (let i = 0; i < list.length; i += 50) {
      const batch = await bucket.beginUpdateBatch(entry);
      const slice = list.slice(i, i + 50);
      for (const { record, update } of slice) batch.addOnlyLabels(BigInt(record.ts), update);
      const errors = await batch.write();
      if (errors.size > 0) throw new Error(`update batch of ${entry}: ${[...errors.values()].map(messageOf).join("; ")}`);
      for (const { record, update } of slice) updated(record, update);
    }
  }
  return counts;
}

const drainTimeout = () => 60_000 + TOTAL * 10;
const rate = (records: number, s: number) => (s > 0 ? Math.round(records / s) : 0);

async function main(): Promise<void> {
  const started = Date.now();
  const rng = new Rng("replication-check", SEED);
  console.log(`replication-check: ${TOTAL} records, seed ${SEED}, state and logs in ${work}`);
  const env = { RS_API_TOKEN: TOKEN };
  const [portA, portB] = [await freePort(portRange), await freePort(portRange)];
  const optionsA: ServerOptions = {
    tag: "A",
    dataPath: path.join(work, "a"),
    logPath: path.join(work, "a.log"),
    port: portA,
    env: { ...env, RS_IO_BATCH_MAX_SIZE: String(A_BATCH_MAX_BYTES) },
  };
  let portBFinal = portB;
  while (portBFinal === portA) portBFinal = await freePort(portRange);
  // B's first start provisions the replications' token; later starts leave it a plain token (its
  // value keeps working), so step 7 can delete it without a restart, and provision it again.
  const provisioningB: ServerOptions = {
    tag: "B",
    dataPath: path.join(work, "b"),
    logPath: path.join(work, "b.log"),
    port: portBFinal,
    env: { ...env, ...DST_TOKEN_ENV },
  };
  const optionsB: ServerOptions = { ...provisioningB, env };
  [a, b] = await Promise.all([start(optionsA), start(provisioningB)]);
  const proxy = await startProxy();
  try {
    // Step 1: replications and the first writes.
    const phase1 = Math.round(TOTAL * 0.4);
    const phase3 = Math.round(TOTAL * 0.3);
    const phase4 = TOTAL - phase1 - phase3;
    const large = Math.max(3, Math.round(TOTAL / 400));
    let t = Date.now();
    await client(a).createBucket(SRC);
    await createReplications();
    const units1 = plan(rng, phase1, large);
    await writeAll(units1);
    const writeS = seconds(t);
    console.log(
      `step 1: 3 replications (entries ${ENTRIES.join(",")}, when quality >= 5); wrote ${phase1} records (${units1.filter((u) => u.kind === "single").length} single writes, ${units1.filter((u) => u.kind === "batch").length} v1 batches, ${[...written.values()].filter((r) => r.size >= LARGE).length} large) in ${writeS.toFixed(1)} s, ${expectedCount()} to replicate`,
    );

    // Step 2: everything arrives; then label updates arrive too.
    let s = await drained("step 2", drainTimeout());
    const delivered1 = expectedCount();
    const firstS = seconds(t);
    const updates = await updateLabels(rng, BASE_TS);
    const updateS = await drained("step 2 (label updates)", drainTimeout());
    let results = await verifyAll("step 2");
    console.log(
      `step 2: ${delivered1} records x 3 replications delivered ${s.toFixed(1)} s after the writes (${rate(delivered1 * 3, firstS)} records/s from the first write); label updates ${JSON.stringify(updates)} drained in ${updateS.toFixed(1)} s; B holds ${results.map((r) => r.records).join("/")} records, ${results[0]?.absent ?? 0} non-matching absent; pending 0, active`,
    );

    // Step 3: B stopped while A is written to, then started again on its state.
    t = Date.now();
    const units3 = plan(rng, phase3, large);
    let stoppedAt = 0;
    let sawInactive = false;
    const watchInactive = async () => {
      while (stoppedAt > 0) {
        try {
          if ((await statuses()).some((status) => !status.active)) sawInactive = true;
        } catch {}
        await sleep(300);
      }
    };
    // A third while B runs, the rest once it is down (so A surely has records to send meanwhile).
    const stopAfter = Math.floor(units3.length / 3);
    await writeAll(units3.slice(0, stopAfter), { parallel: 2 });
    await b.stop();
    stoppedAt = Date.now();
    const watcher = watchInactive();
    await writeAll(units3.slice(stopAfter), { parallel: 2 });
    // Down for at least 6 s: A's sender fails and backs off meanwhile.
    while (Date.now() - stoppedAt < 6_000) await sleep(100);
    const pendingWhileDown = (await statuses()).map((status) => status.pending);
    b = await start(optionsB);
    const downS = seconds(stoppedAt);
    stoppedAt = 0;
    await watcher;
    s = await drained("step 3", drainTimeout());
    if (!sawInactive) violation("step 3: no replication showed is_active false while B was down");
    results = await verifyAll("step 3");
    console.log(
      `step 3: wrote ${phase3} records, B stopped (SIGTERM) for ${downS.toFixed(1)} s during the writes (pending then ${pendingWhileDown.join("/")}, is_active false seen: ${sawInactive}); drained ${s.toFixed(1)} s after B came back; B holds ${results.map((r) => r.records).join("/")} records, as expected`,
    );

    // Step 4: A SIGKILLed (its process group) while it replicates, restarted on its state.
    t = Date.now();
    const units4 = plan(rng, phase4, large);
    let aReady: Promise<void> = Promise.resolve();
    const kills = 3;
    const killTimes: string[] = [];
    let writing = true;
    // Kills part way through the writes (A then has records of them to send) and the last one
    // right after them, while A is still sending.
    let unitsDone = 0;
    const killer = (async () => {
      for (let kill = 1; kill <= kills; kill++) {
        if (kill === kills) {
          while (writing) await sleep(20);
          await sleep(rng.int(0, 200));
        } else {
          const at = Math.floor((units4.length * kill) / kills);
          while (writing && unitsDone < at) await sleep(20);
        }
        let pendingAtKill = "?";
        try {
          pendingAtKill = (await statuses()).map((status) => status.pending).join("/");
        } catch {}
        let release = () => {};
        aReady = new Promise<void>((resolve) => {
          release = resolve;
        });
        const gone = await a.kill("SIGKILL");
        if (!gone) violation("step 4: A's process group survived SIGKILL");
        a = await start(optionsA);
        release();
        killTimes.push(
          `kill ${kill} at ${seconds(t).toFixed(1)} s (pending ${pendingAtKill}), back in ${a.aliveSeconds.toFixed(1)} s`,
        );
      }
    })();
    const { failedUnits } = await writeAll(units4, {
      parallel: 3,
      server: () => a,
      tolerate: true,
      ready: () => aReady,
      onProgress: (done) => {
        unitsDone = done;
      },
    });
    writing = false;
    await killer;
    s = await drained("step 4", drainTimeout());
    const http = createHttpClient(a.url, { token: TOKEN });
    const unacked = await resolveUnacked(http);
    http.close();
    results = await verifyAll("step 4");
    console.log(
      `step 4: wrote ${phase4} records with A SIGKILLed ${kills} times (${killTimes.join("; ")}); ${failedUnits} writes cut (${unacked.kept} records kept by A, ${unacked.lost} not); drained ${s.toFixed(1)} s after the last restart; B holds ${results.map((r) => r.records).join("/")} records = acknowledged, each once`,
    );

    // Step 5: B SIGKILLed (its process group) while A sends to it, restarted on its state.
    t = Date.now();
    const segments = Math.max(TARGET_KILLS, 1) + 1;
    const stillWritingBefore = stillBeingWrittenLines();
    const perSegment = Math.max(20, Math.round((TOTAL * 0.3) / segments));
    const killNotes: string[] = [];
    let phase5 = 0;
    for (let segment = 0; segment < segments; segment++) {
      // The huge record last: a kill lands on the first ordinary batch, the huge one goes after
      // the restart (with --kill-large the first kill waits for it instead).
      const units = [...plan(rng, perSegment, 0), ...hugeUnits(rng, 1, segment)];
      phase5 += units.flatMap(recordsOf).length;
      const writing = writeAll(units, { parallel: 2 });
      if (segment < TARGET_KILLS) {
        const large = KILL_LARGE && segment === 0;
        killNotes.push(await killTarget(large ? "large" : "batch", optionsB));
      }
      await writing;
    }
    s = await drained("step 5", drainTimeout() + 240_000);
    // A record B had reserved when it died: A's retries are answered 409, the HEAD then 425.
    const stillWriting = stillBeingWrittenLines() - stillWritingBefore;
    results = await verifyAll("step 5");
    console.log(
      `step 5: wrote ${phase5} records (${segments} parts, each with a ${(HUGE / KIB).toFixed(0)}+ KiB record that goes alone), B SIGKILLed ${TARGET_KILLS} times (${killNotes.join("; ")}); ${stillWriting} attempts of A found a record still being written on B; drained ${s.toFixed(1)} s after the writes, ${seconds(t).toFixed(1)} s in all; B holds ${results.map((r) => r.records).join("/")} records, each once`,
    );

    if (OUTAGE_S > 0) {
      // Step 6: B stopped for OUTAGE_S while A is written.
      results = await outage(
        "step 6",
        rng,
        perSegment,
        async () => {
          await b.stop();
          return "stopped";
        },
        async () => {
          b = await start(optionsB);
        },
      );
      // Step 7: B answers 401 for OUTAGE_S: the replications' token deleted on B, then
      // provisioned again with the same value (a restart with its variables).
      results = await outage(
        "step 7",
        rng,
        perSegment,
        async () => {
          const deleted = await fetch(`${b.url}/api/v1/tokens/${DST_TOKEN_ENV.RS_TOKEN_REPL_NAME}`, {
            method: "DELETE",
            headers: { authorization: `Bearer ${TOKEN}` },
          });
          if (deleted.status !== 200) violation(`step 7: DELETE of the replication token on B answered ${deleted.status}`);
          const probe = await fetch(`${b.url}/api/v1/b/${REPLICATIONS[0].dst}`, {
            headers: { authorization: `Bearer ${DST_TOKEN}` },
          });
          await probe.body?.cancel();
          if (probe.status !== 401) violation(`step 7: B answered ${probe.status} to the deleted token, expected 401`);
          return `answering ${probe.status}`;
        },
        async () => {
          await b.stop();
          b = await start(provisioningB);
        },
      );
    }

    // Step 8: the compressed replications carried the same records, with coded write bodies.
    const lines: string[] = [];
    for (const { dst, compression } of REPLICATIONS.slice(1)) {
      const counts = proxyCounts.get(dst) ?? { coded: 0, plain: 0, plainWithBytes: 0, failed: 0 };
      if (counts.coded === 0) violation(`step 8: no ${compression}-coded write batch reached ${dst}`);
      if (counts.plainWithBytes > 0)
        violation(`step 8: ${counts.plainWithBytes} write batches with bytes reached ${dst} uncoded`);
      lines.push(`${compression}: ${counts.coded} coded batches, ${counts.plain} empty plain ones, ${counts.failed} cut`);
    }
    const total = results.map((r) => r.records);
    if (new Set(total).size !== 1) violation(`step 8: the replications hold different counts ${total.join("/")}`);
    console.log(`step 8: ${lines.join("; ")}; ${total.join("/")} records identical in all three targets`);

    // The logs of every start.
    for (const server of servers) {
      const lines = unhandledErrorLines(server.log());
      for (const line of lines.slice(0, 5)) violation(`${server.tag} log (pid ${server.pid}): ${line}`);
    }
    const records = expectedCount();
    const totalS = seconds(started);
    console.log(
      `replication-check: ${violations.length === 0 ? "ok" : `${violations.length} violations`}: ${TOTAL} written, ${records} replicated x 3, ${totalS.toFixed(1)} s in all, ${servers.length} server starts, logs clean: ${servers.every((server) => unhandledErrorLines(server.log()).length === 0)}`,
    );
  } finally {
    proxy.close();
    proxy.closeAllConnections();
    await stopAllServers();
  }
}

try {
  await main();
} catch (error) {
  violation(
    `aborted: ${statusOf(error) ? `APIError ${statusOf(error)}: ` : ""}${messageOf(error)}\n${(error as Error)?.stack ?? ""}`,
  );
  await stopAllServers();
}
if (violations.length === 0 && !args.keep) rmSync(work, { recursive: true, force: true });
else console.log(`replication-check: state and logs kept in ${work}`);
process.exit(violations.length === 0 ? 0 : 1);
