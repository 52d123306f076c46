#!/usr/bin/env node
import { lookup } from "node:dns/promises";
// `npm start`: a local reduct-edge on http://127.0.0.1:8383 with persisted local DO/R2/D1 state.
//  1. validates the RS_* variables with the Worker's own config code (src/config.ts)
//     and exits 1 naming the variable if one is invalid;
//  2. applies the D1 migrations (no prompt);
//  3. bundles the Worker (`wrangler deploy --dry-run`) and serves it with Miniflare directly, as a
//     deployed Worker is served: no `wrangler dev` proxy in front (scripts/lib/launcher.ts).
//     The RS_* variables reach workerd as bindings in its configuration on stdin, never on a
//     command line (which every user of the machine can read in ps) and never in a file.
// Refuses (one line, exit 1) a state directory another `npm start` uses (lock file with its pid), a
// port in use, a host that does not resolve. workerd dies with this process however it ends (a
// watchdog, scripts/lib/launcher.ts); this process ends when the one that started it (npm) is gone.
// Unknown RS_* variables get one warning line each.
// Prints one line once the server listens, then only real warnings and errors, and the Worker's
// logs at RS_LOG_LEVEL. Exits when workerd exits. Without RS_API_TOKEN or RS_INIT_API_TOKEN the local server runs
// without authentication, as ReductStore does; a deployed Worker never does that unless RS_DISABLE_AUTH=true is set explicitly.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, parseConfig, WORKER_VARIABLES } from "../src/config.ts";
import { codeOf, messageOf } from "./lib/errors.ts";
import {
  applyMigrations,
  bundleTsWorker,
  bundleWorker,
  killWithThisProcess,
  killWranglerRuns,
  launchWorker,
  processName,
  workerdChildren,
} from "./lib/launcher.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Variables of this script only; the Worker never sees them. */
const START_ONLY = new Set(["RS_HOST", "RS_PORT", "RS_DATA_PATH", "RS_INSPECTOR_PORT", "RS_WORKER_SCRIPT"]);

let server: Awaited<ReturnType<typeof launchWorker>> | undefined;
let stopping = false;
/** Undone on every way out: the lock file and workerd's pid file, if we made them. */
const cleanups: (() => void)[] = [];
function cleanUp() {
  killWranglerRuns();
  for (const cleanup of cleanups.splice(0)) {
    try {
      cleanup();
    } catch {}
  }
}
process.on("exit", cleanUp);

function fail(message: string): never {
  console.error(`reduct-edge: ${message}`);
  process.exit(1);
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  killWranglerRuns();
  await server?.stop();
  process.exit(code);
}
// Before anything is spawned, so a signal during the start kills the wrangler runs too. Exits
// synchronously with 0: Miniflare's own handlers (registered later, so run after this one) would
// otherwise exit with 128 + the signal number; its exit hook still stops workerd.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    stopping = true;
    process.exit(0);
  });
}
// npm does not pass SIGTERM on to us: when whoever started us is gone, stop. process.ppid is
// read once at start-up, /proc is live.
function currentParentPid(): number {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return process.ppid;
  }
}
const parentPid = currentParentPid();
setInterval(() => {
  if (currentParentPid() !== parentPid) stop(0);
}, 500).unref();

function portSetting(variable: string, value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    fail(`Invalid value of ${variable}: expected a port number from 1 to 65535, got '${value}'`);
  }
  return Number(value);
}

const port = portSetting("RS_PORT", process.env.RS_PORT || "8383");
const inspectorPort = process.env.RS_INSPECTOR_PORT ? portSetting("RS_INSPECTOR_PORT", process.env.RS_INSPECTOR_PORT) : undefined;
if (inspectorPort === port) fail(`Invalid value of RS_INSPECTOR_PORT: ${inspectorPort} is RS_PORT too`);
// `[::1]` as a URL writes it; workerd and the resolver want the bare address.
const givenHost = process.env.RS_HOST || "127.0.0.1";
const host = /^\[[0-9A-Fa-f:.]+\]$/.test(givenHost) ? givenHost.slice(1, -1) : givenHost;
if (!/^[A-Za-z0-9.:-]+$/.test(host)) fail(`Invalid value of RS_HOST: expected an IP address or host name, got '${givenHost}'`);

