/**
 * reduct-edge workloads (issue 6) as units (see index.ts): /alive, W1, W2 (v1/v2), W3 sizes, W4
 * (v1/v2), W5, W5s, W6. The ones that need endpoints beyond single records declare them in
 * `requires`; the probes (probes.ts) decide, and a missing endpoint is reported as "not
 * implemented by the server yet" with the probe's answer.
 */
import { gzipSync } from "node:zlib";
import { init as initZstd, compress as zstdCompress } from "@bokuweb/zstd-wasm";
import { fieldOf, messageOf } from "../../scripts/lib/errors.ts";
import type { HttpClient, HttpResponse, RequestSpec } from "../../scripts/lib/http-client.ts";
import { percentile } from "../../scripts/lib/stats.ts";
import { createClient, runLoad, send } from "../lib/http-load.ts";
import {
  type Context,
  type FeatureName,
  type Features,
  type Scale,
  type ScanSummary,
  type Session,
  serverOf,
  type Unit,
  type WrittenData,
} from "../lib/types.ts";
import {
  AUTH,
  batchRecords,
  batchV1Write,
  batchV2Write,
  json,
  KIB,
  labelsV1Update,
  labelsV2Update,
  okWithoutRecordErrors,
  randomBytes,
  TS0,
  v1RecordCount,
  v2RecordCount,
  writeRecord,
} from "./protocol.ts";

/**
 * Every write workload gets its own bucket (its own Durable Object), so deferred work of one
 * workload (a seal run by a later alarm) cannot land in another one's counts; warm-ups write to a
 * bucket of their own for the same reason. W4 and W6 work on the bucket W2 (or W1) wrote.
 */
export const WARMUP_BUCKET = "bench-warmup";
/** Records per batch in W2/W5/W6 (ReductStore's benchmark shape: 80 records or 8 MB). */
export const PER_BATCH = 80;
/**
 * The product seals an idle block after 5 s (src/storage/blocks.ts SEAL_IDLE_MS): a full run waits
 * past it so that seal is counted with the workload that caused it; --quick does not wait.
 */
const afterWrites = (ctx: Context): { minMs: number; quietMs: number; maxMs: number } =>
  ctx.quick ? { minMs: 0, quietMs: 1_000, maxMs: 10_000 } : { minMs: 6_500, quietMs: 1_000, maxMs: 20_000 };

const body1k = randomBytes(KIB);
const chunk = randomBytes(64 * KIB);

/** Creates a bucket (default settings unless given: no quota, 64 MB / 1024-record blocks). */
async function createBucket(ctx: Context, name: string, settings: Record<string, unknown> = {}): Promise<void> {
  const client = createClient(serverOf(ctx, "reductEdge").port, 1);
  try {
    const response = await send(client, { method: "POST", path: `/api/v1/b/${name}`, ...json(settings) });
    if (response.status !== 200) throw new Error(`cannot create bucket '${name}': HTTP ${response.status} ${response.body}`);
  } finally {
    client.close();
  }
}

export async function setupReductEdge(client: HttpClient): Promise<void> {
  const response = await send(client, { method: "POST", path: `/api/v1/b/${WARMUP_BUCKET}`, ...json({}) });
  if (response.status !== 200)
    throw new Error(`cannot create bucket '${WARMUP_BUCKET}': HTTP ${response.status} ${response.body}`);
}

/** `info.size` of a GET /b/:bucket answer (0 when absent). */
function usageOf(response: HttpResponse): number {
  const size = fieldOf(fieldOf(JSON.parse(response.body.toString()), "info"), "size");
  return typeof size === "number" ? size : 0;
}

/** Field `name` of a JSON answer (throws when the body is not JSON). */
const jsonField = (response: HttpResponse, name: string): unknown => fieldOf(JSON.parse(response.body.toString()), name);

/** `removed_records` of a remove query's answer (0 when absent). */
function removedRecords(response: HttpResponse): number {
  const removed = jsonField(response, "removed_records");
  return typeof removed === "number" ? removed : 0;
}

const readOk = (response: HttpResponse): string | undefined =>
  response.status === 200 || response.status === 204
    ? undefined
    : `HTTP ${response.status} ${response.body.toString().slice(0, 200)}`;

