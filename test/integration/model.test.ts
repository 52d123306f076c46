/**
 * Model-based property test (reliability.md T4; issue 7 part 4): fast-check command sequences run
 * against the Worker and against a plain in-memory model of one bucket (entry → ts → {bytes,
 * labels, content type} plus the quota settings). Every status, error message and body is checked
 * against the model: 409 on a duplicate timestamp, 404 on anything missing, HARD quota refusals,
 * reads byte for byte, query listings record for record.
 *
 * Commands: single writes (small, and > 128 KiB so they stream to R2), v1 batch writes (only if
 * `POST …/batch` answers a probe with 200), reads (by ts and latest), query listings, record and
 * entry deletion (with descendants), label updates, HARD/NONE quota settings, two concurrent writes
 * at one timestamp (exactly one wins and its bytes are stored) and racing writes under a HARD quota
 * (the quota is never overrun: Σ accepted contents fit, every refused write would not have fit).
 *
 * Sizes: exact descriptor lengths depend on block layout and sealing timing, so each entry's size
 * is checked between bounds from ReductStore's formula (src/storage/record-meta.ts, `begin` between
 * 0 and all content written to the entry before the record) together with record counts, time
 * bounds and Σ entry sizes = bucket size. A single write under a HARD quota is predicted exactly
 * from the bucket size read just before it.
 *
 * Runs: VITE_MODEL_RUNS (default 60) sequences of at most 20 commands, seed VITE_MODEL_SEED
 * (printed). Vite passes only VITE_-prefixed variables into workerd, so the full run is
 * `VITE_MODEL_RUNS=1000 npx vitest run test/integration/model` (MODEL_RUNS is read too, for a config
 * that forwards it).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { recordMetaLength } from "../../src/storage/record-meta";
import { api, uniqueName } from "../helpers/http";
import { bytesOf, sha256 } from "../helpers/records";

const viteEnv = (import.meta as unknown as { env?: Record<string, string | undefined> }).env ?? {};
const RUNS = Number(viteEnv.VITE_MODEL_RUNS ?? viteEnv.MODEL_RUNS ?? 60);
const SEED = Number(viteEnv.VITE_MODEL_SEED ?? viteEnv.MODEL_SEED ?? 7_070_707);
const MAX_COMMANDS = 20;
const DEFAULT_CT = "application/octet-stream";
const SMALL_MAX = 128 * 1024;

// ---- the model ------------------------------------------------------------------------------------

interface ModelRecord {
  sha: string;
  size: number;
  labels: Record<string, string>;
  contentType: string;
  /** A label update re-encodes the descriptor with state FINISHED (+2 bytes). */
  finished: boolean;
  /** Upper bound of the record's `begin`: content written to its entry before it. */
  beginMax: number;
}

interface Model {
  /** Every entry that exists (parents included), with its records. */
  entries: Map<string, Map<number, ModelRecord>>;
  /** Content bytes ever written to each entry (bounds `begin`). */
  written: Map<string, number>;
  quota: { type: "NONE" | "HARD"; size: number };
}

interface Real {
  bucket: string;
}

let batchAvailable = false;

function ensureEntry(model: Model, name: string): Map<number, ModelRecord> {
  const parts = name.split("/");
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    if (!model.entries.has(prefix)) model.entries.set(prefix, new Map());
  }
  const records = model.entries.get(name);
  if (!records) throw new Error("unreachable");
  return records;
}

/**
 * Adds a record the server acknowledged. `concurrent`: content of other writes to the entry that
 * were accepted at the same time, which the server may have placed before this one.
 */
function addRecord(
  model: Model,
  entry: string,
  ts: number,
  record: Omit<ModelRecord, "beginMax" | "finished">,
  concurrent = 0,
): void {
  const records = ensureEntry(model, entry);
  const written = model.written.get(entry) ?? 0;
  records.set(ts, { ...record, finished: false, beginMax: written + concurrent });
  model.written.set(entry, written + record.size);
}

