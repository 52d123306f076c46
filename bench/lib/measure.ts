/**
 * Measuring workloads: warm-up, the load, deferred work allowed to finish (seals, usage flushes,
 * alarms), then one result per workload with throughput, latency, operation counts per 1,000
 * records, dollars per million records, server CPU and memory.
 *
 * Workloads that are compared are measured together, interleaved: the load of each is split into
 * `rounds` slices and the slices run in turn (A B C, B C A, C A B, …), so a machine whose speed
 * drifts during the run (other processes, thermal, GC) affects all of them alike. Operation
 * counts stay exact per workload: edge work is counted over the workload's own slices, Durable
 * Object work over its own objects for the whole measurement (see worker/counting.ts).
 */

import type { HttpClient } from "../../scripts/lib/http-client.ts";
import { costPerMillion, perThousand } from "./cost.ts";
import { addCounters, type Counters, emptyCounters, subtractCounters } from "./counters.ts";
import { createClient, Recorder, runLoad, runSessions } from "./http-load.ts";
import { cpuMs, type RssSample, sampleRss } from "./proc.ts";
import { type BenchServer, settle } from "./servers.ts";
import type { Context, MeasuredResult, Spec, StatementShare, Unit, UnmeasuredResult } from "./types.ts";

const MB = 1e6;

/** What measureTogether needs of the run's context. */
type MeasureContext = Pick<Context, "connections" | "prices" | "log" | "progress">;

/** One spec while it is measured: its client, recorder and what its slices added up. */
interface State {
  spec: Spec;
  server: BenchServer;
  client: HttpClient;
  recorder: Recorder;
  seconds: number;
  serverCpuMs: number;
  clientCpuMs: number;
  rss: RssSample | undefined;
  edge: Counters;
  /** The spec's objects' counters before its first slice. */
  objectsStart: Counters;
  stoppedByTime: boolean;
  lastSliceEnd: number;
}

/** workerd's CPU time (NaN when its pid is unknown, as for cpuMs of a missing process). */
const serverCpuMs = (server: BenchServer): number => (server.pid === undefined ? Number.NaN : cpuMs(server.pid));

export function notImplemented(workload: Pick<Unit, "id" | "title">, reason: string): UnmeasuredResult {
  return { id: workload.id, title: workload.title, status: "not implemented", reason };
}

/**
 * A measure spec: `id`, `title`, `server` (a started server), `connections`, `maxSeconds`, and
 * either `total` + `makeRequest(i)` (closed loop) or `session(index, call, timeLeft, untimed)`
 * (lanes with their own request sequence, e.g. query reads; never split into rounds).
 * Optional: check/count (see Recorder), `warmup: { total, makeRequest }`, `rss: true`,
 * `keepAlive: false` (new connection per request, for large uploads; see createClient),
 * `beforeLoad()`/`afterLoad()` (around the first/last slice, before waiting for deferred work),
 * `settle: { minMs, quietMs, maxMs }` (minMs counts from the end of the last slice),
 * `objects` (["BINDING:name", …]: the Durable Objects whose work is counted besides the edge;
 * default every object of that server — then no other spec of the group may use that server's
 * objects), `compareTo: [ids]`, `expectedRecords`, `notes`, `extra`.
 */