/** Splits [first, stop) into `parts` contiguous slices. */
function slices(first: number, stop: number, parts: number): [number, number][] {
  const size = Math.ceil((stop - first) / parts);
  return Array.from({ length: parts }, (_, i): [number, number] => [
    first + i * size,
    Math.min(stop, first + (i + 1) * size),
  ]).filter(([a, b]) => a < b);
}

function requireFeature(...names: FeatureName[]): (features: Features) => string | undefined {
  return (features) => {
    const missing = names.filter((name) => !features[name]?.ok);
    if (missing.length < names.length) return undefined; // any one is enough
    return names
      .map((name) => {
        const probe = features[name];
        return `${name}: ${probe?.ok === false ? probe.reason : "not probed"}`;
      })
      .join("; ");
  };
}

/** Samples a bucket's usage (GET /b/:bucket → info.size) until stopped; bounded in samples. */
function usageSampler(
  port: number,
  bucket: string,
  intervalMs = 200,
  maxSamples = 3_000,
): { stop(): Promise<{ maxUsageBytes: number; finalUsageBytes: number; samples: number }> } {
  const client = createClient(port, 1);
  let max = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running && samples < maxSamples) {
      const response = await send(client, { path: `/api/v1/b/${bucket}`, headers: AUTH }).catch(() => undefined);
      if (response?.status === 200) {
        const size = usageOf(response);
        if (size > max) max = size;
        samples++;
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const last = await send(client, { path: `/api/v1/b/${bucket}`, headers: AUTH });
      const final = usageOf(last);
      client.close();
      return { maxUsageBytes: Math.max(max, final), finalUsageBytes: final, samples: samples + 1 };
    },
  };
}

/** Data for the read/update/remove workloads: W2 of the same protocol, else the other, else W1. */
function dataFor(ctx: Context, version: Version): WrittenData | undefined {
  const other = version === "v1" ? "v2" : "v1";
  return ctx.shared[`w2${version}`] ?? ctx.shared[`w2${other}`] ?? ctx.shared.w1;
}

/** Fails the unit when W1/W2 did not write anything it could work on in this run. */
function requireData(ctx: Context, version: Version): WrittenData {
  const data = dataFor(ctx, version);
  if (!data) throw new Error("needs data written by W1 or W2 in the same run");
  return data;
}

/** A batch protocol version. */
type Version = "v1" | "v2";

const w2 = (version: Version): Unit => {
  const bucket = `bench-w2${version}`;
  const entry = `w2-${version}`;
  const encode = version === "v1" ? batchV1Write : batchV2Write;
  return {
    id: `W2${version}`,
    title: `W2 batched writes, protocol ${version}: ${PER_BATCH} × 1 KiB per request`,
    server: "reductEdge",
    requires: requireFeature(version === "v1" ? "batchV1" : "batchV2"),
    prepare: (ctx) => createBucket(ctx, bucket),
    spec: (ctx) => ({
      total: ctx.scale.batches,
      expectedRecords: ctx.scale.batches * PER_BATCH,
      maxSeconds: ctx.scale.maxSeconds,
      check: okWithoutRecordErrors,
      warmup: { total: 10, makeRequest: (j) => encode(WARMUP_BUCKET, entry, batchRecords(TS0, j, PER_BATCH, body1k)) },
      makeRequest: (i) => encode(bucket, entry, batchRecords(TS0, i, PER_BATCH, body1k)),
      objects: [`BUCKETS:${bucket}`],
      settle: afterWrites(ctx),
      compareTo: ["a", "c"],
    }),
    finish: (ctx, result) => {
      ctx.shared[`w2${version}`] = {
        bucket,
        entry,
        first: TS0,
        stop: TS0 + ctx.scale.batches * PER_BATCH,
        records: result.records,
      };
    },
  };
};

/**
 * W2 v1 with the body compressed as a ReductStore 1.21 replication sender sends it
 * (`Content-Encoding: gzip|zstd`): the same records as W2v1, so the ratio to W2v1 is the cost of
 * decoding. W2's records repeat one 1 KiB body, so the body shrinks to about 2 % and decoding is
 * the cheap, match-copying kind; every batch's body is the same, so it is compressed once, before
 * the timed load (Node 20 has no zstd: @bokuweb/zstd-wasm, level 3 as ReductStore's default).
 */