function metaBounds(ts: number, record: ModelRecord): [number, number] {
  const base = { ts, labels: record.labels, contentType: record.contentType, finished: record.finished };
  return [
    recordMetaLength({ ...base, begin: 0, end: record.size }),
    recordMetaLength({ ...base, begin: record.beginMax, end: record.beginMax + record.size }),
  ];
}

// ---- talking to the Worker ------------------------------------------------------------------------

interface Payload {
  size: number;
  seed: number;
  labels: Record<string, string>;
  contentType?: string;
}

const payloadBytes = (payload: Payload) => bytesOf(payload.size, payload.seed);

async function send(bucket: string, entry: string, ts: number, payload: Payload) {
  const headers: Record<string, string> = {};
  if (payload.contentType) headers["content-type"] = payload.contentType;
  for (const [name, value] of Object.entries(payload.labels)) headers[`x-reduct-label-${name}`] = value;
  const response = await api("POST", `/b/${bucket}/${entry}?ts=${ts}`, { headers, body: payloadBytes(payload) });
  await response.arrayBuffer();
  return { status: response.status, error: response.headers.get("x-reduct-error") };
}

async function modelRecordOf(payload: Payload): Promise<Omit<ModelRecord, "beginMax" | "finished">> {
  return {
    sha: await sha256(payloadBytes(payload)),
    size: payload.size,
    labels: { ...payload.labels },
    contentType: payload.contentType ?? DEFAULT_CT,
  };
}

async function bucketSize(bucket: string): Promise<number> {
  const response = await api("GET", `/b/${bucket}`);
  const document = (await response.json()) as { info: { size: number } };
  return document.info.size;
}

const duplicate = (ts: number) => `A record with timestamp ${ts} already exists`;
const quotaExceeded = (bucket: string) => `Quota of '${bucket}' exceeded`;
const entryNotFound = (bucket: string, entry: string) => `Entry '${entry}' not found in bucket '${bucket}'`;
const recordNotFound = (bucket: string, entry: string, ts: number) => `Record ${ts} not found in entry ${bucket}/${entry}`;

async function expectStatus(response: Response, status: number, error: string | null, what: string): Promise<void> {
  const body = await response.text();
  expect({ what, status: response.status, error: response.headers.get("x-reduct-error") }).toEqual({ what, status, error });
  if (error !== null && response.status !== 204 && body !== "") expect(JSON.parse(body)).toEqual({ detail: error });
}

/** A 200 read matches the model record: bytes, time, content type, labels. */
async function expectRecord(response: Response, ts: number, record: ModelRecord, what: string): Promise<void> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  expect({ what, status: response.status }).toEqual({ what, status: 200 });
  const labels = Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([name, value]) => [name.slice(15), value]),
  );
  expect({
    what,
    ts: response.headers.get("x-reduct-time"),
    contentType: response.headers.get("content-type"),
    length: response.headers.get("content-length"),
    sha: await sha256(bytes),
    labels,
  }).toEqual({
    what,
    ts: String(ts),
    contentType: record.contentType,
    length: String(record.size),
    sha: record.sha,
    labels: record.labels,
  });
}

