#!/usr/bin/env node
// `npm run crash-loop [-- --cycles N --seed S --quick]`: the T1 crash-restart loop of
// ../shared/reliability.md, black box against `npm start`.
//
//  1. Starts `tsx scripts/start.ts` detached (its own process group) on a free 127.0.0.1 port with a
//     fresh temporary RS_DATA_PATH and a random RS_API_TOKEN. By default it runs a snapshot copy of
//     the tree taken at the start (the code under test stays the same across restarts; --live-tree
//     runs the repository itself).
//  2. Each cycle runs a seeded, mixed workload: 2 buckets × 4 entries (NONE quota) plus a FIFO
//     bucket sized to force eviction; single writes of 0 B–1 MiB skewed small, v1 batches
//     (`POST /b/:b/:e/batch`), v2 batches (`POST /io/:b/write`), label updates, deletes and
//     duplicate-timestamp writes that must be refused. Payloads are a function of
//     (seed, bucket, entry, ts); labels carry `sha256` and `n`. Every operation goes to an
//     append-only client journal: INTENT before sending, ACK after the whole answer, FAIL on a
//     socket error or timeout. A write without an ACK is indeterminate.
//  3. SIGKILLs the whole process group 1–15 s into the cycle, inspects the dead server's state
//     directory read-only (R2 objects vs index), restarts on the same state (must answer /alive
//     within 30 s) and verifies, from the journal alone: every ACKed write reads back byte-identical
//     with labels, content type and x-reduct-time; indeterminate writes are absent or complete
//     (a 425 must end with the upload lease); ACKed deletes stay deleted; no phantoms; entry and
//     bucket stats equal the listed records (exactly, except the per-record block offset inside
//     each descriptor, §3.8, which a client cannot know); FIFO eviction removes only the oldest
//     records and the bucket stays within its quota (plus the descriptor bytes of records in
//     flight: §3.2 compares content lengths). A 503 makes a write indeterminate; other 5xx fail.
//  4. After the last cycle: a full read-back (every record by GET and a v2 /io listing), then the
//     server is stopped and its index (copied out of the state directory, read-only) is compared
//     exactly with the listing and the stats; R2 objects that neither an index row nor the garbage
//     queue knows are counted after every kill and at the end, and (unless --quick) the garbage
//     queue must drain once the sweep alarm has run. --self-test checks that the verifier notices
//     injected faults.
// Everything is bounded (cycle count, per-request timeouts, listing bounds, a run budget) and talks
// to 127.0.0.1 only. Prints a summary and exits 1 on any violation.
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { renderV1Batch, renderV2Batch, v1BatchErrors, v2BatchErrors } from "./lib/batch-codec.ts";
import { createHttpClient, errorOf } from "./lib/http-client.ts";
import { payloadOf, Rng, randomSeed, sha256Hex, sizeOf } from "./lib/prng.ts";
import { descriptorBounds, entryPath, listBucketV2, listEntryV1 } from "./lib/reduct.ts";
import { freePort, sleep, snapshotTree, startServer, treeVersion } from "./lib/server.ts";
import { classifyObjects, inspectState } from "./lib/state-inspect.ts";

// ---------------------------------------------------------------------------------------------
// Options

/**
 * Ends the server the way `mode` says: `group` SIGKILLs the whole process group; `workerd` SIGKILLs
 * only the workerd that runs reduct-edge (the runtime dies under `npm start`'s node process, which
 * must notice and exit by itself within 5 s, else that is a violation), then SIGKILLs whatever is
 * left; `term` sends SIGTERM (a graceful stop; SIGKILL after 5 s). True when nothing of the group
 * is left.
 */
async function endServer(server, mode) {
  if (mode === "term") return server.stop(5_000);
  if (mode === "workerd") {
    const pid = server.workerdPid();
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
      const deadline = Date.now() + 5_000;
      while (!server.exited && Date.now() < deadline) await sleep(50);
      if (!server.exited) violation("lingering", `npm start still runs 5 s after its workerd (pid ${pid}) was killed`);
    }
  }
  return server.kill();
}

const { values: options } = parseArgs({
  options: {
    cycles: { type: "string" },
    seed: { type: "string" },
    quick: { type: "boolean", default: false },
    sweep: { type: "boolean" },
    keep: { type: "boolean", default: false },
    "live-tree": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
    "self-test": { type: "boolean", default: false },
    kill: { type: "string", default: "group" },
  },
});
if (options.help) {
  console.log(`usage: tsx scripts/crash-loop.ts [--cycles N] [--seed S] [--quick] [--sweep|--no-sweep] [--keep]
  --cycles N  kill/restart cycles (default 20; --quick: 3)
  --seed S    seed of the workload and of the kill times (printed; pass it again to replay)
  --quick     3 cycles and no sweep wait (CI)
  --sweep     after the run, restart once more and wait for the sweep alarm, then require 0 orphans
              (default on without --quick)
  --keep      keep the temporary directory (state, journal, server logs)
  --kill K    how a cycle ends: group (SIGKILL the whole server, the default), workerd (SIGKILL only
              the workerd running reduct-edge; npm start must exit by itself, then the rest), term
              (SIGTERM the group: a graceful stop, SIGKILL after 5 s), or mix (one of the three per cycle, seeded)
  --self-test one cycle, then four faults are injected behind the verifier's back (an unjournaled
              write, a journaled write never sent, an unjournaled label change, a journaled delete
              never sent); passes only if it reports exactly those (phantom, lost, altered, resurrected)
  --live-tree run the repository itself instead of a snapshot copy taken at the start (each restart
              then bundles whatever the tree holds at that moment)`);
  process.exit(0);
}
const CYCLES = options["self-test"] ? 1 : Number(options.cycles ?? (options.quick ? 3 : 20));
if (!Number.isInteger(CYCLES) || CYCLES < 1 || CYCLES > 500) throw new Error(`--cycles must be 1..500, got ${options.cycles}`);
const SEED = options.seed ?? randomSeed();
const KILL_MODES = ["group", "workerd", "term"];
if (![...KILL_MODES, "mix"].includes(options.kill))
  throw new Error(`--kill must be group, workerd, term or mix, got ${options.kill}`);
const SWEEP = options.sweep ?? !options.quick;
/** Whole-run budget: generous per cycle, plus the final read-back and the sweep wait. */
const RUN_BUDGET_MS = (CYCLES * 120 + 420) * 1000;
const KILL_MIN_MS = 1_000;
const KILL_MAX_MS = 15_000;
const ALIVE_LIMIT_MS = 30_000;
const ALIVE_ABORT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** An interrupted streamed upload holds its timestamp (425) for its lease; after this it must be gone. */
const PENDING_LIMIT_MS = 130_000;
/** Stats may lag the index briefly (documented ≤ 1 s); re-read them this long before failing. */
const STATS_RETRY_MS = 1_000;
/** Records read back one by one after each cycle besides the ones the cycle touched. */
const READBACK_SAMPLE = 24;

const BASE_TS = 1_700_000_000_000_000;
const NONE_BUCKETS = ["cl-a", "cl-b"];
const ENTRIES = ["e0", "e1", "grp/e2", "grp/e3"];
const FIFO_BUCKET = "cl-fifo";
const FIFO_ENTRIES = ["f0", "f1"];
const FIFO_QUOTA = 5_000_000;
const BUCKET_SETTINGS = {
  "cl-a": {},
  "cl-b": { max_block_records: 48 },
  [FIFO_BUCKET]: { quota_type: "FIFO", quota_size: FIFO_QUOTA, max_block_records: 6, max_block_size: 1_000_000 },
};
const MAX_BLOCK_SIZE = { "cl-a": 64_000_000, "cl-b": 64_000_000, [FIFO_BUCKET]: 1_000_000 };
const CONTENT_TYPES = ["application/octet-stream", "text/plain", "image/jpeg", "application/json"];