const w2compressed = (coding: "gzip" | "zstd"): Unit => {
  const bucket = `bench-w2${coding}`;
  const entry = `w2-${coding}`;
  let encoded: Uint8Array | undefined;
  const request = (target: string, i: number) => {
    const plain = batchV1Write(target, entry, batchRecords(TS0, i, PER_BATCH, body1k));
    encoded ??= coding === "gzip" ? gzipSync(plain.body) : zstdCompress(plain.body, 3);
    return { ...plain, headers: { ...plain.headers, "content-encoding": coding }, body: Buffer.from(encoded) };
  };
  return {
    id: `W2${coding}`,
    title: `W2 batched writes, protocol v1, ${coding}-compressed body: ${PER_BATCH} × 1 KiB per request`,
    server: "reductEdge",
    requires: requireFeature("batchV1"),
    prepare: async (ctx) => {
      if (coding === "zstd") await initZstd();
      await createBucket(ctx, bucket);
    },
    spec: (ctx) => ({
      total: ctx.scale.batches,
      expectedRecords: ctx.scale.batches * PER_BATCH,
      maxSeconds: ctx.scale.maxSeconds,
      check: okWithoutRecordErrors,
      warmup: { total: 10, makeRequest: (j) => request(WARMUP_BUCKET, j) },
      makeRequest: (i) => request(bucket, i),
      objects: [`BUCKETS:${bucket}`],
      settle: afterWrites(ctx),
      compareTo: ["W2v1", "a"],
    }),
  };
};

const w4 = (version: Version): Unit => ({
  id: `W4${version}`,
  title: `W4 query + batched read, protocol ${version}`,
  server: "reductEdge",
  requires: requireFeature(version === "v1" ? "queryV1" : "queryV2"),
  spec: (ctx) => {
    const data = requireData(ctx, version);
    const parts = slices(data.first, data.stop, ctx.connections);
    const countRecords = version === "v1" ? v1RecordCount : v2RecordCount;
    const session: Session = async (lane, call, timeLeft, untimed) => {
      const part = parts[lane];
      if (!part) return;
      const [start, stop] = part;
      const create: RequestSpec =
        version === "v1"
          ? { method: "POST", path: `/api/v1/b/${data.bucket}/${data.entry}/q`, ...json({ query_type: "QUERY", start, stop }) }
          : {
              method: "POST",
              path: `/api/v1/io/${data.bucket}/q`,
              ...json({ query_type: "QUERY", entries: [data.entry], start, stop }),
            };
      const created = await untimed(create);
      if (created.status !== 200) throw new Error(`query creation failed: HTTP ${created.status} ${created.body}`);
      const id = jsonField(created, "id");
      const read: RequestSpec =
        version === "v1"
          ? { path: `/api/v1/b/${data.bucket}/${data.entry}/batch?q=${id}`, headers: AUTH }
          : { path: `/api/v1/io/${data.bucket}/read`, headers: { ...AUTH, "x-reduct-query-id": String(id) } };
      // Bounded: never more reads than records in the slice plus a few.
      for (let n = 0; n < stop - start + 5 && timeLeft() > 0; n++) {
        const response = await call(read, {
          check: readOk,
          count: (r) =>
            r.status === 204 ? { records: 0, bytes: 0 } : { records: countRecords(r.headers), bytes: r.body.length },
        });
        if (!response || response.status === 204 || response.headers["x-reduct-last"] === "true") break;
      }
    };
    return {
      title: `W4 query + batched read, protocol ${version} (${data.entry})`,
      session,
      objects: [`BUCKETS:${data.bucket}`],
      expectedRecords: data.records,
      maxSeconds: ctx.scale.maxSeconds,
      compareTo: [`W2${version}`, "W1"],
      notes: data === ctx.shared.w1 ? ["reads the W1 entry: no W2 data in this run"] : [],
    };
  },
});