export async function measureTogether(
  ctx: MeasureContext,
  specs: Spec[],
  { rounds = 1 }: { rounds?: number } = {},
): Promise<MeasuredResult[]> {
  const states = specs.map(
    (spec): State => ({
      spec,
      server: spec.server,
      client: createClient(spec.server.port, spec.connections ?? ctx.connections, { keepAlive: spec.keepAlive ?? true }),
      recorder: new Recorder(),
      seconds: 0,
      serverCpuMs: 0,
      clientCpuMs: 0,
      rss: undefined,
      edge: emptyCounters(),
      objectsStart: emptyCounters(),
      stoppedByTime: false,
      lastSliceEnd: Date.now(),
    }),
  );
  const slices = specs.some((spec) => spec.session) ? 1 : rounds;
  try {
    for (const state of states) {
      const { warmup, check } = state.spec;
      if (warmup)
        await runLoad({ client: state.client, total: warmup.total, maxSeconds: 30, makeRequest: warmup.makeRequest, check });
    }
    for (const server of new Set<BenchServer>(states.map((state) => state.server)))
      await settle(server, { quietMs: 300, maxMs: 10_000 });
    for (const state of states) {
      state.objectsStart = (await state.server.counters(state.spec.objects)).objects;
      await state.spec.beforeLoad?.();
    }
    for (let round = 0; round < slices; round++) {
      for (let k = 0; k < states.length; k++) {
        const state = states[(k + round) % states.length];
        if (state) await runSlice(ctx, state, round, slices);
      }
    }
    const results: MeasuredResult[] = [];
    for (const state of states) {
      await state.spec.afterLoad?.();
      const wanted = { minMs: 0, quietMs: 1_000, maxMs: 15_000, ...state.spec.settle };
      const minMs = Math.max(0, wanted.minMs - (Date.now() - state.lastSliceEnd));
      const end = await settle(state.server, { ...wanted, minMs }, state.spec.objects);
      const counters = addCounters(state.edge, subtractCounters(end.objects, state.objectsStart));
      results.push(buildResult(ctx, state, counters, slices));
    }
    return results;
  } finally {
    for (const state of states) state.client.close();
  }
}

/** One workload alone (one slice). */
export async function measure(ctx: MeasureContext, spec: Spec): Promise<MeasuredResult> {
  const [result] = await measureTogether(ctx, [spec]);
  if (!result) throw new Error(`${spec.id}: no result`);
  return result;
}

async function runSlice(ctx: MeasureContext, state: State, round: number, slices: number): Promise<void> {
  const { spec, server } = state;
  if (state.stoppedByTime) return;
  const first = spec.session ? 0 : Math.floor((round * spec.total) / slices);
  const stop = spec.session ? 0 : Math.floor(((round + 1) * spec.total) / slices);
  if (!spec.session && stop <= first) return;
  const edgeBefore = (await server.counters([])).edge;
  const cpuBefore = serverCpuMs(server);
  const clientBefore = process.cpuUsage();
  const memory = spec.rss && server.pid ? sampleRss(server.pid) : undefined;
  const secondsBefore = state.seconds;
  const onProgress = (recorder: Recorder, seconds: number): void => {
    const expected = spec.expectedRecords ? `/${spec.expectedRecords.toLocaleString("en-US")}` : "";
    const rate = Math.round(recorder.records / (secondsBefore + seconds)).toLocaleString("en-US");
    ctx.progress(
      `${spec.id}: ${recorder.records.toLocaleString("en-US")}${expected} records, ${rate} rec/s, ${recorder.errors} errors`,
    );
  };
  const maxSeconds = Math.max(1, spec.maxSeconds - state.seconds);
  const load = spec.session
    ? await runSessions({
        client: state.client,
        sessions: state.client.connections,
        maxSeconds,
        session: spec.session,
        onProgress,
        recorder: state.recorder,
      })
    : await runLoad({
        client: state.client,
        total: stop - first,
        maxSeconds,
        makeRequest: (i) => spec.makeRequest(first + i),
        check: spec.check,
        count: spec.count,
        onProgress,
        recorder: state.recorder,
      });
  const rss = memory?.stop();
  if (rss && (!state.rss || rss.growthBytes > state.rss.growthBytes)) state.rss = rss;
  const client = process.cpuUsage(clientBefore);
  state.clientCpuMs += (client.user + client.system) / 1000;
  state.serverCpuMs += serverCpuMs(server) - cpuBefore;
  state.seconds += load.seconds;
  state.stoppedByTime = load.stoppedByTime;
  state.lastSliceEnd = Date.now();
  const edgeAfter = (await server.counters([])).edge;
  state.edge = addCounters(state.edge, subtractCounters(edgeAfter, edgeBefore));
}