const runStarted = Date.now();
const elapsed = () => `${((Date.now() - runStarted) / 1000).toFixed(1)} s`;
const log = (...args) => console.log(`crash-loop [${elapsed()}]`, ...args);

// ---------------------------------------------------------------------------------------------
// Violations

const violations = [];
const VIOLATION_KINDS = [
  "lost",
  "altered",
  "phantom",
  "resurrected",
  "rejected-trace",
  "indeterminate-bad",
  "stuck-425",
  "server-5xx",
  "unexpected-status",
  "duplicate-accepted",
  "listing",
  "stats",
  "fifo-quota",
  "fifo-order",
  "alive",
  "lingering",
  "index",
  "orphans",
  "log",
];
function violation(kind, detail, key) {
  if (!VIOLATION_KINDS.includes(kind)) throw new Error(`unknown violation kind ${kind}`);
  violations.push({ kind, detail, key, cycle: currentCycle });
  if (violations.length <= 60) console.log(`crash-loop: VIOLATION ${kind} (cycle ${currentCycle}): ${detail}`);
}
let currentCycle = 0;

// ---------------------------------------------------------------------------------------------
// Journal and model
//
// Journal lines: `INTENT <id> <op> <json>`, `ACK <id> <status> <json>`, `FAIL <id> <message>`,
// `RESOLVE <id> <json>` (what the verifier observed about an indeterminate record), `CYCLE`/`KILL`
// markers. The model of what must be stored is rebuilt from the journal file alone.

const recordKey = (b, e, ts) => `${b}\u0000${e}\u0000${ts}`;
const labelsKey = (labels) =>
  JSON.stringify(
    Object.entries(labels)
      .sort()
      .map(([k, v]) => [k, v]),
  );

class Model {
  constructor() {
    /** key → record: { b, e, ts, size, ct, sha, fifo, exists: yes|no|maybe, labelOptions, ... } */
    this.records = new Map();
    /** "bucket/entry" → its records, in journal order. */
    this.byEntry = new Map();
    this.ops = new Map();
    this.counts = {
      ackedRecords: 0,
      indeterminateRecords: 0,
      rejectedRecords: 0,
      ackedDeletes: 0,
      ackedPatches: 0,
      retryLater: 0,
    };
    this.runtime = [];
  }

  apply(line) {
    const [kind, id, third] = line.split(" ", 3);
    const rest = line.slice(kind.length + id.length + (third === undefined ? 1 : third.length + 2) + 1);
    if (kind === "INTENT") this.intent(Number(id), third, JSON.parse(rest));
    else if (kind === "ACK") this.ack(Number(id), Number(third), JSON.parse(rest));
    else if (kind === "FAIL") this.fail(Number(id));
    else if (kind === "RESOLVE") this.resolve(JSON.parse(line.slice(kind.length + id.length + 2)));
  }

  recordsOf(op) {
    if (op.op === "write" || op.op === "dup") return [{ ...op.data, dup: op.op === "dup" }];
    if (op.op === "batch1") return op.data.records.map((r) => ({ ...r, b: op.data.b, e: op.data.e }));
    if (op.op === "batch2") return op.data.records.map((r) => ({ ...r, b: op.data.b }));
    return [];
  }

  intent(id, opName, data) {
    const op = { id, op: opName, data, done: false };
    this.ops.set(id, op);
    for (const r of this.recordsOf(op)) {
      const key = recordKey(r.b, r.e, r.ts);
      if (r.dup) continue;
      if (this.records.has(key)) throw new Error(`journal: timestamp ${r.ts} of ${r.b}/${r.e} written twice (op ${id})`);
      const rec = {
        key,
        b: r.b,
        e: r.e,
        ts: r.ts,
        size: r.size,
        ct: r.ct,
        sha: r.sha,
        fifo: r.b === FIFO_BUCKET,
        exists: "maybe",
        labelOptions: [r.labels],
        writeOp: id,
        history: [id],
        cycle: data.cycle,
        intentAt: data.at,
        touched: data.cycle,
      };
      this.records.set(key, rec);
      const entryKey = `${r.b}/${r.e}`;
      if (!this.byEntry.has(entryKey)) this.byEntry.set(entryKey, []);
      this.byEntry.get(entryKey).push(rec);
    }
    if (opName === "patch" || opName === "delete") {
      const rec = this.records.get(recordKey(data.b, data.e, data.ts));
      if (rec) {
        rec.history.push(id);
        rec.touched = data.cycle;
      }
    }
  }

  ack(id, status, extra) {
    const op = this.ops.get(id);
    if (!op || op.done) return;
    op.done = true;
    op.status = status;
    if (op.op === "patch" || op.op === "delete") return this.finishMutation(op, status);
    const errors = extra.errors ?? {};
    for (const r of this.recordsOf(op)) {
      const key = recordKey(r.b, r.e, r.ts);
      const perRecord = errors[key];
      const code = perRecord ? Number(perRecord.split(",")[0]) : status;
      if (r.dup) {
        if (code === 200) this.runtime.push({ kind: "duplicate-accepted", key, detail: `op ${id} (${op.op})` });
        // 503 (a dying runtime's proxy answering "retry later"): nothing was done, as for any write.
        else if (code === 503) this.fiveXX(key, `dup op ${id}: 503`, code);
        else if (code !== 409)
          this.runtime.push({ kind: "unexpected-status", key, detail: `dup op ${id}: ${perRecord ?? status}` });
        continue;
      }
      const rec = this.records.get(key);
      if (code === 200) {
        rec.exists = "yes";
        rec.acked = true;
        this.counts.ackedRecords++;
      } else if (code >= 400 && code < 500) {
        rec.exists = "no";
        rec.rejected = `${perRecord ?? status}`;
        this.counts.rejectedRecords++;
        this.runtime.push({ kind: "unexpected-status", key, detail: `op ${id} (${op.op}) refused: ${perRecord ?? status}` });
      } else {
        rec.indeterminate = true;
        this.counts.indeterminateRecords++;
        this.fiveXX(key, `op ${id} (${op.op}): ${perRecord ?? status} ${extra.body ?? ""}`, code);
      }
    }
  }

  /** 503 asks to retry (its write is indeterminate, counted); any other 5xx is a violation. */
  fiveXX(key, detail, status) {
    if (status === 503) this.counts.retryLater++;
    else this.runtime.push({ kind: "server-5xx", key, detail });
  }

  fail(id) {
    const op = this.ops.get(id);
    if (!op || op.done) return;
    op.done = true;
    op.failed = true;
    if (op.op === "patch" || op.op === "delete") return this.finishMutation(op, 0);
    for (const r of this.recordsOf(op)) {
      if (r.dup) continue;
      const rec = this.records.get(recordKey(r.b, r.e, r.ts));
      rec.indeterminate = true;
      this.counts.indeterminateRecords++;
    }
  }

  /** A write still without ACK/FAIL when the verifier runs is indeterminate too. */
  closeOpen() {
    for (const op of this.ops.values()) if (!op.done) this.fail(op.id);
  }