/** Every record of an entry through a query and v1 batch reads: {ts, size, ct, labels, sha}. */
async function listing(bucket: string, entry: string): Promise<{ status: number; error: string | null; records: unknown[] }> {
  const created = await api("POST", `/b/${bucket}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY", ttl: 30 }) });
  if (created.status !== 200) {
    await created.text();
    return { status: created.status, error: created.headers.get("x-reduct-error"), records: [] };
  }
  const { id } = (await created.json()) as { id: number };
  const records: unknown[] = [];
  for (;;) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
    const body = new Uint8Array(await response.arrayBuffer());
    if (response.status === 204) break;
    expect(response.status, `batch read of ${entry}`).toBe(200);
    const headers = [...response.headers]
      .filter(([name]) => name.startsWith("x-reduct-time-"))
      .map(([name, value]) => ({ ts: Number(name.slice(14)), value }))
      .sort((a, b) => a.ts - b.ts);
    let offset = 0;
    for (const { ts, value } of headers) {
      const [size = "", contentType = "", ...items] = value.split(",");
      const length = Number(size);
      const labels = Object.fromEntries(
        items.map((item) => [item.slice(0, item.indexOf("=")), item.slice(item.indexOf("=") + 1)]),
      );
      records.push({ ts, size: length, contentType, labels, sha: await sha256(body.subarray(offset, offset + length)) });
      offset += length;
    }
    expect(offset).toBe(body.byteLength);
    if (response.headers.get("x-reduct-last") === "true") break;
  }
  return { status: 200, error: null, records };
}

function modelListing(model: Model, entry: string): unknown[] {
  return [...(model.entries.get(entry) ?? new Map<number, ModelRecord>())]
    .sort(([a], [b]) => a - b)
    .map(([ts, record]) => ({ ts, size: record.size, contentType: record.contentType, labels: record.labels, sha: record.sha }));
}

/** The whole bucket against the model: entry list, counts, time bounds, size bounds, Σ sizes. */
async function expectBucketMatches(model: Model, real: Real): Promise<void> {
  const response = await api("GET", `/b/${real.bucket}`);
  const document = (await response.json()) as {
    info: { size: number; entry_count: number; oldest_record: number; latest_record: number };
    settings: { quota_type: string; quota_size: number };
    entries: { name: string; size: number; record_count: number; oldest_record: number; latest_record: number }[];
  };
  const names = [...model.entries.keys()].sort();
  expect(document.entries.map((entry) => entry.name)).toEqual(names);
  expect(document.info.entry_count).toBe(names.length);
  expect(document.info.size, "bucket size = Σ entry sizes").toBe(document.entries.reduce((sum, entry) => sum + entry.size, 0));
  expect({ type: document.settings.quota_type, size: document.settings.quota_size }).toEqual(model.quota);
  for (const entry of document.entries) {
    const records = [...(model.entries.get(entry.name) ?? new Map<number, ModelRecord>())];
    const times = records.map(([ts]) => ts);
    let min = 0;
    let max = 0;
    for (const [ts, record] of records) {
      const [low, high] = metaBounds(ts, record);
      min += record.size + low;
      max += record.size + high;
    }
    expect({
      entry: entry.name,
      count: entry.record_count,
      oldest: entry.oldest_record,
      latest: entry.latest_record,
      sizeInBounds: entry.size >= min && entry.size <= max,
    }).toEqual({
      entry: entry.name,
      count: records.length,
      oldest: times.length ? Math.min(...times) : 0,
      latest: times.length ? Math.max(...times) : 0,
      sizeInBounds: true,
    });
    if (!(entry.size >= min && entry.size <= max)) throw new Error(`${entry.name}: size ${entry.size} not in [${min}, ${max}]`);
  }
}

// ---- commands -------------------------------------------------------------------------------------

type Command = fc.AsyncCommand<Model, Real>;

/** Commands run (not just generated: fast-check skips those whose check() fails), by kind. */
const executed = new Map<string, number>();

/** Counts a command when it runs; otherwise transparent. */
class Counted implements Command {
  constructor(readonly inner: Command) {}
  check = (model: Readonly<Model>) => this.inner.check(model);
  async run(model: Model, real: Real): Promise<void> {
    const kind = String(this.inner).slice(0, String(this.inner).indexOf("("));
    executed.set(kind, (executed.get(kind) ?? 0) + 1);
    await this.inner.run(model, real);
  }
  toString = () => this.inner.toString();
}

const describePayload = (p: Payload) =>
  `${p.size}B${p.contentType ? ` ${p.contentType}` : ""}${Object.keys(p.labels).length ? ` ${JSON.stringify(p.labels)}` : ""}`;

class Write implements Command {
  constructor(
    readonly entry: string,
    readonly ts: number,
    readonly payload: Payload,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const existing = model.entries.get(this.entry)?.has(this.ts);
    const used = model.quota.type === "HARD" && !existing ? await bucketSize(real.bucket) : 0;
    const result = await send(real.bucket, this.entry, this.ts, this.payload);
    const what = this.toString();
    if (existing) {
      expect({ what, ...result }).toEqual({ what, status: 409, error: duplicate(this.ts) });
    } else if (model.quota.type === "HARD" && used + this.payload.size > model.quota.size) {
      expect({ what, ...result }).toEqual({ what, status: 400, error: quotaExceeded(real.bucket) });
    } else {
      expect({ what, ...result }).toEqual({ what, status: 200, error: null });
      addRecord(model, this.entry, this.ts, await modelRecordOf(this.payload));
    }
  }
  toString = () => `write(${this.entry}@${this.ts}, ${describePayload(this.payload)})`;
}

class BatchWrite implements Command {
  constructor(
    readonly entry: string,
    readonly records: ReadonlyArray<{ ts: number; payload: Payload }>,
  ) {}
  check = () => batchAvailable;
  async run(model: Model, real: Real): Promise<void> {
    const ordered = [...this.records].sort((a, b) => a.ts - b.ts);
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    for (const { ts, payload } of ordered) {
      const labels = Object.entries(payload.labels).map(([k, v]) => `,${k}=${v}`);
      headers[`x-reduct-time-${ts}`] = `${payload.size},${payload.contentType ?? ""}${labels.join("")}`;
    }
    const body = new Uint8Array(ordered.reduce((sum, r) => sum + r.payload.size, 0));
    let offset = 0;
    for (const { payload } of ordered) {
      body.set(payloadBytes(payload), offset);
      offset += payload.size;
    }
    const hard = model.quota.type === "HARD";
    const usedBefore = hard ? await bucketSize(real.bucket) : 0;
    const response = await api("POST", `/b/${real.bucket}/${this.entry}/batch`, { headers, body });
    await response.text();
    const what = this.toString();
    expect({ what, status: response.status }).toEqual({ what, status: 200 });
    // Records are admitted in body (= ts) order; usage grows by content + descriptor of each.
    let usedMin = usedBefore;
    let usedMax = usedBefore;
    const entryRecords = model.entries.get(this.entry);
    for (const { ts, payload } of ordered) {
      const error = response.headers.get(`x-reduct-error-${ts}`);
      const label = `${what}: record ${ts}`;
      if (entryRecords?.has(ts)) {
        expect({ label, error }).toEqual({ label, error: `409,${duplicate(ts)}` });
        continue;
      }
      const size = payload.size;
      if (hard && usedMin + size > model.quota.size) {
        expect({ label, error }).toEqual({ label, error: `400,${quotaExceeded(real.bucket)}` });
        continue;
      }
      if (hard && usedMax + size > model.quota.size) {
        // Within the descriptor-size uncertainty: either answer is right; follow the server.
        expect([null, `400,${quotaExceeded(real.bucket)}`], label).toContain(error);
      } else {
        expect({ label, error }).toEqual({ label, error: null });
      }
      if (error !== null) continue;
      addRecord(model, this.entry, ts, await modelRecordOf(payload));
      const added = model.entries.get(this.entry)?.get(ts);
      if (added) {
        const [low, high] = metaBounds(ts, added);
        usedMin += size + low;
        usedMax += size + high;
      }
    }
  }
  toString = () => `batch(${this.entry}: ${this.records.map((r) => `${r.ts}=${describePayload(r.payload)}`).join("; ")})`;
}

class Read implements Command {
  constructor(
    readonly entry: string,
    readonly ts: number | null,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const path = this.ts === null ? `/b/${real.bucket}/${this.entry}` : `/b/${real.bucket}/${this.entry}?ts=${this.ts}`;
    const response = await api("GET", path);
    const what = this.toString();
    const records = model.entries.get(this.entry);
    if (!records) return expectStatus(response, 404, entryNotFound(real.bucket, this.entry), what);
    const ts = this.ts ?? (records.size ? Math.max(...records.keys()) : null);
    const record = ts === null ? undefined : records.get(ts);
    if (ts === null) return expectStatus(response, 404, `No records in entry ${real.bucket}/${this.entry}`, what);
    if (!record) return expectStatus(response, 404, recordNotFound(real.bucket, this.entry, ts), what);
    return expectRecord(response, ts, record, what);
  }
  toString = () => `read(${this.entry}@${this.ts ?? "latest"})`;
}

class List implements Command {
  constructor(readonly entry: string) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const result = await listing(real.bucket, this.entry);
    const what = this.toString();
    if (!model.entries.has(this.entry)) {
      expect({ what, status: result.status, error: result.error }).toEqual({
        what,
        status: 404,
        error: entryNotFound(real.bucket, this.entry),
      });
      return;
    }
    expect({ what, records: result.records }).toEqual({ what, records: modelListing(model, this.entry) });
  }
  toString = () => `list(${this.entry})`;
}

class DeleteRecord implements Command {
  constructor(
    readonly entry: string,
    readonly ts: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const response = await api("DELETE", `/b/${real.bucket}/${this.entry}?ts=${this.ts}`);
    const records = model.entries.get(this.entry);
    const what = this.toString();
    if (!records) return expectStatus(response, 404, entryNotFound(real.bucket, this.entry), what);
    if (!records.has(this.ts)) return expectStatus(response, 404, recordNotFound(real.bucket, this.entry, this.ts), what);
    await expectStatus(response, 200, null, what);
    records.delete(this.ts);
  }
  toString = () => `deleteRecord(${this.entry}@${this.ts})`;
}

class DeleteEntry implements Command {
  constructor(readonly entry: string) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const response = await api("DELETE", `/b/${real.bucket}/${this.entry}`);
    const subtree = [...model.entries.keys()].filter((name) => name === this.entry || name.startsWith(`${this.entry}/`));
    const what = this.toString();
    if (subtree.length === 0) return expectStatus(response, 404, entryNotFound(real.bucket, this.entry), what);
    await expectStatus(response, 200, null, what);
    for (const name of subtree) {
      model.entries.delete(name);
      model.written.delete(name);
    }
  }
  toString = () => `deleteEntry(${this.entry})`;
}

class UpdateLabels implements Command {
  constructor(
    readonly entry: string,
    readonly ts: number,
    readonly changes: Record<string, string>,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const headers = Object.fromEntries(Object.entries(this.changes).map(([k, v]) => [`x-reduct-label-${k}`, v]));
    const response = await api("PATCH", `/b/${real.bucket}/${this.entry}?ts=${this.ts}`, { headers });
    const record = model.entries.get(this.entry)?.get(this.ts);
    const what = this.toString();
    if (!model.entries.has(this.entry)) return expectStatus(response, 404, entryNotFound(real.bucket, this.entry), what);
    if (!record) return expectStatus(response, 404, recordNotFound(real.bucket, this.entry, this.ts), what);
    await expectStatus(response, 200, null, what);
    for (const [name, value] of Object.entries(this.changes)) {
      if (value === "") delete record.labels[name];
      else record.labels[name] = value;
    }
    record.finished = true;
    const read = await api("GET", `/b/${real.bucket}/${this.entry}?ts=${this.ts}`);
    await expectRecord(read, this.ts, record, `${what}: read back`);
  }
  toString = () => `updateLabels(${this.entry}@${this.ts}, ${JSON.stringify(this.changes)})`;
}

class SetQuota implements Command {
  constructor(
    readonly type: "NONE" | "HARD",
    readonly size: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const response = await api("PUT", `/b/${real.bucket}`, {
      body: JSON.stringify({ quota_type: this.type, quota_size: this.size }),
    });
    await expectStatus(response, 200, null, this.toString());
    model.quota = { type: this.type, size: this.size };
  }
  toString = () => `setQuota(${this.type} ${this.size})`;
}

/** Two writes at one timestamp at the same time: one wins (its bytes are stored), the other is 409. */
class ConcurrentSameTs implements Command {
  constructor(
    readonly entry: string,
    readonly ts: number,
    readonly first: Payload,
    readonly second: Payload,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const existing = model.entries.get(this.entry)?.has(this.ts);
    const hard = model.quota.type === "HARD";
    const used = hard ? await bucketSize(real.bucket) : 0;
    const fits = (p: Payload) => !hard || used + p.size <= model.quota.size;
    const results = await Promise.all([
      send(real.bucket, this.entry, this.ts, this.first),
      send(real.bucket, this.entry, this.ts, this.second),
    ]);
    const what = this.toString();
    if (existing) {
      expect({ what, results }).toEqual({ what, results: [0, 1].map(() => ({ status: 409, error: duplicate(this.ts) })) });
      return;
    }
    const payloads = [this.first, this.second];
    const winners = results.flatMap((result, i) => (result.status === 200 ? [i] : []));
    expect(winners.length, `${what}: at most one write wins (${JSON.stringify(results)})`).toBeLessThanOrEqual(1);
    for (const [i, result] of results.entries()) {
      const payload = payloads[i] as Payload;
      if (result.status === 200) {
        expect(fits(payload), `${what}: the winner fits the quota`).toBe(true);
      } else if (result.status === 409) {
        expect({ what, error: result.error, someoneWon: winners.length === 1 }).toEqual({
          what,
          error: duplicate(this.ts),
          someoneWon: true,
        });
      } else {
        expect({ what, result, fits: fits(payload) }).toEqual({
          what,
          result: { status: 400, error: quotaExceeded(real.bucket) },
          fits: false,
        });
      }
    }
    if (winners.length === 0) {
      expect(payloads.some(fits), `${what}: nobody won although one fits (${JSON.stringify(results)})`).toBe(false);
      return;
    }
    const winner = payloads[winners[0] as number] as Payload;
    addRecord(model, this.entry, this.ts, await modelRecordOf(winner));
    const record = model.entries.get(this.entry)?.get(this.ts) as ModelRecord;
    await expectRecord(
      await api("GET", `/b/${real.bucket}/${this.entry}?ts=${this.ts}`),
      this.ts,
      record,
      `${what}: winner's bytes`,
    );
  }
  toString = () => `concurrent(${this.entry}@${this.ts}: ${describePayload(this.first)} | ${describePayload(this.second)})`;
}