const w6labels = (version: Version): Unit => ({
  id: `W6labels${version}`,
  title: `W6 batched label updates, protocol ${version}: ${PER_BATCH} records per request`,
  server: "reductEdge",
  requires: requireFeature(version === "v1" ? "labelsV1" : "labelsV2"),
  spec: (ctx) => {
    const data = requireData(ctx, version);
    const encode = version === "v1" ? labelsV1Update : labelsV2Update;
    return {
      title: `W6 batched label updates, protocol ${version} (${data.entry})`,
      total: Math.ceil((data.stop - data.first) / PER_BATCH),
      expectedRecords: data.stop - data.first,
      maxSeconds: ctx.scale.maxSeconds,
      check: okWithoutRecordErrors,
      objects: [`BUCKETS:${data.bucket}`],
      makeRequest: (i) => {
        const timestamps: number[] = [];
        for (let ts = data.first + i * PER_BATCH; ts < Math.min(data.stop, data.first + (i + 1) * PER_BATCH); ts++)
          timestamps.push(ts);
        return encode(data.bucket, data.entry, timestamps, { bench: "w6" });
      },
      compareTo: [`W2${version}`],
    };
  },
});

const w6remove: Unit = {
  id: "W6remove",
  title: "W6 remove by query with $each_n: 2",
  server: "reductEdge",
  requires: requireFeature("removeQueryV2", "removeQueryV1"),
  spec: (ctx) => {
    const data = requireData(ctx, "v2");
    const useV2 = ctx.features.removeQueryV2?.ok;
    const parts = slices(data.first, data.stop, ctx.connections);
    const session: Session = async (lane, call) => {
      const part = parts[lane];
      if (!part) return;
      const [start, stop] = part;
      const query = { query_type: "REMOVE", start, stop, when: { $each_n: 2 } };
      const spec = useV2
        ? { method: "POST", path: `/api/v1/io/${data.bucket}/q`, ...json({ ...query, entries: [data.entry] }) }
        : { method: "POST", path: `/api/v1/b/${data.bucket}/${data.entry}/q`, ...json(query) };
      await call(spec, { count: (r) => ({ records: removedRecords(r), bytes: 0 }) });
    };
    return {
      title: `W6 remove by query, $each_n: 2 (${useV2 ? "/io/:bucket/q" : "/b/:bucket/:entry/q"}, ${data.entry})`,
      session,
      objects: [`BUCKETS:${data.bucket}`],
      maxSeconds: ctx.scale.maxSeconds,
      settle: afterWrites(ctx),
      notes: [`${parts.length} remove queries over ${data.stop - data.first} records; about half are removed`],
    };
  },
};

/**
 * A FIFO-quota bucket under sustained ingest of `factor` × its quota, its usage sampled (GET
 * /b/:bucket → info.size) while the load runs. `blockRecords` sets max_block_records (null keeps
 * the default); "one block" is that many 1 KiB payloads.
 */
interface FifoOptions {
  id: string;
  title: string;
  bucket: string;
  requires?: Unit["requires"];
  settings: (ctx: Context) => { quota: number; blockRecords?: number };
  spec: (ctx: Context) => {
    title: string;
    total: number;
    expectedRecords: number;
    makeRequest: (index: number) => RequestSpec;
    compareTo: string[];
  };
}

function fifoUnit({ id, title, bucket, requires = undefined, settings, spec }: FifoOptions): Unit {
  let sampler: ReturnType<typeof usageSampler> | undefined;
  let usage: Awaited<ReturnType<ReturnType<typeof usageSampler>["stop"]>> | undefined;
  return {
    id,
    title,
    server: "reductEdge",
    requires,
    prepare: (ctx) => {
      const { quota, blockRecords } = settings(ctx);
      return createBucket(ctx, bucket, {
        quota_type: "FIFO",
        quota_size: quota,
        ...(blockRecords ? { max_block_records: blockRecords } : {}),
      });
    },
    spec: (ctx) => ({
      ...spec(ctx),
      maxSeconds: ctx.scale.maxSeconds,
      check: okWithoutRecordErrors,
      objects: [`BUCKETS:${bucket}`],
      beforeLoad: () => {
        sampler = usageSampler(serverOf(ctx, "reductEdge").port, bucket);
      },
      afterLoad: async () => {
        if (!sampler) throw new Error(`${id}: the usage sampler was not started`);
        usage = await sampler.stop();
      },
      settle: afterWrites(ctx),
      notes: [`usage sampled every 200 ms via GET /b/${bucket} while loading (those requests are in the operation counts)`],
    }),
    finish: (ctx, result) => {
      const { quota, blockRecords } = settings(ctx);
      const oneBlock = (blockRecords ?? 1024) * KIB;
      if (!usage) throw new Error(`${id}: no usage samples`);
      const over = Math.max(0, usage.maxUsageBytes - quota);
      result.quota = {
        quotaBytes: quota,
        ...usage,
        overQuotaBytes: over,
        oneBlockBytes: oneBlock,
        withinOneBlock: over <= oneBlock,
      };
    },
  };
}