  finishMutation(op, status) {
    const { b, e, ts } = op.data;
    const rec = this.records.get(recordKey(b, e, ts));
    if (!rec) return;
    if (op.op === "patch") {
      const apply = (labels) => {
        const next = { ...labels, ...op.data.set };
        for (const name of op.data.remove) delete next[name];
        return next;
      };
      if (status === 200) {
        rec.labelOptions = uniqueLabels(rec.labelOptions.map(apply));
        rec.patched = true;
        this.counts.ackedPatches++;
      } else if (status === 0 || status >= 500) {
        rec.labelOptions = uniqueLabels([...rec.labelOptions, ...rec.labelOptions.map(apply)]);
        if (status >= 500) this.fiveXX(rec.key, `patch op ${op.id}: ${status}`, status);
      } else if (rec.exists === "yes") {
        this.runtime.push({ kind: "unexpected-status", key: rec.key, detail: `patch op ${op.id} of a stored record: ${status}` });
      }
    } else {
      if (status === 200) {
        rec.exists = "no";
        rec.deleted = true;
        this.counts.ackedDeletes++;
      } else if (status === 0 || status >= 500) {
        if (rec.exists !== "no") rec.exists = "maybe";
        rec.deleteMaybe = true;
        if (status >= 500) this.fiveXX(rec.key, `delete op ${op.id}: ${status}`, status);
      } else if (rec.exists === "yes") {
        this.runtime.push({
          kind: "unexpected-status",
          key: rec.key,
          detail: `delete op ${op.id} of a stored record: ${status}`,
        });
      }
    }
  }

  resolve({ key, exists, labels, evicted }) {
    const rec = this.records.get(key);
    if (!rec) return;
    rec.exists = exists ? "yes" : "no";
    if (exists && labels) rec.labelOptions = [labels];
    if (evicted) rec.evicted = true;
    rec.resolved = true;
  }

  entryRecords(b, e) {
    return [...(this.byEntry.get(`${b}/${e}`) ?? [])].sort((x, y) => x.ts - y.ts);
  }
}

function uniqueLabels(options) {
  const seen = new Map();
  for (const labels of options) seen.set(labelsKey(labels), labels);
  return [...seen.values()];
}

class Journal {
  constructor(file) {
    this.file = file;
    this.nextId = 1;
    this.live = new Model();
  }

  append(line) {
    appendFileSync(this.file, `${line}\n`);
    this.live.apply(line);
  }

  intent(op, data) {
    const id = this.nextId++;
    this.append(`INTENT ${id} ${op} ${JSON.stringify(data)}`);
    return id;
  }

  ack(id, status, extra = {}) {
    if (extra.response) {
      const { response } = extra;
      extra = { ...extra, response: undefined };
      if (response.status !== 200) extra.body = response.body.toString("utf8").slice(0, 200);
    }
    this.append(`ACK ${id} ${status} ${JSON.stringify(extra)}`);
  }

  fail(id, error) {
    this.append(`FAIL ${id} ${String(error?.message ?? error).replace(/\s+/g, " ")}`);
  }

  resolve(data) {
    this.append(`RESOLVE 0 ${JSON.stringify(data)}`);
  }

  marker(text) {
    appendFileSync(this.file, `${text}\n`);
  }

  /** The model of the journal file, replayed from disk. */
  replay() {
    const model = new Model();
    for (const line of readFileSync(this.file, "utf8").split("\n")) {
      if (/^(INTENT|ACK|FAIL|RESOLVE) /.test(line)) model.apply(line);
    }
    return model;
  }

  /** Journal lines of the given operation ids (for violation reports). */
  linesOf(ids) {
    const wanted = new Set(ids.map(String));
    return readFileSync(this.file, "utf8")
      .split("\n")
      .filter((line) => {
        const [kind, id] = line.split(" ", 2);
        return ["INTENT", "ACK", "FAIL"].includes(kind) && wanted.has(id);
      });
  }
}

// ---------------------------------------------------------------------------------------------
// Workload

const tsCounters = new Map();
function nextTs(b, e, rng) {
  const key = `${b}/${e}`;
  const ts = (tsCounters.get(key) ?? BASE_TS) + rng.int(1, 5_000);
  tsCounters.set(key, ts);
  return ts;
}

let opSeq = 0;
function makeRecord(b, e, ts, profile, rng, cycle) {
  const size = sizeOf(profile, SEED, b, e, ts);
  const data = payloadOf(size, SEED, b, e, ts);
  const sha = sha256Hex(data);
  const labels = { sha256: sha, n: String(++opSeq) };
  if (rng.chance(0.5)) labels.r = rng.chance(0.2) ? `w${rng.int(0, 99)},x${rng.int(0, 9)}` : `w${rng.int(0, 999)}`;
  return { b, e, ts, size, ct: rng.pick(CONTENT_TYPES), labels, sha, data, cycle };
}
const journalRecord = ({ data, ...rest }) => rest;

/** Records of (b, e) that are certainly stored and may be mutated by their owner. */
function stableRecords(model, b, e) {
  return (model.byEntry.get(`${b}/${e}`) ?? []).filter((rec) => rec.exists === "yes" && !rec.fifo);
}

class Workload {
  constructor({ journal, client, cycle, fifoChecks }) {
    this.journal = journal;
    this.client = client;
    this.cycle = cycle;
    this.stopping = false;
    this.fifoChecks = fifoChecks;
    this.requests = 0;
  }

  /** Sends one request under an INTENT; ACK on any full answer, FAIL on a socket error. */
  async send(op, data, method, urlPath, init) {
    const id = this.journal.intent(op, { ...data, cycle: this.cycle, at: Date.now() });
    this.requests++;
    try {
      const response = await this.client.request(method, urlPath, init);
      return { id, response };
    } catch (error) {
      this.journal.fail(id, error);
      return { id, error };
    }
  }

  async single(b, e, rng, profile) {
    const rec = makeRecord(b, e, nextTs(b, e, rng), profile, rng, this.cycle);
    const headers = { "content-type": rec.ct };
    for (const [k, v] of Object.entries(rec.labels)) headers[`x-reduct-label-${k}`] = v;
    const { id, response } = await this.send("write", journalRecord(rec), "POST", `${entryPath(b, e)}?ts=${rec.ts}`, {
      headers,
      body: rec.data,
    });
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
    return response?.status === 200;
  }

  async duplicate(b, e, rng) {
    const target = rng.pick(stableRecords(this.journal.live, b, e));
    if (!target) return;
    const data = payloadOf(Math.max(1, target.size % 4096), SEED, b, e, target.ts, "dup");
    const { id, response } = await this.send(
      "dup",
      { b, e, ts: target.ts, size: data.length, sha: sha256Hex(data) },
      "POST",
      `${entryPath(b, e)}?ts=${target.ts}`,
      { headers: { "content-type": "text/plain", "x-reduct-label-dup": "yes" }, body: data },
    );
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
  }

  async batchV1(b, e, rng, withDuplicate) {
    const count = rng.int(2, 20);
    const records = [];
    for (let i = 0; i < count; i++) records.push(makeRecord(b, e, nextTs(b, e, rng), "batch", rng, this.cycle));
    const wire = records.map((r) => ({ ts: r.ts, contentType: r.ct, labels: r.labels, data: r.data }));
    const journaled = records.map(({ b: _b, e: _e, ...rest }) => journalRecord(rest));
    if (withDuplicate) {
      const target = rng.pick(stableRecords(this.journal.live, b, e));
      if (target) {
        const data = payloadOf(Math.max(1, target.size % 2048), SEED, b, e, target.ts, "dup");
        wire.push({ ts: target.ts, contentType: "text/plain", labels: { dup: "yes" }, data });
        journaled.push({ ts: target.ts, size: data.length, sha: sha256Hex(data), dup: true });
      }
    }
    const { headers, body } = renderV1Batch(wire);
    const { id, response } = await this.send("batch1", { b, e, records: journaled }, "POST", `${entryPath(b, e)}/batch`, {
      headers,
      body,
    });
    if (response) {
      const errors = {};
      for (const [ts, text] of v1BatchErrors(response.headers)) errors[recordKey(b, e, ts)] = text;
      this.journal.ack(id, response.status, { errors, error: errorOf(response), response });
    }
    return response?.status === 200;
  }