/** Writes racing for the room left under a HARD quota. */
class QuotaRace implements Command {
  /** `room`: the share of the racing contents that fits, or null to race under the current quota. */
  constructor(
    readonly writes: ReadonlyArray<{ entry: string; ts: number; payload: Payload }>,
    readonly room: number | null,
  ) {}
  check = (model: Readonly<Model>) => this.room !== null || model.quota.type === "HARD";
  async run(model: Model, real: Real): Promise<void> {
    const usedBefore = await bucketSize(real.bucket);
    if (this.room !== null) {
      const total = this.writes.reduce((sum, w) => sum + w.payload.size, 0);
      const quota = { type: "HARD" as const, size: usedBefore + Math.floor(total * this.room) };
      const set = await api("PUT", `/b/${real.bucket}`, { body: JSON.stringify({ quota_type: "HARD", quota_size: quota.size }) });
      await expectStatus(set, 200, null, `${this.toString()}: set quota`);
      model.quota = quota;
    }
    const results = await Promise.all(this.writes.map((w) => send(real.bucket, w.entry, w.ts, w.payload)));
    const usedAfter = await bucketSize(real.bucket);
    const what = this.toString();
    let acceptedContent = 0;
    const acceptedByEntry = new Map<string, number>();
    const accepted: Array<{ entry: string; ts: number; payload: Payload }> = [];
    for (const [i, w] of this.writes.entries()) {
      const result = results[i] as { status: number; error: string | null };
      const label = `${what}: ${w.entry}@${w.ts}`;
      if (model.entries.get(w.entry)?.has(w.ts)) {
        expect({ label, ...result }).toEqual({ label, status: 409, error: duplicate(w.ts) });
        continue;
      }
      if (result.status === 200) {
        acceptedContent += w.payload.size;
        acceptedByEntry.set(w.entry, (acceptedByEntry.get(w.entry) ?? 0) + w.payload.size);
        accepted.push(w);
      } else {
        expect({ label, ...result }).toEqual({ label, status: 400, error: quotaExceeded(real.bucket) });
        // Refused only if it would not have fit even in the final state (usage only grew).
        expect(usedAfter + w.payload.size, `${label}: refused only when it did not fit`).toBeGreaterThan(model.quota.size);
      }
    }
    // The server ordered the accepted writes of one entry in some way: each may follow the others.
    const writtenBefore = new Map([...acceptedByEntry.keys()].map((entry) => [entry, model.written.get(entry) ?? 0]));
    for (const w of accepted) {
      const others = (acceptedByEntry.get(w.entry) ?? 0) - w.payload.size;
      model.written.set(w.entry, writtenBefore.get(w.entry) ?? 0);
      addRecord(model, w.entry, w.ts, await modelRecordOf(w.payload), others);
    }
    for (const [entry, size] of acceptedByEntry) model.written.set(entry, (writtenBefore.get(entry) ?? 0) + size);
    // Every admission saw at least the usage before the race plus the contents admitted before it.
    if (acceptedContent > 0) {
      expect(usedBefore + acceptedContent, `${what}: accepted contents fit the quota`).toBeLessThanOrEqual(model.quota.size);
    }
  }
  toString = () =>
    `quotaRace(${this.room === null ? "current quota" : `room ${this.room.toFixed(2)}`}: ` +
    `${this.writes.map((w) => `${w.entry}@${w.ts}=${w.payload.size}B`).join(", ")})`;
}