function buildResult(ctx: MeasureContext, state: State, counters: Counters, slices: number): MeasuredResult {
  const { spec } = state;
  const load = state.recorder.summary(state.seconds, state.stoppedByTime);
  const result: MeasuredResult = {
    id: spec.id,
    title: spec.title,
    status: "measured",
    server: state.server.label,
    connections: state.client.connections,
    rounds: slices,
    records: load.records,
    bytes: load.bytes,
    seconds: load.seconds,
    recordsPerSec: load.records / load.seconds,
    mbPerSec: load.bytes / MB / load.seconds,
    requests: load.requests,
    latencyMs: load.latencyMs,
    errors: load.errors,
    errorSamples: load.errorSamples,
    stoppedByTime: load.stoppedByTime,
    counters,
    perThousand: perThousand(counters, load.records),
    costPerMillion: costPerMillion(counters, load.records, ctx.prices),
    sqlTop: topStatements(counters, load.records),
    timeline: slices === 1 ? load.timeline : undefined,
    serverCpuMsPerRecord: load.records > 0 ? state.serverCpuMs / load.records : Number.NaN,
    clientCpuShare: state.clientCpuMs / (load.seconds * 1000),
    rss: state.rss,
    compareTo: spec.compareTo ?? [],
    notes: [...(spec.notes ?? [])],
    ...spec.extra,
  };
  if (spec.expectedRecords !== undefined && load.records !== spec.expectedRecords) {
    result.notes.push(`carried ${load.records} of ${spec.expectedRecords} expected records`);
  }
  if (load.errors > 0) result.notes.push(`${load.errors} failed requests, e.g. ${load.errorSamples[0]}`);
  if (result.clientCpuShare > 0.8) {
    result.notes.push(
      `the load generator used ${Math.round(result.clientCpuShare * 100)} % of a core: this rate is partly bounded by the harness on this machine`,
    );
  }
  const slowDown = result.timeline ? slowDownNote(result.timeline) : undefined;
  if (slowDown) result.notes.push(slowDown);
  if (load.stoppedByTime) result.notes.push(`stopped by the ${spec.maxSeconds} s time limit`);
  ctx.log(summaryLine(result));
  return result;
}

/** The Durable Object's SQL statements that touched the most rows (written, then read), per record. */
function topStatements(counters: Counters, records: number, limit = 10): StatementShare[] {
  if (records <= 0) return [];
  return Object.entries(counters.sqlByStatement ?? {})
    .filter(([, stats]) => stats.rowsWritten + stats.rowsRead > 0)
    .sort(([, a], [, b]) => b.rowsWritten + b.rowsRead - (a.rowsWritten + a.rowsRead))
    .slice(0, limit)
    .map(([statement, stats]) => ({
      statement,
      execsPerRecord: stats.execs / records,
      rowsWrittenPerRecord: stats.rowsWritten / records,
      rowsReadPerRecord: stats.rowsRead / records,
    }));
}

/** A note when the last quarter of a run (≥ 8 s) was much slower than the first quarter. */
function slowDownNote(timeline: number[]): string | undefined {
  if (timeline.length < 8) return undefined;
  const quarter = Math.floor(timeline.length / 4);
  const mean = (part: number[]): number => part.reduce((a, b) => a + b, 0) / part.length;
  const first = mean(timeline.slice(0, quarter));
  const last = mean(timeline.slice(timeline.length - quarter - 1, timeline.length - 1)); // the final second is partial
  return last < 0.7 * first
    ? `rate fell from ${Math.round(first)} to ${Math.round(last)} records/s between the first and last quarter of the run`
    : undefined;
}

export function summaryLine(result: MeasuredResult): string {
  const rate = Math.round(result.recordsPerSec).toLocaleString("en-US");
  const mbs = result.mbPerSec >= 0.1 ? `, ${result.mbPerSec.toFixed(1)} MB/s` : "";
  const rss = result.rss ? `, peak RSS +${(result.rss.growthBytes / 2 ** 20).toFixed(1)} MiB` : "";
  return `${result.id} done: ${result.records.toLocaleString("en-US")} records in ${result.seconds.toFixed(1)} s, ${rate} rec/s${mbs}, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms${rss}, ${result.errors} errors`;
}
