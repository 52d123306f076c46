/**
 * The servers under test, each a Worker run by Miniflare the same way: its own workerd process,
 * loopback only (127.0.0.1, a free port other than 8383), log level WARN, local DO/R2/D1 state
 * persisted under a temporary directory, D1 schema applied before the first request.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Miniflare, SharedOptions, WorkerOptions } from "miniflare";
import { bundleTsWorker, newMiniflare } from "../../scripts/lib/launcher.ts";
import type { Counters } from "./counters.ts";
import { LOOPBACK } from "./http-load.ts";
import { childPids } from "./proc.ts";

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(BENCH_DIR, "..");
export const API_TOKEN = "bench-token-0123456789";
const D1_ID = "00000000-0000-0000-0000-000000000000";
const FORBIDDEN_PORT = 8383;

/** Bundles the bench entry of reduct-edge (src/ unchanged + counting bindings) with wrangler. */
export function buildReductEdge(outDir: string): string {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  const entry = path.join("bench", "worker", "reduct-edge.ts");
  const result = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", outDir, entry], {
    cwd: ROOT,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`wrangler build failed:\n${result.stdout}\n${result.stderr}`);
  const script = path.join(outDir, "reduct-edge.js");
  if (!fs.existsSync(script)) throw new Error(`wrangler did not write ${script}`);
  return script;
}

/** Bundles the baseline Worker bench/baselines/<name>.ts (TypeScript, so workerd needs the bundle). */
/** Where a built server's script is. */
export interface BuiltScript {
  scriptPath: string;
  modulesRoot: string;
}

async function bundleBaseline(buildDir: string, name: string): Promise<BuiltScript> {
  const script = await bundleTsWorker(
    path.join(BENCH_DIR, "baselines", `${name}.ts`),
    path.join(buildDir, "baselines", `${name}.js`),
  );
  return { scriptPath: script, modulesRoot: path.dirname(script) };
}

/** Splits a SQL file into statements: `--` comments dropped, `;` outside quotes ends a statement. */
export function splitSql(text: string): string[] {
  const statements: string[] = [];
  let current = "";
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      current += ch;
      if (ch === quote) quote = null;
    } else if (ch === "-" && text[i + 1] === "-") {
      while (i < text.length && text[i] !== "\n") i++;
      current += "\n";
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      current += ch;
    } else if (ch === ";") {
      if (current.trim()) statements.push(current.trim());
      current = "";
    } else current += ch;
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

async function applySql(mf: Miniflare, binding: string, files: string[]): Promise<void> {
  const db = await mf.getD1Database(binding);
  for (const file of files) {
    const statements = splitSql(fs.readFileSync(file, "utf8"));
    if (statements.length > 0) await db.batch(statements.map((sql) => db.prepare(sql)));
  }
}

/** Server definitions: Miniflare worker options and the D1 schema to apply. */
/** A server under test: how to build it, its Miniflare worker options and the D1 schema to apply. */
export interface ServerDefinition {
  label: string;
  build?: () => BuiltScript | Promise<BuiltScript>;
  /** The Worker's options; `inspectorPort` (bench:profile) goes to Miniflare as well. */
  worker: WorkerOptions & Pick<SharedOptions, "inspectorPort">;
  d1?: { binding: string; files: () => string[] };
}

/** `{ edge, objects }` of GET /__bench/counters (bench/worker/counting.ts). */
export interface CounterSnapshot {
  edge: Counters;
  objects: Counters;
}

/** A started server (startServer). */
export interface BenchServer {
  name: string;
  label: string;
  port: number;
  pid: number | undefined;
  counters: (objects?: string[]) => Promise<CounterSnapshot>;
  resetCounters: () => Promise<unknown>;
  stop: () => Promise<void>;
}