/**
 * The Worker reads RS_BUCKET_<ID>_*, RS_TOKEN_<ID>_*, RS_LIFECYCLE_<ID>_* and RS_REPLICATION_<ID>_*
 * itself (provisioning); the names are open-ended.
 */
const reachesWorker = (name: string) => WORKER_VARIABLES.includes(name) || /^RS_(LIFECYCLE|BUCKET|TOKEN|REPLICATION)_/.test(name);

for (const name of Object.keys(process.env)
  .filter((key) => key.startsWith("RS_"))
  .sort()) {
  if (START_ONLY.has(name) || reachesWorker(name)) continue;
  console.error(`reduct-edge: warning: ${name} is not a known variable, ignored`);
}

// What the Worker gets: every non-empty RS_* variable it reads.
const workerVars: Record<string, string> = Object.fromEntries(
  Object.entries(process.env).filter(
    (pair): pair is [string, string] => reachesWorker(pair[0]) && pair[1] !== undefined && pair[1] !== "",
  ),
);
if (!workerVars.RS_API_TOKEN && !workerVars.RS_INIT_API_TOKEN && !workerVars.RS_DISABLE_AUTH) {
  workerVars.RS_DISABLE_AUTH = "true";
}

// Validated by the Worker's own config code, so `npm start` refuses exactly what the Worker would.
let config: { basePath: string; authKind: string; initTokenProvisioned: boolean; logLevel: string };
try {
  const parsed = parseConfig(workerVars);
  config = {
    basePath: parsed.basePath,
    authKind: parsed.auth.kind,
    initTokenProvisioned: parsed.auth.kind === "token" && parsed.auth.initTokenProvisioned,
    logLevel: parsed.logLevel,
  };
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(error.message);
}
// workerd implements no jurisdictions (every object call would fail): a valid value is a setting of
// the deployment only, so the local server runs without it and says so.
if (workerVars.RS_DO_JURISDICTION) {
  console.error(
    `reduct-edge: warning: RS_DO_JURISDICTION=${workerVars.RS_DO_JURISDICTION} applies on Cloudflare only; the local server ignores it`,
  );
  delete workerVars.RS_DO_JURISDICTION;
}

const apiUrl = (serverUrl: string): string =>
  config.basePath === "/" ? serverUrl : `${serverUrl}${config.basePath.slice(0, -1)}`;
const authMode = {
  token: config.initTokenProvisioned ? "token (RS_API_TOKEN)" : "token (RS_INIT_API_TOKEN)",
  disabled: process.env.RS_DISABLE_AUTH ? "off (RS_DISABLE_AUTH)" : "off (RS_API_TOKEN not set)",
  unconfigured: "not configured: every request but /alive and /ready gets 401 (set RS_API_TOKEN)",
}[config.authKind];

try {
  await lookup(host);
} catch (error) {
  fail(`Invalid value of RS_HOST: '${givenHost}' does not resolve (${codeOf(error) ?? error})`);
}

/** Fails unless host:port can be listened on now (workerd would fail later, with a stack). */
async function requireFreePort(portHost: string, portNumber: number, variable: string) {
  const problem = await new Promise<string | undefined>((resolve) => {
    const probe = net.createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? String(error)));
    probe.listen(portNumber, portHost, () => probe.close(() => resolve(undefined)));
  });
  if (problem === "EADDRINUSE") fail(`port ${portNumber} is in use (${variable})`);
  if (problem) fail(`cannot listen on ${portHost}:${portNumber} (${variable}): ${problem}`);
}

const persistTo = path.resolve(process.env.RS_DATA_PATH || path.join(root, ".wrangler", "state"));

