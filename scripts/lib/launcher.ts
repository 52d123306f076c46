// Runs a Worker with Miniflare directly: one workerd, our port served by it, no wrangler dev proxy
// in front (that proxy rewrites text/html bodies, holds early answers until the request body ends
// and invents 503s; a deployed Worker has none of that). Used by `npm start` (scripts/start.ts),
// which the smoke, crash-loop, soak and end-to-end bench all run.
//
// The bindings of wrangler.toml: BUCKETS (SQLite Durable Object), RECORDS (R2), DB (D1), and
// CF_VERSION_METADATA, whose timestamp Miniflare sets to the start, so /info's uptime counts from
// there. State persists under `<persistTo>/v3`, the layout `wrangler dev --persist-to` uses, so
// state written by earlier versions of `npm start` stays readable. Variables reach workerd in its
// configuration on stdin, never on a command line.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { type Json, Log, LogLevel, Miniflare, type MiniflareOptions } from "miniflare";

const D1_ID = "00000000-0000-0000-0000-000000000000";
/** The web console's built assets (wrangler.toml's [assets] directory). */
const CONSOLE_ASSETS = path.join("ui", "dist");

/** compatibility_date / compatibility_flags of the tree's wrangler.toml. */
export function compatibility(tree: string): { compatibilityDate: string; compatibilityFlags: string[] } {
  const toml = fs.readFileSync(path.join(tree, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  const flags = /^compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(toml)?.[1] ?? "";
  if (!date) throw new Error("no compatibility_date in wrangler.toml");
  return { compatibilityDate: date, compatibilityFlags: [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? "") };
}

/** Quiet wrangler: no banner or update check, no telemetry, only its warnings and errors. */
export function quietWranglerEnv() {
  return {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_"))),
    CI: "true",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    CLOUDFLARE_INCLUDE_PROCESS_ENV: "false",
    WRANGLER_LOG: process.env.WRANGLER_LOG || "warn",
  };
}

/** wrangler processes still running (ended by killWranglerRuns when we stop early). */
const wranglerRuns = new Set<ChildProcess>();

/** Child pids of `pid`, recursively (children first found, then theirs). */
function descendantPids(pid: number, depth = 8): number[] {
  if (depth === 0) return [];
  let children: number[] = [];
  try {
    children = execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
  return children.flatMap((child) => [child, ...descendantPids(child, depth - 1)]);
}

/**
 * SIGKILLs every wrangler run still going with everything it started (a stop during the start):
 * wrangler runs node, which runs workerd for the migrations; killing wrangler alone orphans them.
 * Synchronous, so that it also works in an `exit` handler.
 */
export function killWranglerRuns() {
  for (const child of wranglerRuns) {
    if (child.pid === undefined) continue;
    for (const pid of [child.pid, ...descendantPids(child.pid)]) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
  }
}

/** The workerd processes this process started (Miniflare spawns one). */
export function workerdChildren(): number[] {
  return descendantPids(process.pid, 2).filter((pid) => processName(pid) === "workerd");
}

/** The executable name of a process, or "" when it is gone. */
export function processName(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * Makes workerd `pid` die with this process even when this process is SIGKILLed: a shell that
 * blocks reading a pipe from us gets EOF when we are gone however we die, then kills workerd (if
 * that pid is still a workerd). Node offers no prctl(PR_SET_PDEATHSIG).
 */
export function killWithThisProcess(pid: number): void {
  const watchdog = spawn(
    "/bin/sh",
    ["-c", 'cat >/dev/null; [ "$(cat /proc/$0/comm 2>/dev/null)" = workerd ] && kill -9 "$0"', String(pid)],
    { stdio: ["pipe", "ignore", "ignore"] },
  );
  watchdog.on("error", () => {});
  watchdog.stdin?.on("error", () => {});
  watchdog.unref();
  // The pipe must not keep the event loop alive: we only need it to close when we exit.
  (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
}

/** Runs wrangler in `tree`; resolves with its exit code and output. */
function runWrangler(tree: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(tree, "node_modules", ".bin", "wrangler"), args, {
      cwd: tree,
      env: quietWranglerEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    wranglerRuns.add(child);
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => (output += String(error)));
    child.on("close", (code) => {
      wranglerRuns.delete(child);
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/**
 * What the bundle is made of: every file under src/, wrangler.toml and the locked packages; and the
 * web console's sources under ui/, which wrangler's [build] command builds into ui/dist.
 */
function sourceDigest(tree: string): string {
  const hash = createHash("sha256");
  const files = ["src", "ui"]
    .filter((dir) => fs.existsSync(path.join(tree, dir)))
    .flatMap((dir) => fs.readdirSync(path.join(tree, dir), { recursive: true, withFileTypes: true }))
    .filter((entry) => !path.relative(tree, entry.parentPath ?? entry.path).match(/^ui[\\/](dist|\.dist-)/))
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
    .sort();
  for (const file of [...files, path.join(tree, "wrangler.toml"), path.join(tree, "package-lock.json")]) {
    hash.update(`${path.relative(tree, file)}\0`);
    if (fs.existsSync(file)) hash.update(fs.readFileSync(file));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/**
 * `wrangler deploy --dry-run` of the tree's Worker (src/index.ts) into `outDir`; the script path.
 * A bundle of the same sources from an earlier start is reused (a restart then skips the build).
 */
export async function bundleWorker(tree: string, outDir: string): Promise<string> {
  const script = path.join(outDir, "index.js");
  const stamp = path.join(outDir, "sources.sha256");
  const digest = sourceDigest(tree);
  const consoleBuilt = fs.existsSync(path.join(tree, CONSOLE_ASSETS, "index.html"));
  if (consoleBuilt && fs.existsSync(script) && fs.existsSync(stamp) && fs.readFileSync(stamp, "utf8") === digest) return script;
  fs.rmSync(stamp, { force: true });
  const { code, output } = await runWrangler(tree, ["deploy", "--dry-run", "--outdir", outDir]);
  if (code !== 0) throw new Error(`building the Worker failed:\n${output}`);
  if (!fs.existsSync(script)) throw new Error(`wrangler did not write ${script}`);
  fs.writeFileSync(stamp, digest);
  return script;
}

/**
 * Bundles a small TypeScript Worker (a bench baseline, the soak's no-op Worker) into one ES module
 * at `outFile`, as wrangler bundles reduct-edge: workerd runs JavaScript only. Returns `outFile`.
 */
export async function bundleTsWorker(entry: string, outFile: string): Promise<string> {
  const { build } = await import("esbuild");
  await build({
    entryPoints: [entry],
    outfile: outFile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    external: ["cloudflare:*", "node:*"],
    logLevel: "warning",
  });
  return outFile;
}

/** Applies the tree's D1 migrations to the local database under `persistTo` (no prompt). */
export async function applyMigrations(tree: string, persistTo: string): Promise<void> {
  const { code, output } = await runWrangler(tree, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo]);
  if (code !== 0) throw new Error(`applying the D1 migrations failed:\n${output}`);
}

/**
 * The one way the harness makes a Miniflare: `npm start` (launchWorker) and every bench server.
 * One workerd, ES modules, the tree's compatibility date and flags, no `Request.cf` download, and
 * only the runtime's warnings and errors.
 */
export function newMiniflare(tree: string, options: MiniflareOptions): Miniflare {
  return new Miniflare({
    log: new Log(LogLevel.WARN),
    cf: false,
    modules: true,
    ...compatibility(tree),
    ...options,
  } as MiniflareOptions);
}

/**
 * Starts the Worker at `scriptPath` on host:port. Resolves with `{ url, stop }` once it listens.
 * workerd's output (the Worker's logs, runtime errors) goes to this process's stdout/stderr as it
 * is. `onRuntimeExit` runs if workerd ends on its own (killed, crashed): without it the server
 * would be gone while this process lived on.
 */
export interface LaunchOptions {
  tree: string;
  host: string;
  port: number;
  persistTo: string;
  scriptPath: string;
  bindings: Record<string, Json>;
  inspectorPort?: number | undefined;
  onRuntimeExit?: () => void;
}

export interface LaunchedWorker {
  url: URL;
  stop: () => Promise<void>;
}

export async function launchWorker({
  tree,
  host,
  port,
  persistTo,
  scriptPath,
  bindings,
  inspectorPort,
  onRuntimeExit,
}: LaunchOptions): Promise<LaunchedWorker> {
  let stopping = false;
  const mf = newMiniflare(tree, {
    name: "reduct-edge",
    host,
    port,
    defaultPersistRoot: path.join(persistTo, "v3"),
    scriptPath,
    modulesRoot: path.dirname(scriptPath),
    durableObjects: { BUCKETS: { className: "BucketObject", useSQLite: true } },
    r2Buckets: { RECORDS: "reduct-edge-records" },
    d1Databases: { DB: D1_ID },
    versionMetadata: "CF_VERSION_METADATA",
    // The web console, as wrangler.toml's [assets]: the Worker runs first and uses the binding.
    // Built by `npm install` and by the bundle's [build] command; without it {base}ui/ is 404.
    ...(fs.existsSync(path.join(tree, CONSOLE_ASSETS))
      ? {
          assets: {
            directory: path.join(tree, CONSOLE_ASSETS),
            binding: "ASSETS",
            routerConfig: { has_user_worker: true, invoke_user_worker_ahead_of_assets: true },
            assetConfig: { not_found_handling: "single-page-application" },
          },
        }
      : {}),
    bindings,
    ...(inspectorPort ? { inspectorPort } : {}),
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      let open = 2;
      const ended = () => {
        open -= 1;
        if (open === 0 && !stopping) onRuntimeExit?.();
      };
      const pairs: [Readable, Writable][] = [
        [stdout, process.stdout],
        [stderr, process.stderr],
      ];
      for (const [stream, out] of pairs) {
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => out.write(`${line}\n`));
        stream.once("end", ended);
      }
    },
  });
  let sweep: NodeJS.Timeout | undefined;
  const stop = async () => {
    stopping = true;
    clearInterval(sweep);
    await mf.dispose().catch(() => {});
  };
  try {
    const url = await mf.ready;
    const rearmed = await rearmLostAlarms(mf, persistTo, 0);
    if (rearmed > 0) console.error(`reduct-edge: ${rearmed} bucket alarm(s) past their time set again (lost by the last stop)`);
    // workerd also loses one now and then while it runs: 20 s past its time, an alarm is lost.
    let sweeping = false;
    sweep = setInterval(() => {
      // Many objects: a look may take longer than the interval; looks never overlap.
      if (sweeping) return;
      sweeping = true;
      rearmLostAlarms(mf, persistTo, LOST_ALARM_MS)
        .then((count) => {
          if (count > 0 && !stopping) console.error(`reduct-edge: ${count} bucket alarm(s) 20 s past their time set again`);
        })
        .catch(() => {}) // stopping: the runtime is gone
        .finally(() => {
          sweeping = false;
        });
    }, SWEEP_MS);
    sweep.unref();
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Where local workerd keeps the bucket objects' SQLite files, one `<hex id>.sqlite` per object. */
const BUCKET_OBJECTS_DIR = path.join("v3", "do", "reduct-edge-BucketObject");
/** An alarm this far past its time was lost: a run takes at most ~10 s (the object's own bound). */
const LOST_ALARM_MS = 20_000;
/** How often the running server looks for lost alarms (each look is one call per bucket object). */
const SWEEP_MS = 10_000;

/**
 * Sets every bucket object's alarm that is more than `overdueMs` past its time again; returns how
 * many. workerd fires alarms from its own list beside each object's stored alarm, and a stop while
 * an alarm run is under way (and, now and then, a run under way) can leave an object's next alarm
 * out of that list: the object's alarm then reads as due but never fires, and its duties
 * (lifecycles, sealing, purges, usage) wait for a request that may never come. Right after the
 * start nothing runs yet, so any alarm past its time is such a lost one.
 */
export async function rearmLostAlarms(mf: Miniflare, persistTo: string, overdueMs: number): Promise<number> {
  const dir = path.join(persistTo, BUCKET_OBJECTS_DIR);
  const ids = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .map((file) => /^([0-9a-f]{64})\.sqlite$/.exec(file)?.[1])
        .filter((id) => id !== undefined)
    : [];
  if (ids.length === 0) return 0;
  const namespace = await mf.getDurableObjectNamespace("BUCKETS");
  let rearmed = 0;
  for (const id of ids) {
    const stub = namespace.get(namespace.idFromString(id)) as unknown as { rearmLostAlarm(ms: number): Promise<boolean> };
    try {
      if (await stub.rearmLostAlarm(overdueMs)) rearmed += 1;
    } catch (error) {
      console.error(`reduct-edge: could not check the alarm of bucket object ${id}: ${String(error)}`);
    }
  }
  return rearmed;
}