const w5 = fifoUnit({
  id: "W5",
  title: "W5 FIFO-quota bucket (default blocks) under sustained W2 ingest of 3 × quota",
  bucket: "bench-fifo",
  requires: requireFeature("batchV2", "batchV1"),
  settings: (ctx) => ({ quota: ctx.scale.fifoBatch.quota }),
  spec: (ctx) => {
    const version = ctx.features.batchV2?.ok ? "v2" : "v1";
    const encode = version === "v1" ? batchV1Write : batchV2Write;
    const { quota, factor } = ctx.scale.fifoBatch;
    const total = Math.ceil((factor * quota) / (PER_BATCH * KIB));
    return {
      title: `W5 FIFO quota ${quota / 2 ** 20} MiB (default blocks), W2 ${version} ingest of ${factor} × quota`,
      total,
      expectedRecords: total * PER_BATCH,
      makeRequest: (i) => encode("bench-fifo", "w5", batchRecords(TS0, i, PER_BATCH, body1k)),
      compareTo: [`W2${version}`],
    };
  },
});

const w5single = fifoUnit({
  id: "W5s",
  title: "W5s FIFO-quota bucket under sustained W1 (single-record) ingest",
  bucket: "bench-fifo-single",
  settings: (ctx) => ({ quota: ctx.scale.fifoSingle.quota, blockRecords: ctx.scale.fifoSingle.blockRecords }),
  spec: (ctx) => {
    const { quota, factor, blockRecords } = ctx.scale.fifoSingle;
    const total = Math.ceil((factor * quota) / KIB);
    return {
      title: `W5s FIFO quota ${quota / 2 ** 20} MiB (${blockRecords}-record blocks), single 1 KiB writes of ${factor} × quota`,
      total,
      expectedRecords: total,
      makeRequest: (i) => writeRecord("bench-fifo-single", "w5s", TS0 + i, body1k),
      compareTo: ["W1"],
    };
  },
});

function w3Units(scale: Scale): Unit[] {
  return scale.large.map(([label, size, count], index) => {
    const bucket = `bench-w3-${label.toLowerCase()}`;
    return {
      id: `W3-${label}`,
      title: `W3 single record, ${label} streamed`,
      server: "reductEdge",
      prepare: (ctx) => createBucket(ctx, bucket),
      spec: (ctx) => ({
        connections: 1,
        total: count,
        expectedRecords: count,
        maxSeconds: ctx.scale.largeMaxSeconds,
        rss: true,
        keepAlive: false,
        warmup:
          index === 0 ? { total: 1, makeRequest: () => writeRecord(WARMUP_BUCKET, "w3", TS0, { size, chunk }, size) } : undefined,
        makeRequest: (i) => writeRecord(bucket, `w3-${label}`, TS0 + i, { size, chunk }, size),
        objects: [`BUCKETS:${bucket}`],
        compareTo: [`c-raw-${label}`, `c-piped-${label}`],
      }),
    };
  });
}

/**
 * W7: a selective query. `scale.scan.records` non-matching 1 KiB records (batched v2 writes),
 * then one record the query's `when` matches. One lane creates the query and reads `/io/read`
 * until the match arrives (time to the first match); the other sends `GET /b/:bucket` back to
 * back meanwhile (its latency shows whether the scan holds the bucket).
 */