export function serverDefinitions(buildDir: string): Record<"noop" | "doRow" | "naive" | "reductEdge", ServerDefinition> {
  const migrations = () =>
    fs
      .readdirSync(path.join(ROOT, "migrations"))
      .filter((name) => name.endsWith(".sql"))
      .sort()
      .map((name) => path.join(ROOT, "migrations", name));
  return {
    noop: {
      label: "(a) no-op Worker",
      build: () => bundleBaseline(buildDir, "noop"),
      worker: {},
    },
    doRow: {
      label: "(b) Worker → DO RPC, 1 SQLite row",
      build: () => bundleBaseline(buildDir, "do-row"),
      worker: {
        durableObjects: { ROWS: { className: "Rows", useSQLite: true } },
      },
    },
    naive: {
      label: "(c) naive: 1 R2 object + 1 D1 row per record",
      build: () => bundleBaseline(buildDir, "naive-store"),
      worker: {
        r2Buckets: { OBJECTS: "naive-objects" },
        d1Databases: { DB: D1_ID },
      },
      d1: { binding: "DB", files: () => [path.join(BENCH_DIR, "baselines", "naive-store.sql")] },
    },
    reductEdge: {
      label: "reduct-edge",
      build: () => {
        const script = buildReductEdge(path.join(buildDir, "reduct-edge"));
        return { scriptPath: script, modulesRoot: path.dirname(script) };
      },
      worker: {
        durableObjects: { BUCKETS: { className: "BucketObject", useSQLite: true } },
        r2Buckets: { RECORDS: "reduct-edge-records" },
        d1Databases: { DB: D1_ID },
        bindings: { RS_API_TOKEN: API_TOKEN },
      },
      d1: { binding: "DB", files: migrations },
    },
  };
}

/** Starts one server; resolves with its URL, port, workerd pid and control helpers. */
export async function startServer(name: string, definition: ServerDefinition, persistRoot: string): Promise<BenchServer> {
  const built = definition.build ? await definition.build() : {};
  const before = new Set(childPids("workerd"));
  const persist = path.join(persistRoot, name);
  fs.mkdirSync(persist, { recursive: true });
  const mf = newMiniflare(ROOT, {
    host: LOOPBACK,
    port: 0,
    defaultPersistRoot: persist,
    ...definition.worker,
    ...built,
  });
  let url: URL;
  try {
    url = await mf.ready;
    if (url.hostname !== LOOPBACK || Number(url.port) === FORBIDDEN_PORT) throw new Error(`unexpected server address ${url}`);
    if (definition.d1) await applySql(mf, definition.d1.binding, definition.d1.files());
  } catch (error) {
    await mf.dispose().catch(() => {});
    throw error;
  }
  const pids = childPids("workerd").filter((pid) => !before.has(pid));
  const port = Number(url.port);
  const control = async (route: string): Promise<unknown> => {
    const response = await fetch(`http://${LOOPBACK}:${port}/__bench/${route}`);
    if (!response.ok) throw new Error(`bench control ${route}: HTTP ${response.status}`);
    return response.json();
  };
  /**
   * `{ edge, objects }`: the edge's counters and the sum of `objects` (["BINDING:name", …];
   * undefined = every object of this server).
   */
  const counters = async (objects?: string[]): Promise<CounterSnapshot> =>
    (await control(
      objects === undefined ? "counters" : `counters?objects=${encodeURIComponent(objects.join(","))}`,
    )) as CounterSnapshot;
  return {
    name,
    label: definition.label,
    port,
    pid: pids.length === 1 ? pids[0] : undefined,
    counters,
    resetCounters: () => control("reset"),
    stop: () => mf.dispose(),
  };
}

/**
 * Waits until the server's deferred work is done: counters (of the edge and `objects`, see
 * startServer) unchanged for `quietMs` after at least `minMs`, at most `maxMs`. Returns them.
 */
export async function settle(
  server: BenchServer,
  { minMs = 0, quietMs = 1_000, maxMs = 15_000 }: { minMs?: number; quietMs?: number; maxMs?: number } = {},
  objects: string[] | undefined = undefined,
): Promise<CounterSnapshot> {
  const started = Date.now();
  let last = await server.counters(objects);
  let lastChange = Date.now();
  for (let polls = 0; polls < 200 && Date.now() - started < maxMs; polls++) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await server.counters(objects);
    if (JSON.stringify(now) !== JSON.stringify(last)) {
      last = now;
      lastChange = Date.now();
    } else if (Date.now() - started >= minMs && Date.now() - lastChange >= quietMs) break;
  }
  return last;
}