  async batchV2(b, own, rng) {
    const others = ENTRIES.filter((e) => e !== own);
    const entries = [own, ...others.filter(() => rng.chance(0.4))];
    const records = [];
    for (const e of entries) {
      const count = rng.int(1, 8);
      for (let i = 0; i < count; i++) records.push(makeRecord(b, e, nextTs(b, e, rng), "batch", rng, this.cycle));
    }
    const labelIndexes = rng.chance(0.5);
    const rendered = renderV2Batch(
      records.map((r) => ({ entry: r.e, ts: r.ts, contentType: r.ct, labels: r.labels, data: r.data })),
      { labelIndexes },
    );
    const journaled = records.map(({ b: _b, ...rest }) => journalRecord(rest));
    const { id, response } = await this.send(
      "batch2",
      { b, records: journaled, labelIndexes },
      "POST",
      `/api/v1/io/${encodeURIComponent(b)}/write`,
      { headers: rendered.headers, body: rendered.body },
    );
    if (response) {
      const errors = {};
      for (const [key, text] of v2BatchErrors(response.headers, rendered.entries, rendered.startTs)) {
        const [e, ts] = key.split("\u0000");
        errors[recordKey(b, e, Number(ts))] = text;
      }
      this.journal.ack(id, response.status, { errors, error: errorOf(response), response });
    }
  }

  async patch(b, e, rng) {
    const target = rng.pick(stableRecords(this.journal.live, b, e));
    if (!target) return;
    const value = `p${this.journal.nextId}`;
    const { id, response } = await this.send(
      "patch",
      { b, e, ts: target.ts, set: { u: value }, remove: ["r"] },
      "PATCH",
      `${entryPath(b, e)}?ts=${target.ts}`,
      { headers: { "x-reduct-label-u": value, "x-reduct-label-r": "" }, body: "" },
    );
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
  }

  async remove(b, e, rng) {
    const target = rng.pick(stableRecords(this.journal.live, b, e));
    if (!target) return;
    const { id, response } = await this.send("delete", { b, e, ts: target.ts }, "DELETE", `${entryPath(b, e)}?ts=${target.ts}`);
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
  }

  async writer(b, e, deadline) {
    const rng = new Rng(SEED, "writer", this.cycle, b, e);
    for (let n = 0; n < 100_000 && !this.stopping && Date.now() < deadline; n++) {
      const u = rng.next();
      if (u < 0.5) await this.single(b, e, rng, "full");
      else if (u < 0.6) await this.batchV1(b, e, rng, false);
      else if (u < 0.64) await this.batchV1(b, e, rng, true);
      else if (u < 0.74) await this.batchV2(b, e, rng);
      else if (u < 0.86) await this.patch(b, e, rng);
      else if (u < 0.94) await this.remove(b, e, rng);
      else await this.duplicate(b, e, rng);
    }
  }

  async fifoWriter(e, deadline) {
    const rng = new Rng(SEED, "fifo-writer", this.cycle, e);
    for (let n = 0; n < 100_000 && !this.stopping && Date.now() < deadline; n++) {
      const ok = rng.chance(0.7)
        ? await this.single(FIFO_BUCKET, e, rng, "full")
        : await this.batchV1(FIFO_BUCKET, e, rng, false);
      if (ok && n % 3 === 0 && !this.stopping) await this.fifoChecks(this.client);
    }
  }

  run(deadline) {
    const writers = [];
    for (const b of NONE_BUCKETS) for (const e of ENTRIES) writers.push(this.writer(b, e, deadline));
    for (const e of FIFO_ENTRIES) writers.push(this.fifoWriter(e, deadline));
    return Promise.allSettled(writers);
  }
}

// ---------------------------------------------------------------------------------------------
// FIFO quota

let fifoMaxOver = Number.NEGATIVE_INFINITY;
/** Descriptor bytes of the records that may be in flight at once (§3.2 checks content length only). */
const FIFO_ALLOWANCE = FIFO_ENTRIES.length * 260;
async function checkFifoQuota(client) {
  try {
    const response = await client.request("GET", `/api/v1/b/${FIFO_BUCKET}`, { timeoutMs: 10_000 });
    if (response.status !== 200) return;
    const size = JSON.parse(response.body.toString("utf8")).info.size;
    fifoMaxOver = Math.max(fifoMaxOver, size - FIFO_QUOTA);
    if (size > FIFO_QUOTA + FIFO_ALLOWANCE) {
      violation(
        "fifo-quota",
        `${FIFO_BUCKET} size ${size} > quota ${FIFO_QUOTA} (+${FIFO_ALLOWANCE} descriptor bytes in flight)`,
      );
    }
  } catch {
    // the server was killed meanwhile
  }
}

// ---------------------------------------------------------------------------------------------
// Verification

function sameLabels(a, b) {
  return labelsKey(a) === labelsKey(b);
}

/** GET /b/:bucket with a few retries on 503 / socket errors right after a restart. */
async function getBucket(client, b) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    let response;
    try {
      response = await client.request("GET", `/api/v1/b/${b}`, { timeoutMs: 15_000 });
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (response?.status === 200) return JSON.parse(response.body.toString("utf8"));
    if (response && response.status !== 503) throw new Error(`GET /b/${b} answered ${response.status} ${errorOf(response)}`);
    if (Date.now() > deadline) throw new Error(`GET /b/${b} kept answering ${response?.status}`);
    await sleep(250);
  }
}

/** Reads one record by timestamp and compares it with the model. Returns the observation. */
async function readRecord(client, rec) {
  let response;
  try {
    response = await client.request("GET", `${entryPath(rec.b, rec.e)}?ts=${rec.ts}`, { timeoutMs: 30_000 });
  } catch (error) {
    return { status: 0, error: error.message };
  }
  if (response.status !== 200) return { status: response.status, error: errorOf(response) };
  const labels = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (name.startsWith("x-reduct-label-")) labels[name.slice("x-reduct-label-".length)] = String(value);
  }
  return {
    status: 200,
    ts: Number(response.headers["x-reduct-time"]),
    contentType: String(response.headers["content-type"] ?? ""),
    contentLength: Number(response.headers["content-length"]),
    size: response.body.length,
    sha256: sha256Hex(response.body),
    labels,
  };
}

/** Differences between an observation (listing or GET) and the model's record; [] when identical. */
function differences(rec, seen, { single }) {
  const out = [];
  if (seen.size !== rec.size) out.push(`size ${seen.size} != ${rec.size}`);
  if (seen.sha256 !== rec.sha) out.push(`sha256 ${seen.sha256.slice(0, 12)}… != ${rec.sha.slice(0, 12)}…`);
  if (seen.contentType !== rec.ct) out.push(`content-type '${seen.contentType}' != '${rec.ct}'`);
  if (!rec.labelOptions.some((labels) => sameLabels(labels, seen.labels))) {
    out.push(`labels ${JSON.stringify(seen.labels)} not in ${JSON.stringify(rec.labelOptions)}`);
  }
  if (single) {
    if (seen.ts !== rec.ts) out.push(`x-reduct-time ${seen.ts} != ${rec.ts}`);
    if (seen.contentLength !== rec.size) out.push(`content-length ${seen.contentLength} != ${rec.size}`);
  }
  return out;
}

