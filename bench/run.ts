#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- --connections 8] [-- --only a,W1] [-- --keep-state]`
 *
 * Starts the servers (baselines (a)–(c) and reduct-edge, see lib/servers.ts) with Miniflare,
 * drives them over 127.0.0.1 with a fixed number of keep-alive connections — workloads that are
 * compared run interleaved (workloads/index.ts) — prints progress, a table of throughput,
 * latency and ratios, operation counts per 1,000 records with list-price cost, and the issue 6
 * targets, and writes everything as JSON to bench/results/.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { messageOf, stackOf } from "../scripts/lib/errors.ts";
import { treeVersion } from "../scripts/lib/server.ts";
import { loadPrices } from "./lib/cost.ts";
import { createClient } from "./lib/http-load.ts";
import { measureTogether, notImplemented } from "./lib/measure.ts";
import { fullReport } from "./lib/report.ts";
import { BENCH_DIR, type BenchServer, ROOT, serverDefinitions, startServer } from "./lib/servers.ts";
import { evaluateTargets } from "./lib/targets.ts";
import {
  type Context,
  type Machine,
  type Result,
  type ResultsFile,
  type Scale,
  type Spec,
  serverOf,
  type Unit,
} from "./lib/types.ts";
import { schedule, units } from "./workloads/index.ts";
import { probeFeatures } from "./workloads/probes.ts";
import { MIB } from "./workloads/protocol.ts";
import { setupReductEdge } from "./workloads/reduct-edge.ts";

const SCALES: Record<"quick" | "full", Scale> = {
  quick: {
    requests: 3_000,
    records: 1_500,
    batches: 80,
    large: [
      ["1MiB", MIB, 10],
      ["10MiB", 10 * MIB, 3],
      ["100MiB", 100 * MIB, 1],
    ],
    fifoBatch: { quota: 4 * MIB, factor: 2 },
    fifoSingle: { quota: 1 * MIB, factor: 1.5, blockRecords: 256 },
    scan: { records: 100_000, maxSeconds: 120 },
    rounds: 3,
    maxSeconds: 20,
    largeMaxSeconds: 60,
    budgetSeconds: 110,
  },
  full: {
    requests: 20_000,
    records: 10_000,
    batches: 500,
    large: [
      ["1MiB", MIB, 100],
      ["10MiB", 10 * MIB, 30],
      ["100MiB", 100 * MIB, 5],
    ],
    fifoBatch: { quota: 8 * MIB, factor: 3 },
    fifoSingle: { quota: 2 * MIB, factor: 2, blockRecords: 256 },
    scan: { records: 1_000_000, maxSeconds: 300 },
    rounds: 5,
    maxSeconds: 60,
    largeMaxSeconds: 120,
    budgetSeconds: 570,
  },
};

interface Args {
  quick: boolean;
  connections: number;
  only: Set<string> | undefined;
  keepState: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, connections: 8, only: undefined, keepState: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === "--quick") args.quick = true;
    else if (arg === "--connections") args.connections = Number(value());
    else if (arg === "--only") args.only = new Set(value().split(","));
    else if (arg === "--keep-state") args.keepState = true;
    else if (arg === "--help" || arg === "-h") {
      console.log("usage: npm run bench -- [--quick] [--connections N] [--only id,id] [--keep-state]");
      console.log(
        `workload ids: ${units(SCALES.full)
          .map((w) => w.id)
          .join(", ")}`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(args.connections) || args.connections < 1 || args.connections > 256) {
    throw new Error("--connections must be an integer from 1 to 256");
  }
  return args;
}

function packageVersion(name: string): string {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8"));
    const version = typeof pkg === "object" && pkg !== null && "version" in pkg ? pkg.version : undefined;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

function machine(): Machine {
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    loadAverageAtStart: os.loadavg().map((n) => Number(n.toFixed(2))),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    miniflare: packageVersion("miniflare"),
    workerd: packageVersion("workerd"),
    wrangler: packageVersion("wrangler"),
    commit: treeVersion(),
  };
}

const args = parseArgs(process.argv.slice(2));
const mode: ResultsFile["mode"] = args.quick ? "quick" : "full";
const scale = SCALES[mode];
const t0 = performance.now();
const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
const log = (message: string): void => console.log(`${stamp()} ${message}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "reduct-edge-bench-"));
/** Started servers, stopped at the end or on a signal. */
const running: BenchServer[] = [];
let cleaned = false;
function removeState() {
  if (args.keepState) {
    log(`state kept in ${tmp}`);
    return;
  }
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (error) {
    console.error(`could not remove ${tmp}: ${messageOf(error)}`);
  }
}
function stopServers() {
  const stopping = running.splice(0).map((server) => server.stop().catch(() => {}));
  return Promise.all(stopping);
}
async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  await stopServers();
  removeState();
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping`);
    // Synchronously first: Miniflare's own signal handler (registered later) exits the process
    // right after this one returns.
    cleaned = true;
    removeState();
    stopServers().finally(() => process.exit(130));
  });
}