const W7_BUCKET = "bench-scan";
const w7scan: Unit = {
  id: "W7scan",
  title: "W7 selective query: the only match after N non-matching 1 KiB records, with concurrent GET /b/:bucket",
  server: "reductEdge",
  requires: requireFeature("batchV2"),
  prepare: async (ctx) => {
    await createBucket(ctx, W7_BUCKET);
    const { records } = ctx.scale.scan;
    const client = createClient(serverOf(ctx, "reductEdge").port, ctx.connections);
    try {
      const started = performance.now();
      const load = await runLoad({
        client,
        total: Math.ceil(records / PER_BATCH),
        maxSeconds: 3_600,
        makeRequest: (i) =>
          batchV2Write(
            W7_BUCKET,
            "scan",
            batchRecords(TS0, i, PER_BATCH, body1k).filter((record) => record.ts < TS0 + records),
          ),
        check: okWithoutRecordErrors,
        onProgress: (recorder) =>
          ctx.progress(`W7scan setup: ${recorder.records.toLocaleString("en-US")}/${records.toLocaleString("en-US")} records`),
      });
      if (load.errors > 0) throw new Error(`W7 setup: ${load.errors} failed writes, e.g. ${load.errorSamples[0]}`);
      const match = await send(client, {
        ...writeRecord(W7_BUCKET, "scan", TS0 + records, body1k),
        headers: { ...writeRecord(W7_BUCKET, "scan", TS0 + records, body1k).headers, "x-reduct-label-match": "yes" },
      });
      if (match.status !== 200) throw new Error(`W7 setup: the matching record got HTTP ${match.status}`);
      ctx.log(
        `W7scan setup: ${records.toLocaleString("en-US")} records written in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      // Past the idle-seal delay, so sealing the last block does not overlap the scan.
      await new Promise((resolve) => setTimeout(resolve, 7_000));
    } finally {
      client.close();
    }
  },
  spec: (ctx) => {
    const { records } = ctx.scale.scan;
    const getMs: number[] = [];
    const measured: ScanSummary = {
      firstMatchMs: Number.NaN,
      reads: 0,
      found: 0,
      emptyReads: 0,
      ended: "",
      getMs,
      readMs: [],
      readErrors: [],
      getErrors: [],
    };
    let scanning = true;
    const session: Session = async (lane, _call, timeLeft, untimed) => {
      if (lane === 0) {
        try {
          const created = await untimed({
            method: "POST",
            path: `/api/v1/io/${W7_BUCKET}/q`,
            ...json({ query_type: "QUERY", entries: ["scan"], when: { "&match": { $eq: "yes" } } }),
          });
          if (created.status !== 200) throw new Error(`W7 query creation: HTTP ${created.status} ${created.body}`);
          const id = jsonField(created, "id");
          const started = performance.now();
          while (timeLeft() > 0) {
            let response: HttpResponse;
            try {
              response = await untimed({
                path: `/api/v1/io/${W7_BUCKET}/read`,
                headers: { ...AUTH, "x-reduct-query-id": String(id) },
                timeoutMs: 600_000,
              });
            } catch (error) {
              // A transport failure: the read did not count, so it may be repeated.
              measured.readErrors.push(messageOf(error));
              if (measured.readErrors.length > 3) break;
              continue;
            }
            measured.reads++;
            measured.readMs.push(Math.round(performance.now() - started));
            if (response.status === 204) {
              measured.ended = `204 after ${measured.reads} reads`;
              break;
            }
            if (response.status !== 200) {
              measured.ended = `HTTP ${response.status} ${response.headers["x-reduct-error"] ?? ""}`;
              break;
            }
            const found = v2RecordCount(response.headers);
            measured.readMs[measured.readMs.length - 1] = Math.round(performance.now() - started);
            if (found === 0) measured.emptyReads++;
            if (found > 0) {
              measured.found += found;
              measured.firstMatchMs = performance.now() - started;
              measured.ended = "match";
              break;
            }
          }
        } finally {
          scanning = false;
        }
        return;
      }
      if (lane === 1) {
        // Give the scan a head start so every GET lands while it runs.
        await new Promise((resolve) => setTimeout(resolve, 50));
        while (scanning && timeLeft() > 0) {
          const started = performance.now();
          let response: HttpResponse;
          try {
            response = await untimed({ path: `/api/v1/b/${W7_BUCKET}`, headers: AUTH, timeoutMs: 600_000 });
          } catch (error) {
            measured.getErrors.push(messageOf(error));
            continue;
          }
          if (response.status !== 200) {
            measured.getErrors.push(`HTTP ${response.status}`);
            continue;
          }
          // Counted when it started during the scan, however long it was held.
          getMs.push(performance.now() - started);
        }
      }
    };
    return {
      title: `W7 selective query over ${records.toLocaleString("en-US")} non-matching 1 KiB records (v2 read), concurrent GET /b/:bucket`,
      connections: 2,
      session,
      objects: [`BUCKETS:${W7_BUCKET}`],
      maxSeconds: ctx.scale.scan.maxSeconds,
      extra: { scan: measured },
    };
  },
  finish: (ctx, result) => {
    const scan = result.scan;
    if (!scan) throw new Error("W7scan: the result has no scan measurements");
    const sorted = [...(scan.getMs ?? [])].sort((a, b) => a - b);
    const concurrentGet = {
      count: sorted.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    };
    scan.concurrentGet = concurrentGet;
    delete scan.getMs;
    ctx.log(
      `W7scan: ${scan.readErrors.length + scan.getErrors.length > 0 ? `transport errors: ${[...scan.readErrors, ...scan.getErrors].join("; ")}; ` : ""}${scan.ended === "match" ? `first match after ${(scan.firstMatchMs / 1000).toFixed(2)} s` : `no match (${scan.ended})`}, ${scan.reads} reads (${scan.emptyReads} empty, ms: ${scan.readMs.join(", ")}); concurrent GET /b/:bucket × ${concurrentGet.count}: p50 ${concurrentGet.p50Ms.toFixed(1)} ms, p99 ${concurrentGet.p99Ms.toFixed(1)} ms, max ${concurrentGet.maxMs.toFixed(1)} ms`,
    );
  },
};

const R1_SRC = "bench-r1-src";
const R1_DST = "bench-r1-dst";
const R1_ENTRY = "r1";
const R1_REPLICATION = "bench-r1";
/** How often R1 asks the source whether anything is pending (these requests are in its counts). */
const R1_POLL_MS = 250;

/** `entries[].record_count` of a GET /b/:bucket answer, summed (0 when absent). */
function recordCountOf(response: HttpResponse): number {
  const entries = jsonField(response, "entries");
  if (!Array.isArray(entries)) return 0;
  return entries.reduce((sum: number, entry: unknown) => {
    const count = fieldOf(entry, "record_count");
    return sum + (typeof count === "number" ? count : 0);
  }, 0);
}

/**
 * R1: W2v1's batches into a bucket with a replication (no compression, no filter) to a second
 * bucket of the same server (its own Worker URL): the Worker serves the sender's batches like any
 * client's. Timed from the first write until the source reports nothing pending, so records/s are
 * delivered records; the counts are the edge over that time (our writes, the sender's requests to
 * the target, the status polls) plus both buckets' objects (alarms, log rows, R2 reads).
 */
const r1: Unit = {
  id: "R1",
  title: `R1 replication: ${PER_BATCH} × 1 KiB batches v1 into a bucket replicated to a second bucket on the same server, until all delivered`,
  server: "reductEdge",
  requires: requireFeature("batchV1"),
  prepare: async (ctx) => {
    const port = serverOf(ctx, "reductEdge").port;
    await createBucket(ctx, R1_SRC);
    await createBucket(ctx, R1_DST);
    const client = createClient(port, 1);
    try {
      const response = await send(client, {
        method: "POST",
        path: `/api/v1/replications/${R1_REPLICATION}`,
        ...json({
          src_bucket: R1_SRC,
          dst_bucket: R1_DST,
          dst_host: `http://127.0.0.1:${port}`,
          dst_token: AUTH.authorization.slice(7),
        }),
      });
      if (response.status !== 200)
        throw new Error(`cannot create replication '${R1_REPLICATION}': HTTP ${response.status} ${response.body}`);
    } finally {
      client.close();
    }
  },
  spec: (ctx) => {
    const batches = ctx.scale.batches;
    const records = batches * PER_BATCH;
    const lanes = ctx.connections;
    let next = 0;
    let writing = lanes;
    let polls = 0;
    let writesS = Number.NaN;
    let delivered = Number.NaN;
    const notes: string[] = [];
    const session: Session = async (lane, call, timeLeft, untimed) => {
      const started = performance.now();
      while (next < batches && timeLeft() > 0)
        await call(batchV1Write(R1_SRC, R1_ENTRY, batchRecords(TS0, next++, PER_BATCH, body1k)), {
          check: okWithoutRecordErrors,
        });
      writing--;
      if (lane !== 0) return;
      while (writing > 0) await new Promise((resolve) => setTimeout(resolve, 5));
      writesS = (performance.now() - started) / 1000;
      // The session (and so the measured time) ends when the source has nothing pending.
      while (timeLeft() > 0) {
        polls++;
        const response = await untimed({ path: `/api/v1/replications/${R1_REPLICATION}`, headers: AUTH });
        if (response.status !== 200) throw new Error(`R1 status: HTTP ${response.status} ${response.body}`);
        const pending = fieldOf(jsonField(response, "info"), "pending_records");
        if (pending === 0) break;
        await new Promise((resolve) => setTimeout(resolve, R1_POLL_MS));
      }
      const target = await untimed({ path: `/api/v1/b/${R1_DST}`, headers: AUTH });
      delivered = target.status === 200 ? recordCountOf(target) : Number.NaN;
    };
    return {
      session,
      connections: lanes,
      objects: [`BUCKETS:${R1_SRC}`, `BUCKETS:${R1_DST}`],
      maxSeconds: ctx.scale.maxSeconds * 3,
      expectedRecords: records,
      settle: afterWrites(ctx),
      compareTo: ["W2v1"],
      notes,
      afterLoad: () => {
        notes.push(
          `writes took ${writesS.toFixed(1)} s; the target then held ${delivered.toLocaleString("en-US")} of ${records.toLocaleString("en-US")} records; ${polls} status polls (GET /replications/:name, every ${R1_POLL_MS} ms once the writes were done) are in the counts`,
        );
        if (delivered !== records) notes.push(`NOT ALL DELIVERED: ${delivered} of ${records}`);
      },
    };
  },
};