async function pool(items, concurrency, fn) {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  });
  await Promise.all(workers);
}

const verifyTotals = {
  lost: 0,
  altered: 0,
  phantoms: 0,
  indeterminatePresent: 0,
  indeterminateAbsent: 0,
  evicted: 0,
  readbacks: 0,
};

/**
 * Verifies the running server against the journal. `final`: read back every record by GET and
 * cross-check the listing with a v2 /io query. Returns the listings (bucket → entry → records).
 */
async function verify(client, journal, { final }) {
  const model = journal.replay();
  model.closeOpen();
  const live = journal.live;
  if (model.records.size !== live.records.size) {
    violation("listing", `journal replay has ${model.records.size} records, the live model ${live.records.size}`);
  }
  const listings = new Map();
  const toRead = [];
  const deadline = Date.now() + 300_000;
  const resolutions = [];

  // List every entry (4 at a time), then compare bucket by bucket.
  const entriesOf = (b) => (b === FIFO_BUCKET ? FIFO_ENTRIES : ENTRIES);
  const parentsOf = (b) =>
    new Set(
      entriesOf(b)
        .filter((e) => e.includes("/"))
        .map((e) => e.slice(0, e.lastIndexOf("/"))),
    );
  const jobs = [];
  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) for (const e of [...entriesOf(b), ...parentsOf(b)]) jobs.push([b, e]);
  const prefetched = new Map();
  await pool(jobs, 4, async ([b, e]) => prefetched.set(`${b}/${e}`, await listEntryV1(client, b, e, { deadline })));

  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) {
    const entries = entriesOf(b);
    const info = await getBucket(client, b);
    const serverEntries = info.entries.map((entry) => entry.name);
    const parents = parentsOf(b);
    for (const name of serverEntries) {
      if (!entries.includes(name) && !parents.has(name)) violation("phantom", `${b}: entry '${name}' was never written`);
    }
    const byEntry = new Map();
    listings.set(b, byEntry);
    for (const e of [...entries, ...parents]) {
      const listing = prefetched.get(`${b}/${e}`);
      for (const problem of listing.problems) violation("listing", problem);
      byEntry.set(e, listing.records);
      if (parents.has(e)) {
        for (const seen of listing.records) violation("phantom", `${b}/${e}@${seen.ts}: a record in an entry never written to`);
        continue;
      }
      const expected = model.entryRecords(b, e);
      const listed = new Map();
      for (const seen of listing.records) {
        if (listed.has(seen.ts)) violation("listing", `${b}/${e}@${seen.ts} listed twice`);
        listed.set(seen.ts, seen);
      }
      // Listed records: known, meant to exist (or maybe), identical.
      for (const seen of listing.records) {
        const rec = model.records.get(recordKey(b, e, seen.ts));
        if (!rec) {
          verifyTotals.phantoms++;
          violation("phantom", `${b}/${e}@${seen.ts} (${seen.size} B) was never sent`);
          continue;
        }
        if (rec.exists === "no") {
          const why = rec.deleted
            ? "an ACKed delete"
            : rec.rejected
              ? `a refused write (${rec.rejected})`
              : "being absent earlier";
          violation(rec.rejected ? "rejected-trace" : "resurrected", `${b}/${e}@${seen.ts} is listed after ${why}`, rec.key);
          continue;
        }
        const diff = differences(rec, seen, { single: false });
        if (diff.length) {
          if (rec.exists === "yes") {
            verifyTotals.altered++;
            violation("altered", `${b}/${e}@${seen.ts} (listing): ${diff.join("; ")}`, rec.key);
          } else violation("indeterminate-bad", `${b}/${e}@${seen.ts} (listing, indeterminate): ${diff.join("; ")}`, rec.key);
          continue;
        }
        if (rec.exists === "maybe" || rec.labelOptions.length > 1) {
          if (rec.exists === "maybe") verifyTotals.indeterminatePresent++;
          resolutions.push({ key: rec.key, exists: true, labels: seen.labels });
        }
        if (final || rec.touched === currentCycle || rec.exists === "maybe") toRead.push({ rec, listed: true });
      }
      // Expected records that are not listed.
      const fifoMissing = [];
      for (const rec of expected) {
        if (listed.has(rec.ts)) continue;
        if (rec.exists === "yes") {
          if (rec.fifo) fifoMissing.push(rec);
          else toRead.push({ rec, listed: false });
        } else if (rec.exists === "maybe") toRead.push({ rec, listed: false });
        else if (rec.deleted && (final || rec.touched === currentCycle)) toRead.push({ rec, listed: false });
      }
      if (fifoMissing.length) {
        // FIFO eviction removes the oldest blocks: every evicted record is older than every
        // ACKed record still stored.
        const presentAcked = expected.filter((rec) => rec.exists === "yes" && listed.has(rec.ts));
        const oldestPresent = presentAcked.length ? presentAcked[0].ts : Number.POSITIVE_INFINITY;
        for (const rec of fifoMissing) {
          if (rec.ts > oldestPresent) {
            verifyTotals.lost++;
            violation("fifo-order", `${b}/${e}@${rec.ts} ACKed and missing while the older ${oldestPresent} is stored`, rec.key);
          } else {
            verifyTotals.evicted++;
            resolutions.push({ key: rec.key, exists: false, evicted: true });
            toRead.push({ rec, listed: false, evicted: true });
          }
        }
      }
    }
    // Random sample of older stored records, read one by one.
    if (!final) {
      const rng = new Rng(SEED, "sample", currentCycle, b);
      const stored = [...model.records.values()].filter(
        (rec) =>
          rec.b === b &&
          rec.exists === "yes" &&
          rec.touched !== currentCycle &&
          byEntry.get(rec.e)?.some((seen) => seen.ts === rec.ts),
      );
      for (let i = 0; i < READBACK_SAMPLE && stored.length; i++)
        toRead.push({ rec: stored[rng.int(0, stored.length - 1)], listed: true });
    }
  }

  // One-by-one reads.
  const pending = [];
  await pool(toRead, 8, async ({ rec, listed, evicted }) => {
    verifyTotals.readbacks++;
    const seen = await readRecord(client, rec);
    const where = `${rec.b}/${rec.e}@${rec.ts}`;
    if (seen.status === 200) {
      if (!listed) {
        if (rec.exists === "yes" && !evicted) violation("listing", `${where} reads back 200 but is not listed`, rec.key);
        else if (rec.exists === "no" || evicted) {
          violation(
            evicted ? "listing" : rec.deleted ? "resurrected" : "rejected-trace",
            `${where} reads back 200 (${rec.deleted ? "ACKed delete" : evicted ? "evicted" : "absent"})`,
            rec.key,
          );
        } else violation("listing", `${where} (indeterminate) reads back 200 but is not listed`, rec.key);
        return;
      }
      const diff = differences(rec, seen, { single: true });
      if (diff.length) {
        if (rec.exists === "yes") {
          verifyTotals.altered++;
          violation("altered", `${where} (GET): ${diff.join("; ")}`, rec.key);
        } else violation("indeterminate-bad", `${where} (GET, indeterminate): ${diff.join("; ")}`, rec.key);
      }
      return;
    }
    if (seen.status === 404) {
      if (listed) violation("listing", `${where} is listed but GET answers 404`, rec.key);
      else if (rec.exists === "yes" && !evicted) {
        verifyTotals.lost++;
        violation("lost", `${where} (${rec.size} B, op ${rec.writeOp}) was ACKed and is gone: ${seen.error}`, rec.key);
      } else if (rec.exists === "maybe") {
        verifyTotals.indeterminateAbsent++;
        resolutions.push({ key: rec.key, exists: false });
      }
      return;
    }
    if (seen.status === 425 && rec.exists !== "yes" && !listed) {
      const age = Date.now() - (rec.intentAt ?? 0);
      if (age > PENDING_LIMIT_MS) {
        violation(
          "stuck-425",
          `${where} still 425 ${(age / 1000).toFixed(0)} s after its write was sent: ${seen.error}`,
          rec.key,
        );
      } else pending.push(rec);
      return;
    }
    if (seen.status >= 500) violation("server-5xx", `${where}: GET answered ${seen.status} ${seen.error}`, rec.key);
    else if (rec.exists === "yes" && !evicted) {
      verifyTotals.lost++;
      violation("lost", `${where} (ACKed): GET answered ${seen.status} ${seen.error}`, rec.key);
    } else violation("unexpected-status", `${where}: GET answered ${seen.status} ${seen.error}`, rec.key);
  });
  for (const resolution of resolutions) journal.resolve(resolution);

  // Stats: entry and bucket figures equal the listed records (retried briefly: stats may lag).
  await checkStats(client, listings);

  if (final) await crossCheckV2(client, listings);
  return { listings, pending, model };
}