class CheckBucket implements Command {
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    await expectBucketMatches(model, real);
  }
  toString = () => "checkBucket()";
}

// ---- arbitraries ----------------------------------------------------------------------------------

const ENTRIES = ["x", "y", "x/z"] as const;
const entryArb = fc.constantFrom(...ENTRIES);
/** Few timestamps, so commands often meet records that exist. */
const tsArb = fc.integer({ min: 1, max: 4 }).map((k) => k * 1_000_003);
const smallSize = fc.integer({ min: 0, max: 2_000 });
const largeSize = fc.integer({ min: SMALL_MAX + 1, max: SMALL_MAX + 40_000 });
const sizeArb = fc.oneof({ weight: 5, arbitrary: smallSize }, { weight: 1, arbitrary: largeSize });
const labelValue = fc.stringMatching(/^[a-z0-9]{1,5}$/);
const labelsArb = fc.dictionary(fc.constantFrom("a", "b", "c"), labelValue, { maxKeys: 3 });
const payloadArb = (size: fc.Arbitrary<number> = sizeArb): fc.Arbitrary<Payload> =>
  fc.record({
    size,
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    labels: labelsArb,
    contentType: fc.constantFrom(undefined, "text/plain", "image/png"),
  });

const writeArb = fc.tuple(entryArb, tsArb, payloadArb()).map(([entry, ts, payload]): Command => new Write(entry, ts, payload));
const updateArb = fc
  .tuple(
    entryArb,
    tsArb,
    fc.dictionary(fc.constantFrom("a", "b", "c", "d"), fc.oneof(labelValue, fc.constant("")), { minKeys: 1, maxKeys: 3 }),
  )
  .map(([entry, ts, changes]): Command => new UpdateLabels(entry, ts, changes));