/** mkdir -p, one level at a time: a recursive mkdirSync loops forever under /proc. */
function makeStateDirectory(dir: string) {
  const missing: string[] = [];
  for (let at = dir; ; at = path.dirname(at)) {
    let stats: ReturnType<typeof statSync> | undefined;
    try {
      stats = statSync(at);
    } catch (error) {
      if (codeOf(error) !== "ENOENT" && codeOf(error) !== "ENOTDIR")
        fail(`Invalid value of RS_DATA_PATH: cannot use ${at}: ${codeOf(error) ?? error}`);
    }
    if (stats) {
      if (!stats.isDirectory()) fail(`Invalid value of RS_DATA_PATH: ${at} is not a directory`);
      break;
    }
    missing.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const at of missing) {
    try {
      mkdirSync(at);
    } catch (error) {
      if (codeOf(error) !== "EEXIST") fail(`Invalid value of RS_DATA_PATH: cannot create ${at}: ${codeOf(error) ?? error}`);
    }
  }
}

/** Whether `pid` is a running `npm start` (a live lock holder), not a dead or reused pid. */
function isStartProcess(pid: number): boolean {
  try {
    return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("start.ts");
  } catch {
    return false;
  }
}

/** One `npm start` per state directory: two share SQLite files and race on the migrations. */
function lockStateDirectory(dir: string) {
  const lockFile = path.join(dir, "npm-start.lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockFile, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      cleanups.push(() => {
        if (readFileSync(lockFile, "utf8").trim() === String(process.pid)) rmSync(lockFile, { force: true });
      });
      return;
    } catch (error) {
      if (codeOf(error) !== "EEXIST") fail(`Invalid value of RS_DATA_PATH: cannot lock ${dir}: ${codeOf(error) ?? error}`);
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(lockFile, "utf8").trim());
    } catch {}
    if (isStartProcess(holder)) fail(`${dir} (RS_DATA_PATH) is in use by another npm start (pid ${holder})`);
    // Stale: its owner died without removing it.
    rmSync(lockFile, { force: true });
  }
  fail(`Invalid value of RS_DATA_PATH: cannot lock ${dir}`);
}

/** A workerd that a SIGKILLed earlier start left behind on this state directory: kill it. */
async function killStaleWorkerd(pidFile: string) {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (pid > 0 && processName(pid) === "workerd") {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    for (let waited = 0; processName(pid) === "workerd" && waited < 3000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  rmSync(pidFile, { force: true });
}

makeStateDirectory(persistTo);
lockStateDirectory(persistTo);
const workerdPidFile = path.join(persistTo, "workerd.pid");
await killStaleWorkerd(workerdPidFile);
await requireFreePort(host, port, "RS_PORT");
if (inspectorPort) await requireFreePort("127.0.0.1", inspectorPort, "RS_INSPECTOR_PORT");

// Migrations and the bundle at once (both are wrangler runs of some seconds). The bundle goes next
// to the state directory, not into it. RS_WORKER_SCRIPT (the soak's no-op baseline only): another
// Worker script, with the same bindings.
let scriptPath: string;
try {
  [scriptPath] = await Promise.all([
    process.env.RS_WORKER_SCRIPT
      ? bundleTsWorker(path.resolve(root, process.env.RS_WORKER_SCRIPT), path.join(`${persistTo}.build`, "worker-script.js"))
      : bundleWorker(root, path.join(path.dirname(persistTo), `${path.basename(persistTo)}.build`)),
    applyMigrations(root, persistTo),
  ]);
} catch (error) {
  fail(messageOf(error));
}

try {
  server = await launchWorker({
    tree: root,
    host,
    port,
    persistTo,
    scriptPath,
    bindings: workerVars,
    inspectorPort,
    // workerd died under us (killed, crashed): exit, so that whoever runs us sees the server is gone.
    onRuntimeExit: () => {
      console.error("reduct-edge: the Worker runtime (workerd) exited; stopping");
      stop(1);
    },
  });
} catch (error) {
  fail(`could not start the server: ${messageOf(error)}`);
}
for (const pid of workerdChildren()) {
  killWithThisProcess(pid);
  writeFileSyncQuiet(workerdPidFile, `${pid}\n`);
  cleanups.push(() => rmSync(workerdPidFile, { force: true }));
}
if (!stopping) {
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  console.log(`reduct-edge: serving ${apiUrl(origin)} (state: ${persistTo}, auth: ${authMode}, log level: ${config.logLevel})`);
}

function writeFileSyncQuiet(file: string, text: string) {
  const fd = openSync(file, "w");
  writeSync(fd, text);
  closeSync(fd);
}
