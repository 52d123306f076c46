/**
 * One measured workload on one server: optional warm-up, counters reset, the load, deferred work
 * allowed to finish (seals, usage flushes, alarms) and then one result with throughput, latency,
 * operation counts per 1,000 records, dollars per million records, server CPU and memory.
 */
import { costPerMillion, perThousand } from "./cost.mjs";
import { createClient, runLoad, runSessions } from "./http-load.mjs";
import { cpuMs, sampleRss } from "./proc.mjs";
import { settle } from "./servers.mjs";

const MB = 1e6;

export function notImplemented(workload, reason) {
  return { id: workload.id, title: workload.title, status: "not implemented", reason };
}

/**
 * `spec`: id, title, connections, maxSeconds, and either `total` + `makeRequest(i)` (closed loop)
 * or `session(index, call, timeLeft)` (lanes with their own request sequence, e.g. query reads).
 * Optional: check/count (see Recorder), warmup `{ total, makeRequest }`, `rss: true`,
 * `afterLoad()` (runs right after the load, before waiting for deferred work), `keepAlive: false`
 * (a new connection per request, for large uploads; see createClient),
 * `settle: { minMs, quietMs, maxMs }`, `objects` (["BINDING:name", …]: the Durable Objects whose
 * work is counted besides the edge; default all), `compareTo: [ids]`, `expectedRecords`, `notes`,
 * `extra`.
 */
export async function measure(ctx, spec) {
  const { server } = ctx;
  const connections = spec.connections ?? ctx.connections;
  const client = createClient(server.port, connections, { keepAlive: spec.keepAlive ?? true });
  try {
    if (spec.warmup) {
      await runLoad({
        client,
        total: spec.warmup.total,
        maxSeconds: 30,
        makeRequest: spec.warmup.makeRequest,
        check: spec.check,
      });
      await settle(server, { quietMs: 300, maxMs: 10_000 }, spec.objects);
    }
    await server.resetCounters();
    const cpuBefore = cpuMs(server.pid);
    const clientCpuBefore = process.cpuUsage();
    const memory = spec.rss && server.pid ? sampleRss(server.pid) : undefined;
    const onProgress = (recorder, seconds) =>
      ctx.progress(
        `${spec.id}: ${recorder.records.toLocaleString("en-US")}${spec.expectedRecords ? `/${spec.expectedRecords.toLocaleString("en-US")}` : ""} records, ${Math.round(recorder.records / seconds).toLocaleString("en-US")} rec/s, ${recorder.errors} errors`,
      );
    const load = spec.session
      ? await runSessions({ client, sessions: connections, maxSeconds: spec.maxSeconds, session: spec.session, onProgress })
      : await runLoad({
          client,
          total: spec.total,
          maxSeconds: spec.maxSeconds,
          makeRequest: spec.makeRequest,
          check: spec.check,
          count: spec.count,
          onProgress,
        });
    const rss = memory?.stop();
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientCpuMs = (clientCpu.user + clientCpu.system) / 1000;
    if (spec.afterLoad) await spec.afterLoad();
    const counters = await settle(server, { minMs: 0, quietMs: 1_000, maxMs: 15_000, ...spec.settle }, spec.objects);
    const serverCpu = cpuMs(server.pid) - cpuBefore;
    const result = {
      id: spec.id,
      title: spec.title,
      status: "measured",
      server: server.label,
      connections,
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
      sqlTop: topStatements(counters, load.records),
      timeline: load.timeline,
      costPerMillion: costPerMillion(counters, load.records, ctx.prices),
      serverCpuMsPerRecord: load.records > 0 ? serverCpu / load.records : Number.NaN,
      /** This process (the load generator) while the load ran: share of one core. */
      clientCpuShare: clientCpuMs / (load.seconds * 1000),
      rss,
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
    const slowDown = slowDownNote(load.timeline);
    if (slowDown) result.notes.push(slowDown);
    if (load.stoppedByTime) result.notes.push(`stopped by the ${spec.maxSeconds} s time limit`);
    ctx.log(summaryLine(result));
    return result;
  } finally {
    client.close();
  }
}

/** The Durable Object's SQL statements that touched the most rows (written, then read), per record. */
function topStatements(counters, records, limit = 10) {
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
function slowDownNote(timeline) {
  if (timeline.length < 8) return undefined;
  const quarter = Math.floor(timeline.length / 4);
  const mean = (part) => part.reduce((a, b) => a + b, 0) / part.length;
  const first = mean(timeline.slice(0, quarter));
  const last = mean(timeline.slice(timeline.length - quarter - 1, timeline.length - 1)); // the final second is partial
  return last < 0.7 * first
    ? `rate fell from ${Math.round(first)} to ${Math.round(last)} records/s between the first and last quarter of the run`
    : undefined;
}

export function summaryLine(result) {
  const rate = Math.round(result.recordsPerSec).toLocaleString("en-US");
  const mbs = result.mbPerSec >= 0.1 ? `, ${result.mbPerSec.toFixed(1)} MB/s` : "";
  const rss = result.rss ? `, peak RSS +${(result.rss.growthBytes / 2 ** 20).toFixed(1)} MiB` : "";
  return `${result.id} done: ${result.records.toLocaleString("en-US")} records in ${result.seconds.toFixed(1)} s, ${rate} rec/s${mbs}, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms${rss}, ${result.errors} errors`;
}