/** fast-check picks uniformly from this list: writes and label updates are listed twice to weigh more. */
const commandArbs: fc.Arbitrary<Command>[] = [
  writeArb,
  writeArb,
  updateArb,
  updateArb,
  fc
    .tuple(
      entryArb,
      fc.uniqueArray(fc.record({ ts: tsArb, payload: payloadArb(fc.oneof({ weight: 6, arbitrary: smallSize }, largeSize)) }), {
        minLength: 1,
        maxLength: 4,
        selector: (r) => r.ts,
      }),
    )
    .map(([entry, records]) => new BatchWrite(entry, records)),
  fc.tuple(entryArb, fc.option(tsArb, { nil: null })).map(([entry, ts]) => new Read(entry, ts)),
  entryArb.map((entry) => new List(entry)),
  fc.tuple(entryArb, tsArb).map(([entry, ts]) => new DeleteRecord(entry, ts)),
  entryArb.map((entry) => new DeleteEntry(entry)),
  fc
    .tuple(
      fc.constantFrom("NONE", "HARD") as fc.Arbitrary<"NONE" | "HARD">,
      fc.constantFrom(0, 1_000, 5_000, 200_000, 400_000, 2_000_000),
    )
    .map(([type, size]) => new SetQuota(type, size)),
  fc
    .tuple(entryArb, tsArb, payloadArb(), payloadArb())
    .map(([entry, ts, first, second]) => new ConcurrentSameTs(entry, ts, first, second)),
  fc
    .uniqueArray(fc.record({ entry: entryArb, ts: tsArb, payload: payloadArb() }), {
      minLength: 2,
      maxLength: 5,
      selector: (w) => `${w.entry}@${w.ts}`,
    })
    .chain((writes) =>
      fc.option(fc.double({ min: 0.2, max: 0.9, noNaN: true }), { nil: null }).map((room) => new QuotaRace(writes, room)),
    ),
  fc.constant(new CheckBucket()),
].map((arbitrary) => arbitrary.map((command): Command => new Counted(command)));

