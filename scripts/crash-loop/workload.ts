// The seeded workload of one crash-loop cycle: per bucket and entry a writer of single records,
// v1 and v2 batches, label updates, deletes and duplicate timestamps that must be refused, plus
// writers into the FIFO bucket that check its quota as they go. Every request is journaled.
import { renderV1Batch, renderV2Batch, v1BatchErrors, v2BatchErrors } from "../lib/batch-codec.ts";
import { errorOf, type HttpClient, type HttpResponse, type RequestSpec } from "../lib/http-client.ts";
import { payloadOf, Rng, type SizeProfileName, sha256Hex, sizeOf } from "../lib/prng.ts";
import { entryPath } from "../lib/reduct.ts";
import { type RunContext, violation } from "./context.ts";
import type { Journal } from "./journal.ts";
import { type Labels, type Model, type ModelRecord, recordKey } from "./model.ts";
import {
  BASE_TS,
  CONTENT_TYPES,
  ENTRIES,
  FIFO_ALLOWANCE,
  FIFO_BUCKET,
  FIFO_ENTRIES,
  FIFO_QUOTA,
  NONE_BUCKETS,
} from "./settings.ts";

/** A record about to be written: its bytes and what the journal keeps of it. */
export interface NewRecord {
  b: string;
  e: string;
  ts: number;
  size: number;
  ct: string;
  labels: Labels;
  sha: string;
  data: Buffer;
  cycle: number;
}

/** The next timestamp of (b, e): later than every earlier one of the run. */
export function nextTs(ctx: RunContext, b: string, e: string, rng: Rng): number {
  const key = `${b}/${e}`;
  const ts = (ctx.lastTs.get(key) ?? BASE_TS) + rng.int(1, 5_000);
  ctx.lastTs.set(key, ts);
  return ts;
}

/** A record of (b, e, ts) whose bytes derive from the seed; labels carry its sha256 and a serial number. */
export function makeRecord(
  ctx: RunContext,
  b: string,
  e: string,
  ts: number,
  profile: SizeProfileName,
  rng: Rng,
  cycle: number,
): NewRecord {
  const { seed } = ctx.settings;
  const size = sizeOf(profile, seed, b, e, ts);
  const data = payloadOf(size, seed, b, e, ts);
  const sha = sha256Hex(data);
  const labels: Labels = { sha256: sha, n: String(++ctx.recordSeq) };
  if (rng.chance(0.5)) labels.r = rng.chance(0.2) ? `w${rng.int(0, 99)},x${rng.int(0, 9)}` : `w${rng.int(0, 999)}`;
  return { b, e, ts, size, ct: rng.pick(CONTENT_TYPES), labels, sha, data, cycle };
}
/** What the journal keeps of a record: everything but its bytes. */
export const journalRecord = <T extends { data?: Buffer }>({ data: _data, ...rest }: T): Omit<T, "data"> => rest;

/** Records of (b, e) that are certainly stored and may be mutated by their owner. */
export function stableRecords(model: Model, b: string, e: string): ModelRecord[] {
  return (model.byEntry.get(`${b}/${e}`) ?? []).filter((rec) => rec.exists === "yes" && !rec.fifo);
}

export class Workload {
  readonly ctx: RunContext;
  readonly journal: Journal;
  readonly client: HttpClient;
  readonly cycle: number;
  /** Set when the cycle's kill is due: the writers stop starting requests. */
  stopping: boolean;
  requests: number;

  constructor(ctx: RunContext, { journal, client, cycle }: { journal: Journal; client: HttpClient; cycle: number }) {
    this.ctx = ctx;
    this.journal = journal;
    this.client = client;
    this.cycle = cycle;
    this.stopping = false;
    this.requests = 0;
  }