const info = machine();
log(
  `reduct-edge bench, ${mode} run: ${info.nproc} CPUs (${info.cpu}), ${info.memoryGiB} GiB, Node ${info.node}, workerd ${info.workerd}`,
);
log(`${args.connections} connections to 127.0.0.1; state in ${tmp}`);

const prices = loadPrices();
const definitions = serverDefinitions(path.join(tmp, "build"));
const results: Result[] = [];
const allUnits = new Map(units(scale).map((unit) => [unit.id, unit]));
const selected = (unit: Unit): boolean => (args.only ? args.only.has(unit.id) : !(args.quick && unit.fullOnly));
const steps = schedule(scale)
  .map((step) => ({
    ...step,
    units: step.ids.flatMap((id) => {
      const unit = allUnits.get(id);
      return unit && selected(unit) ? [unit] : [];
    }),
  }))
  .filter((step) => step.units.length > 0);
const ctx: Context = {
  quick: args.quick,
  scale,
  connections: args.connections,
  servers: {},
  prices,
  shared: {},
  features: {},
  log,
  progress: (message) => log(`  … ${message}`),
};

try {
  for (const name of new Set(steps.flatMap((step) => step.units.map((unit) => unit.server)))) {
    const definition = definitions[name];
    log(`starting ${definition.label} with Miniflare…`);
    const server = await startServer(name, definition, path.join(tmp, "state"));
    running.push(server);
    ctx.servers[name] = server;
    log(`${definition.label} on 127.0.0.1:${server.port} (workerd pid ${server.pid ?? "unknown"})`);
  }
  if (ctx.servers.reductEdge) {
    const client = createClient(ctx.servers.reductEdge.port, 1);
    try {
      await setupReductEdge(client);
      ctx.features = await probeFeatures(client);
    } finally {
      client.close();
    }
    const found = Object.entries(ctx.features).map(([name, probe]) => `${name} ${probe.ok ? "yes" : "no"}`);
    log(`probed endpoints: ${found.join(", ")}`);
  }
  for (const step of steps) {
    const specs: { unit: Unit; spec: Spec }[] = [];
    for (const unit of step.units) {
      if ((performance.now() - t0) / 1000 > scale.budgetSeconds) {
        results.push({
          id: unit.id,
          title: unit.title,
          status: "skipped",
          reason: `time budget of ${scale.budgetSeconds} s used up`,
        });
        continue;
      }
      const reason = unit.requires?.(ctx.features);
      if (reason) {
        results.push(notImplemented(unit, reason));
        log(`${unit.id}: not implemented by the server yet (${reason})`);
        continue;
      }
      try {
        await unit.prepare?.(ctx);
        specs.push({ unit, spec: { id: unit.id, title: unit.title, ...unit.spec(ctx), server: serverOf(ctx, unit.server) } });
      } catch (error) {
        results.push({ id: unit.id, title: unit.title, status: "skipped", reason: messageOf(error) });
        log(`${unit.id} skipped: ${messageOf(error)}`);
      }
    }
    if (specs.length === 0) continue;
    const rounds = step.rounds ?? 1;
    log(
      `${specs.map(({ spec }) => spec.id).join(", ")}${specs.length > 1 ? `: interleaved, ${rounds} round${rounds === 1 ? "" : "s"}` : ""}`,
    );
    try {
      const measured = await measureTogether(
        ctx,
        specs.map(({ spec }) => spec),
        { rounds },
      );
      for (const [i, result] of measured.entries()) {
        await specs[i]?.unit.finish?.(ctx, result);
        results.push(result);
      }
    } catch (error) {
      for (const { spec } of specs)
        results.push({ id: spec.id, title: spec.title, status: "failed", reason: String(stackOf(error) ?? error) });
      log(`${specs.map(({ spec }) => spec.id).join(", ")} failed: ${messageOf(error)}`);
    }
  }
} finally {
  await cleanup();
}

info.loadAverageAtEnd = os.loadavg().map((n) => Number(n.toFixed(2)));
const targets = evaluateTargets(results);
const report = fullReport({ results, targets });
console.log(`\n## reduct-edge bench (${mode}), ${new Date().toISOString()}\n`);
console.log(
  `Machine: ${info.nproc} CPUs (${info.cpu}), ${info.memoryGiB} GiB RAM, ${info.os}, Node ${info.node}, miniflare ${info.miniflare}, workerd ${info.workerd}, commit ${info.commit}; ${args.connections} connections; load average ${info.loadAverageAtStart[0]} at start, ${info.loadAverageAtEnd[0]} at end.${args.quick ? " Quick run: small samples, and deferred block seals are not waited for." : ""}\n`,
);
console.log(report);

const resultsDir = path.join(BENCH_DIR, "results");
fs.mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${mode}.json`);
const output: ResultsFile = {
  mode,
  finishedAt: new Date().toISOString(),
  seconds: (performance.now() - t0) / 1000,
  machine: info,
  connections: args.connections,
  scale,
  prices,
  features: ctx.features,
  results,
  targets,
  report,
};
fs.writeFileSync(file, `${JSON.stringify(output, null, 2)}\n`);
log(`results written to ${path.relative(ROOT, file)}`);