// ---- the property ---------------------------------------------------------------------------------

describe("model-based: the bucket behaves like the in-memory model", () => {
  it(`${RUNS} command sequences (seed ${SEED}) agree with the model`, { timeout: Math.max(60_000, RUNS * 6_000) }, async () => {
    const probeBucket = uniqueName("model-probe");
    const created = await api("POST", `/b/${probeBucket}`);
    expect(created.status).toBe(200);
    await created.text();
    const probe = await api("POST", `/b/${probeBucket}/p/batch`, { headers: { "x-reduct-time-1": "1," }, body: "x" });
    await probe.text();
    batchAvailable = probe.status === 200 && probe.headers.get("x-reduct-error-1") === null;
    console.log(
      `model test: seed ${SEED}, ${RUNS} runs, ≤ ${MAX_COMMANDS} commands, v1 batch writes ${batchAvailable ? "on" : "off"}`,
    );

    const started = Date.now();
    let sequences = 0;
    executed.clear();
    await fc.assert(
      fc.asyncProperty(fc.commands(commandArbs, { maxCommands: MAX_COMMANDS, size: "max" }), async (cmds) => {
        sequences++;
        const bucket = uniqueName("model");
        const response = await api("POST", `/b/${bucket}`);
        expect(response.status).toBe(200);
        await response.text();
        const model: Model = { entries: new Map(), written: new Map(), quota: { type: "NONE", size: 0 } };
        const real: Real = { bucket };
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await expectBucketMatches(model, real);
        for (const entry of model.entries.keys()) {
          expect({ entry, records: (await listing(bucket, entry)).records }).toEqual({
            entry,
            records: modelListing(model, entry),
          });
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    console.log(
      `model test: ${sequences} sequences, ${[...executed.values()].reduce((a, b) => a + b, 0)} commands run in ` +
        `${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(Object.fromEntries([...executed].sort()))}`,
    );
    expect(sequences).toBeGreaterThanOrEqual(RUNS);
  });
});