async function checkStats(client, listings) {
  const started = Date.now();
  for (;;) {
    const problems = [];
    for (const [b, byEntry] of listings) {
      const info = await getBucket(client, b);
      const serverEntries = new Map(info.entries.map((entry) => [entry.name, entry]));
      let total = 0;
      let oldest = 0;
      let latest = 0;
      for (const [e, records] of byEntry) {
        const entry = serverEntries.get(e);
        if (!entry) {
          if (records.length) problems.push(`${b}/${e}: ${records.length} records listed, entry absent from GET /b`);
          continue;
        }
        total += entry.size;
        const count = records.length;
        if (entry.record_count !== count) problems.push(`${b}/${e}: record_count ${entry.record_count}, listed ${count}`);
        const first = count ? records[0].ts : 0;
        const last = count ? records[count - 1].ts : 0;
        if (entry.oldest_record !== first || entry.latest_record !== last) {
          problems.push(`${b}/${e}: oldest/latest ${entry.oldest_record}/${entry.latest_record}, listed ${first}/${last}`);
        }
        if (count) {
          oldest = oldest ? Math.min(oldest, first) : first;
          latest = Math.max(latest, last);
        }
        // size = Σ content + Σ descriptor (§3.8); only each descriptor's block offset is unknown here.
        let low = 0;
        let high = 0;
        const maxBegin = MAX_BLOCK_SIZE[b];
        for (const seen of records) {
          const bounds = descriptorBounds({
            ts: seen.ts,
            size: seen.size,
            labels: seen.labels,
            contentType: seen.contentType,
            updated: "u" in seen.labels,
            maxBegin,
          });
          low += seen.size + bounds.low;
          high += seen.size + bounds.high;
        }
        if (entry.size < low || entry.size > high)
          problems.push(`${b}/${e}: size ${entry.size} outside [${low}, ${high}] of the listed records`);
      }
      for (const name of serverEntries.keys()) if (!byEntry.has(name)) problems.push(`${b}: unexpected entry ${name}`);
      if (info.info.size !== total) problems.push(`${b}: bucket size ${info.info.size} != Σ entry sizes ${total}`);
      if (info.info.entry_count !== info.entries.length)
        problems.push(`${b}: entry_count ${info.info.entry_count} != ${info.entries.length}`);
      if (info.info.oldest_record !== oldest || info.info.latest_record !== latest) {
        problems.push(`${b}: oldest/latest ${info.info.oldest_record}/${info.info.latest_record}, listed ${oldest}/${latest}`);
      }
      if (b === FIFO_BUCKET) {
        fifoMaxOver = Math.max(fifoMaxOver, info.info.size - FIFO_QUOTA);
        if (info.info.size > FIFO_QUOTA + FIFO_ALLOWANCE) problems.push(`${b}: size ${info.info.size} above quota ${FIFO_QUOTA}`);
      }
    }
    if (problems.length === 0) return;
    if (Date.now() - started > STATS_RETRY_MS) {
      for (const problem of problems) violation(problem.includes("quota") ? "fifo-quota" : "stats", problem);
      return;
    }
    await sleep(250);
  }
}