  /** Sends one request under an INTENT; ACK on any full answer, FAIL on a socket error. */
  async send(
    op: string,
    data: object,
    method: string,
    urlPath: string,
    init?: Omit<RequestSpec, "method" | "path">,
  ): Promise<{ id: number; response?: HttpResponse; error?: unknown }> {
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

  async single(b: string, e: string, rng: Rng, profile: SizeProfileName): Promise<boolean> {
    const rec = makeRecord(this.ctx, b, e, nextTs(this.ctx, b, e, rng), profile, rng, this.cycle);
    const headers: Record<string, string> = { "content-type": rec.ct };
    for (const [k, v] of Object.entries(rec.labels)) headers[`x-reduct-label-${k}`] = v;
    const { id, response } = await this.send("write", journalRecord(rec), "POST", `${entryPath(b, e)}?ts=${rec.ts}`, {
      headers,
      body: rec.data,
    });
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
    return response?.status === 200;
  }

  async duplicate(b: string, e: string, rng: Rng): Promise<void> {
    const target = rng.pick(stableRecords(this.journal.live, b, e));
    if (!target) return;
    const data = payloadOf(Math.max(1, target.size % 4096), this.ctx.settings.seed, b, e, target.ts, "dup");
    const { id, response } = await this.send(
      "dup",
      { b, e, ts: target.ts, size: data.length, sha: sha256Hex(data) },
      "POST",
      `${entryPath(b, e)}?ts=${target.ts}`,
      { headers: { "content-type": "text/plain", "x-reduct-label-dup": "yes" }, body: data },
    );
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
  }

  async batchV1(b: string, e: string, rng: Rng, withDuplicate: boolean): Promise<boolean> {
    const count = rng.int(2, 20);
    const records: NewRecord[] = [];
    for (let i = 0; i < count; i++)
      records.push(makeRecord(this.ctx, b, e, nextTs(this.ctx, b, e, rng), "batch", rng, this.cycle));
    const wire = records.map((r) => ({ ts: r.ts, contentType: r.ct, labels: r.labels, data: r.data }));
    const journaled: (Partial<NewRecord> & { dup?: boolean })[] = records.map(({ b: _b, e: _e, ...rest }) => journalRecord(rest));
    if (withDuplicate) {
      const target = rng.pick(stableRecords(this.journal.live, b, e));
      if (target) {
        const data = payloadOf(Math.max(1, target.size % 2048), this.ctx.settings.seed, b, e, target.ts, "dup");
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
      const errors: Record<string, string> = {};
      for (const [ts, text] of v1BatchErrors(response.headers)) errors[recordKey(b, e, ts)] = text;
      this.journal.ack(id, response.status, { errors, error: errorOf(response), response });
    }
    return response?.status === 200;
  }

  async batchV2(b: string, own: string, rng: Rng): Promise<void> {
    const others = ENTRIES.filter((e) => e !== own);
    const entries = [own, ...others.filter(() => rng.chance(0.4))];
    const records: NewRecord[] = [];
    for (const e of entries) {
      const count = rng.int(1, 8);
      for (let i = 0; i < count; i++)
        records.push(makeRecord(this.ctx, b, e, nextTs(this.ctx, b, e, rng), "batch", rng, this.cycle));
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
      const errors: Record<string, string> = {};
      for (const [key, text] of v2BatchErrors(response.headers, rendered.entries, rendered.startTs)) {
        const [e = "", ts] = key.split("\u0000");
        errors[recordKey(b, e, Number(ts))] = text;
      }
      this.journal.ack(id, response.status, { errors, error: errorOf(response), response });
    }
  }

  async patch(b: string, e: string, rng: Rng): Promise<void> {
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

  async remove(b: string, e: string, rng: Rng): Promise<void> {
    const target = rng.pick(stableRecords(this.journal.live, b, e));
    if (!target) return;
    const { id, response } = await this.send("delete", { b, e, ts: target.ts }, "DELETE", `${entryPath(b, e)}?ts=${target.ts}`);
    if (response) this.journal.ack(id, response.status, { error: errorOf(response), response });
  }

  async writer(b: string, e: string, deadline: number): Promise<void> {
    const rng = new Rng(this.ctx.settings.seed, "writer", this.cycle, b, e);
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

  async fifoWriter(e: string, deadline: number): Promise<void> {
    const rng = new Rng(this.ctx.settings.seed, "fifo-writer", this.cycle, e);
    for (let n = 0; n < 100_000 && !this.stopping && Date.now() < deadline; n++) {
      const ok = rng.chance(0.7)
        ? await this.single(FIFO_BUCKET, e, rng, "full")
        : await this.batchV1(FIFO_BUCKET, e, rng, false);
      if (ok && n % 3 === 0 && !this.stopping) await checkFifoQuota(this.ctx, this.client);
    }
  }

  run(deadline: number) {
    const writers: Promise<void>[] = [];
    for (const b of NONE_BUCKETS) for (const e of ENTRIES) writers.push(this.writer(b, e, deadline));
    for (const e of FIFO_ENTRIES) writers.push(this.fifoWriter(e, deadline));
    return Promise.allSettled(writers);
  }
}

/** The FIFO bucket must stay within its quota (plus the descriptors of records in flight). */
export async function checkFifoQuota(ctx: RunContext, client: HttpClient): Promise<void> {
  try {
    const response = await client.request("GET", `/api/v1/b/${FIFO_BUCKET}`, { timeoutMs: 10_000 });
    if (response.status !== 200) return;
    const size = JSON.parse(response.body.toString("utf8")).info.size;
    ctx.fifoMaxOver = Math.max(ctx.fifoMaxOver, size - FIFO_QUOTA);
    if (size > FIFO_QUOTA + FIFO_ALLOWANCE) {
      violation(
        ctx,
        "fifo-quota",
        `${FIFO_BUCKET} size ${size} > quota ${FIFO_QUOTA} (+${FIFO_ALLOWANCE} descriptor bytes in flight)`,
      );
    }
  } catch {
    // the server was killed meanwhile
  }
}