export function reductEdgeUnits(scale: Scale): Unit[] {
  return [
    {
      id: "alive",
      title: "GET /api/v1/alive",
      server: "reductEdge",
      spec: (ctx) => ({
        total: ctx.scale.requests,
        expectedRecords: ctx.scale.requests,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 500, makeRequest: () => ({ path: "/api/v1/alive" }) },
        makeRequest: () => ({ path: "/api/v1/alive" }),
        objects: [],
        compareTo: ["a"],
      }),
    },
    {
      id: "W1",
      title: "W1 single-record writes, 1 KiB",
      server: "reductEdge",
      prepare: (ctx) => createBucket(ctx, "bench-w1"),
      spec: (ctx) => ({
        total: ctx.scale.records,
        expectedRecords: ctx.scale.records,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 200, makeRequest: (j) => writeRecord(WARMUP_BUCKET, "w1", TS0 + j, body1k) },
        makeRequest: (i) => writeRecord("bench-w1", "w1", TS0 + i, body1k),
        objects: ["BUCKETS:bench-w1"],
        settle: afterWrites(ctx),
        compareTo: ["b", "c"],
      }),
      finish: (ctx, result) => {
        ctx.shared.w1 = { bucket: "bench-w1", entry: "w1", first: TS0, stop: TS0 + ctx.scale.records, records: result.records };
      },
    },
    w2("v1"),
    w2("v2"),
    w2compressed("gzip"),
    w2compressed("zstd"),
    ...w3Units(scale),
    w4("v1"),
    w4("v2"),
    w6labels("v1"),
    w6labels("v2"),
    w6remove,
    w5,
    w5single,
    w7scan,
    r1,
  ];
}