/** The v2 /io listing of each bucket must show exactly what the v1 listing showed. */
async function crossCheckV2(client, listings) {
  for (const [b, byEntry] of listings) {
    let v2;
    try {
      v2 = await listBucketV2(client, b, { deadline: Date.now() + 300_000 });
    } catch (error) {
      violation("listing", `v2 listing of ${b}: ${error.message}`);
      continue;
    }
    for (const problem of v2.problems) violation("listing", problem);
    for (const [e, records] of byEntry) {
      const other = new Map((v2.byEntry.get(e) ?? []).map((record) => [record.ts, record]));
      for (const record of records) {
        const seen = other.get(record.ts);
        if (!seen) {
          violation("listing", `${b}/${e}@${record.ts} in the v1 listing but not in /io`);
          continue;
        }
        other.delete(record.ts);
        if (seen.sha256 !== record.sha256 || seen.contentType !== record.contentType || !sameLabels(seen.labels, record.labels)) {
          violation(
            "listing",
            `${b}/${e}@${record.ts}: /io shows ${seen.size} B ${seen.contentType} ${JSON.stringify(seen.labels)}`,
          );
        }
      }
      for (const ts of other.keys()) violation("listing", `${b}/${e}@${ts} in /io but not in the v1 listing`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// State inspection (server stopped)

let maxUntracked = 0;
function inspectDead(dataPath, scratch, { indeterminateSoFar, label, listings, exact }) {
  let state;
  try {
    state = inspectState(dataPath, scratch);
  } catch (error) {
    return { checked: false, reason: `state inspection failed: ${error.message}` };
  }
  if (!state.ok) return { checked: false, reason: state.reason };
  const objects = classifyObjects(state);
  maxUntracked = Math.max(maxUntracked, objects.untracked.length);
  if (objects.untracked.length > indeterminateSoFar) {
    violation(
      "orphans",
      `${label}: ${objects.untracked.length} R2 objects no index row or garbage queue knows (> ${indeterminateSoFar} indeterminate writes): ${objects.untracked.slice(0, 3).join(", ")}`,
    );
  }
  if (objects.missing.length) {
    violation(
      "index",
      `${label}: ${objects.missing.length} index keys without an R2 object: ${objects.missing.slice(0, 3).join(", ")}`,
    );
  }
  if (exact && listings) {
    // The index itself: entry sizes are exactly Σ(size + descriptor) of its ready records, and
    // its ready records are exactly the listed ones.
    for (const [b, byEntry] of listings) {
      const bucket = state.buckets.get(b);
      if (!bucket) {
        violation("index", `${label}: no bucket object for ${b}`);
        continue;
      }
      for (const entry of bucket.entries) {
        const rows = bucket.records.get(entry.name) ?? [];
        const ready = rows.filter((row) => row.state === "ready");
        const sum = ready.reduce((acc, row) => acc + row.size + row.meta_len, 0);
        if (sum !== entry.size)
          violation(
            "index",
            `${label}: ${b}/${entry.name} size ${entry.size} != Σ(size+meta_len) ${sum} of ${ready.length} ready rows`,
          );
        if (ready.length !== entry.record_count)
          violation("index", `${label}: ${b}/${entry.name} record_count ${entry.record_count} != ${ready.length} ready rows`);
        const listed = byEntry.get(entry.name);
        if (listed) {
          const a = ready.map((row) => row.ts).join(",");
          const c = listed.map((record) => record.ts).join(",");
          if (a !== c)
            violation(
              "index",
              `${label}: ${b}/${entry.name} index rows differ from the listing (${ready.length} vs ${listed.length})`,
            );
        }
      }
    }
  }
  return { checked: true, objects, garbage: state.garbage, pendingRecords: state.pendingRecords };
}

// ---------------------------------------------------------------------------------------------
// Main

const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-crash-loop-"));
const dataPath = path.join(workDir, "state");
const scratch = path.join(workDir, "scratch");
const tree = options["live-tree"] ? undefined : snapshotTree(path.join(workDir, "tree"));
mkdirSync(scratch, { recursive: true });
const journal = new Journal(path.join(workDir, "journal.log"));
const apiToken = randomBytes(16).toString("hex");
let server;
let serverCount = 0;
let finishing = false;
const aliveTimes = [];
const cycleRows = [];

async function launch() {
  serverCount++;
  const port = await freePort();
  server = startServer({
    tag: `server #${serverCount}`,
    port,
    dataPath,
    logPath: path.join(workDir, "server.log"),
    env: { RS_API_TOKEN: apiToken, RS_INSTANCE_NAME: "crash-loop" },
    tree,
  });
  appendFileSync(path.join(workDir, "server.log"), `\n===== crash-loop: server #${serverCount} on port ${port} =====\n`);
  const seconds = await server.waitAlive(ALIVE_ABORT_MS);
  aliveTimes.push(seconds);
  if (seconds * 1000 > ALIVE_LIMIT_MS)
    violation("alive", `server #${serverCount} answered /alive after ${seconds.toFixed(1)} s (> 30 s)`);
  return createHttpClient(server.url, { token: apiToken, connections: 24, timeoutMs: REQUEST_TIMEOUT_MS });
}

function scanLog() {
  let text = "";
  try {
    text = readFileSync(path.join(workDir, "server.log"), "utf8");
  } catch {}
  const lines = text.split("\n").filter((line) => /uncaught|unhandled/i.test(line));
  return lines;
}

async function finish(code) {
  if (finishing) return;
  finishing = true;
  if (server) await server.stop();
  if (code !== 0 || options.keep) console.log(`crash-loop: journal, state and server log kept in ${workDir}`);
  else rmSync(workDir, { recursive: true, force: true });
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`crash-loop: ${signal} received, stopping the server`);
    finish(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`crash-loop: the run exceeded its budget of ${RUN_BUDGET_MS / 1000} s`);
  finish(1);
}, RUN_BUDGET_MS);
watchdog.unref();

async function main() {
  console.log(
    `crash-loop: seed ${SEED} (replay: tsx scripts/crash-loop.ts --seed ${SEED} --cycles ${CYCLES}${options.quick ? " --quick" : ""})`,
  );
  console.log(`crash-loop: ${CYCLES} cycles, work dir ${workDir}`);
  console.log(`crash-loop: server code ${treeVersion()}${tree ? ", run from a snapshot copy" : ", run from the live tree"}`);
  journal.marker(`RUN ${JSON.stringify({ seed: SEED, cycles: CYCLES })}`);
  let client = await launch();
  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) {
    const response = await client.request("POST", `/api/v1/b/${b}`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify(BUCKET_SETTINGS[b]),
    });
    if (response.status !== 200) throw new Error(`creating ${b} answered ${response.status} ${errorOf(response)}`);
  }

  let indeterminateSoFar = 0;
  /** How many cycles ended which way (--kill). */
  const killModes = {};
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    currentCycle = cycle;
    const killAfter = new Rng(SEED, "kill", cycle).int(KILL_MIN_MS, KILL_MAX_MS);
    journal.marker(`CYCLE ${cycle} ${JSON.stringify({ killAfter })}`);
    const before = { ...journal.live.counts };
    const workload = new Workload({ journal, client, cycle, fifoChecks: checkFifoQuota });
    const cycleStart = Date.now();
    const running = workload.run(cycleStart + KILL_MAX_MS + 5_000);
    await sleep(killAfter);
    workload.stopping = true;
    const mode = options.kill === "mix" ? KILL_MODES[new Rng(SEED, "kill-mode", cycle).int(0, 2)] : options.kill;
    const killed = await endServer(server, mode);
    killModes[mode] = (killModes[mode] ?? 0) + 1;
    journal.marker(`KILL ${cycle} ${JSON.stringify({ afterMs: Date.now() - cycleStart, mode })}`);
    if (!killed) throw new Error(`cycle ${cycle}: the server's process group survived (${mode})`);
    client.close();
    await Promise.race([running, sleep(REQUEST_TIMEOUT_MS + 5_000)]);
    for (const op of journal.live.ops.values()) if (!op.done) journal.fail(op.id, "no answer before the kill");
    indeterminateSoFar = journal.live.counts.indeterminateRecords;

    const dead = inspectDead(dataPath, scratch, { indeterminateSoFar, label: `after kill ${cycle}` });
    client = await launch();
    const verifyStarted = Date.now();
    const verified = await verify(client, journal, { final: false });
    const verifySeconds = (Date.now() - verifyStarted) / 1000;
    for (const item of journal.live.runtime.splice(0)) violation(item.kind, item.detail, item.key);
    const counts = journal.live.counts;
    const row = {
      cycle,
      killMs: killAfter,
      requests: workload.requests,
      acked: counts.ackedRecords - before.ackedRecords,
      indeterminate: counts.indeterminateRecords - before.indeterminateRecords,
      deletes: counts.ackedDeletes - before.ackedDeletes,
      patches: counts.ackedPatches - before.ackedPatches,
      alive: aliveTimes[aliveTimes.length - 1],
      verifyS: Number(verifySeconds.toFixed(1)),
      pending425: verified.pending.length,
      untracked: dead.checked ? dead.objects.untracked.length : "-",
      violations: violations.filter((item) => item.cycle === cycle).length,
    };
    cycleRows.push(row);
    log(
      `cycle ${cycle}/${CYCLES}: killed (${mode}) after ${(killAfter / 1000).toFixed(1)} s, ${row.requests} requests, ${row.acked} records ACKed, ` +
        `${row.indeterminate} indeterminate, ${row.deletes} deletes, ${row.patches} label updates; /alive after ${row.alive.toFixed(1)} s; ` +
        `verified in ${row.verifyS} s; ` +
        `${row.pending425} still 425; R2 untracked at kill: ${row.untracked}; violations so far: ${violations.length}`,
    );
  }

  if (options["self-test"]) return selfTest(client);

  // Final read-back: every record by GET, v2 cross-check; wait for interrupted uploads to end.
  currentCycle = CYCLES + 1;
  log("final verification: every record read back, v2 /io listing cross-check");
  let final = await verify(client, journal, { final: true });
  const waitUntil = Date.now() + PENDING_LIMIT_MS + 10_000;
  while (final.pending.length && Date.now() < waitUntil) {
    log(`${final.pending.length} interrupted uploads still answer 425; waiting for their leases`);
    await sleep(10_000);
    final = await verify(client, journal, { final: false });
  }
  for (const rec of final.pending) violation("stuck-425", `${rec.b}/${rec.e}@${rec.ts} still 425 at the end of the run`, rec.key);
  for (const item of journal.live.runtime.splice(0)) violation(item.kind, item.detail, item.key);

  // Stop and compare the index with the listing exactly; count R2 orphans.
  await server.stop();
  const stopped = inspectDead(dataPath, scratch, {
    indeterminateSoFar: journal.live.counts.indeterminateRecords,
    label: "after the run",
    listings: final.listings,
    exact: true,
  });
  let swept;
  if (SWEEP && stopped.checked) {
    const lastDue = Math.max(0, ...stopped.garbage.map((item) => item.notBefore));
    const waitMs = Math.min(Math.max(lastDue - Date.now(), 0) + 20_000, 200_000);
    log(
      `sweep check: restarting and waiting ${(waitMs / 1000).toFixed(0)} s for the alarm to delete ${stopped.garbage.length} queued objects`,
    );
    client = await launch();
    for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) await getBucket(client, b); // wake every bucket object
    await sleep(waitMs);
    await server.stop();
    swept = inspectDead(dataPath, scratch, { indeterminateSoFar: 0, label: "after the sweep" });
    if (swept.checked) {
      const overdue = swept.garbage.filter((item) => item.notBefore < Date.now() - 20_000);
      if (swept.objects.queued > 0 && overdue.length > 0) {
        violation(
          "orphans",
          `after the sweep: ${overdue.length} garbage keys are overdue, ${swept.objects.queued} objects still queued`,
        );
      }
    }
  }
  const logErrors = scanLog();
  if (logErrors.length)
    violation("log", `${logErrors.length} uncaught/unhandled lines in the server log, e.g. ${logErrors[0].slice(0, 200)}`);

  // Summary
  const counts = journal.live.counts;
  console.log("\ncrash-loop: per cycle");
  console.table(cycleRows);
  const summary = {
    seed: SEED,
    cycles: CYCLES,
    acked: counts.ackedRecords,
    indeterminate: counts.indeterminateRecords,
    "indeterminate present/absent": `${verifyTotals.indeterminatePresent}/${verifyTotals.indeterminateAbsent}`,
    lost: violations.filter((item) => item.kind === "lost" || item.kind === "fifo-order").length,
    altered: violations.filter((item) => item.kind === "altered").length,
    phantoms: violations.filter((item) => item.kind === "phantom").length,
    "acked deletes": counts.ackedDeletes,
    "acked label updates": counts.ackedPatches,
    "503 answers (indeterminate)": counts.retryLater,
    "fifo evicted": verifyTotals.evicted,
    "fifo max over quota (B)": Number.isFinite(fifoMaxOver) ? fifoMaxOver : "-",
    "reads back (GET)": verifyTotals.readbacks,
    "/alive max (s)": Math.max(...aliveTimes).toFixed(1),
    "R2 untracked max": stopped.checked ? maxUntracked : `not checked: ${stopped.reason}`,
    "R2 objects at end": stopped.checked
      ? `${stopped.objects.total} (${stopped.objects.referenced} referenced, ${stopped.objects.queued} queued for deletion)`
      : "-",
    "R2 after sweep": swept?.checked
      ? `${swept.objects.total} (${swept.objects.referenced} referenced, ${swept.objects.queued} queued, ${swept.objects.untracked.length} untracked)`
      : SWEEP
        ? "not checked"
        : "not run (--quick)",
    "cycles ended by": Object.entries(killModes)
      .map(([mode, n]) => `${mode} ${n}`)
      .join(", "),
    violations: violations.length,
    "run time": elapsed(),
  };
  console.log("\ncrash-loop: summary");
  console.table(Object.entries(summary).map(([what, value]) => ({ what, value })));
  if (violations.length) {
    const byKind = {};
    for (const item of violations) byKind[item.kind] = (byKind[item.kind] ?? 0) + 1;
    console.log("crash-loop: violations by kind", byKind);
    const model = journal.replay();
    for (const item of violations.slice(0, 10)) {
      console.log(`\n- ${item.kind} (cycle ${item.cycle}): ${item.detail}`);
      const rec = item.key ? model.records.get(item.key) : undefined;
      if (rec)
        for (const line of journal.linesOf(rec.history))
          console.log(`    ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
    }
  }
  console.log(`\ncrash-loop: ${violations.length ? "FAILED" : "passed"} (seed ${SEED}) in ${elapsed()}`);
  await finish(violations.length ? 1 : 0);
}

/** Checks that the verifier notices faults: injects four and expects exactly those four reports. */
async function selfTest(client) {
  currentCycle = 2;
  const before = violations.length;
  const rng = new Rng(SEED, "self-test");
  const stable = (e) => stableRecords(journal.live, "cl-a", e).filter((rec) => rec.labelOptions.length === 1);
  // 1. phantom: a record the journal never heard of.
  const phantom = makeRecord("cl-a", "e0", nextTs("cl-a", "e0", rng), "batch", rng, 2);
  const put = await client.request("POST", `${entryPath("cl-a", "e0")}?ts=${phantom.ts}`, { body: phantom.data });
  // 2. lost: a write the journal says was ACKed but that was never sent.
  const ghost = makeRecord("cl-a", "e1", nextTs("cl-a", "e1", rng), "batch", rng, 2);
  const ghostId = journal.intent("write", { ...journalRecord(ghost), cycle: 2, at: Date.now() });
  journal.ack(ghostId, 200, {});
  // 3. altered: a stored record whose labels change behind the journal's back.
  const victim = rng.pick(stable("grp/e2"));
  const patched = await client.request("PATCH", `${entryPath("cl-a", "grp/e2")}?ts=${victim.ts}`, {
    headers: { "x-reduct-label-n": "tampered" },
    body: "",
  });
  // 4. resurrected: a delete the journal says was ACKed but that was never sent.
  const survivor = rng.pick(stable("grp/e3"));
  const deleteId = journal.intent("delete", { b: "cl-a", e: "grp/e3", ts: survivor.ts, cycle: 2, at: Date.now() });
  journal.ack(deleteId, 200, {});
  if (put.status !== 200 || patched.status !== 200) throw new Error(`self-test setup failed: ${put.status} ${patched.status}`);

  await verify(client, journal, { final: false });
  const found = violations.slice(before);
  const expected = [
    ["phantom", `cl-a/e0@${phantom.ts}`],
    ["lost", `cl-a/e1@${ghost.ts}`],
    ["altered", `cl-a/grp/e2@${victim.ts}`],
    ["resurrected", `cl-a/grp/e3@${survivor.ts}`],
  ];
  const missed = expected.filter(([kind, where]) => !found.some((item) => item.kind === kind && item.detail.includes(where)));
  const extra = found.filter((item) => !expected.some(([kind, where]) => item.kind === kind && item.detail.includes(where)));
  for (const [kind, where] of missed) console.log(`crash-loop: self-test MISSED ${kind} of ${where}`);
  for (const item of extra) console.log(`crash-loop: self-test unexpected report ${item.kind}: ${item.detail}`);
  const ok = missed.length === 0 && extra.length === 0 && before === 0;
  console.log(
    `crash-loop: self-test ${ok ? "passed: the verifier reported exactly the 4 injected faults" : "FAILED"} (seed ${SEED})`,
  );
  await finish(ok ? 0 : 1);
}

main().catch(async (error) => {
  console.error("crash-loop:", error?.stack ?? error);
  console.error(`crash-loop: aborted (seed ${SEED})`);
  await finish(1);
});
