#!/usr/bin/env node
// `npm start`: a local reduct-edge on http://127.0.0.1:8383 with persisted local DO/R2/D1 state.
//  1. validates the RS_* variables with the Worker's own config code (src/config.ts)
//     and exits 1 naming the variable if one is invalid;
//  2. applies the D1 migrations (no prompt);
//  3. bundles the Worker (`wrangler deploy --dry-run`) and serves it with Miniflare directly, as a
//     deployed Worker is served: no `wrangler dev` proxy in front (scripts/lib/launcher.ts).
//     The RS_* variables reach workerd as bindings in its configuration on stdin, never on a
//     command line (which every user of the machine can read in ps) and never in a file.
// Prints one line once the server listens, then only real warnings and errors, and the Worker's
// logs at RS_LOG_LEVEL. Exits when workerd exits. Without RS_API_TOKEN or RS_INIT_API_TOKEN the local server runs
// without authentication, as ReductStore does; a deployed Worker never does that unless RS_DISABLE_AUTH=true is set explicitly.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, parseConfig } from "../src/config.ts";
import { applyMigrations, bundleTsWorker, bundleWorker, killWranglerRuns, launchWorker } from "./lib/launcher.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Variables of this script only; the Worker never sees them. */
const START_ONLY = new Set(["RS_HOST", "RS_PORT", "RS_DATA_PATH", "RS_INSPECTOR_PORT", "RS_WORKER_SCRIPT"]);

function fail(message) {
  console.error(`reduct-edge: ${message}`);
  process.exit(1);
}

const host = process.env.RS_HOST || "127.0.0.1";
const port = process.env.RS_PORT || "8383";
if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
  fail(`Invalid value of RS_PORT: expected a port number from 1 to 65535, got '${port}'`);
}
if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) fail(`Invalid value of RS_HOST: expected an IP address or host name, got '${host}'`);
const persistTo = path.resolve(process.env.RS_DATA_PATH || path.join(root, ".wrangler", "state"));

// What the Worker gets: every non-empty RS_* variable of the shell but ours.
const workerVars = Object.fromEntries(
  Object.entries(process.env).filter(([key, value]) => key.startsWith("RS_") && !START_ONLY.has(key) && value !== ""),
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

const apiUrl = (serverUrl) => (config.basePath === "/" ? serverUrl : `${serverUrl}${config.basePath.slice(0, -1)}`);
const authMode = {
  token: config.initTokenProvisioned ? "token (RS_API_TOKEN)" : "token (RS_INIT_API_TOKEN)",
  disabled: process.env.RS_DISABLE_AUTH ? "off (RS_DISABLE_AUTH)" : "off (RS_API_TOKEN not set)",
  unconfigured: "not configured: every request but /alive and /ready gets 401 (set RS_API_TOKEN)",
}[config.authKind];

// Migrations and the bundle at once (both are wrangler runs of some seconds). The bundle goes next
// to the state directory, not into it. RS_WORKER_SCRIPT (the soak's no-op baseline only): another
// Worker script, with the same bindings.
mkdirSync(persistTo, { recursive: true });
let scriptPath: string;
try {
  [scriptPath] = await Promise.all([
    process.env.RS_WORKER_SCRIPT
      ? bundleTsWorker(path.resolve(root, process.env.RS_WORKER_SCRIPT), path.join(`${persistTo}.build`, "worker-script.js"))
      : bundleWorker(root, path.join(path.dirname(persistTo), `${path.basename(persistTo)}.build`)),
    applyMigrations(root, persistTo),
  ]);
} catch (error) {
  fail(error.message);
}

let server: Awaited<ReturnType<typeof launchWorker>> | undefined;
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  killWranglerRuns();
  await server?.stop();
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop(0));

try {
  server = await launchWorker({
    tree: root,
    host,
    port: Number(port),
    persistTo,
    scriptPath,
    bindings: workerVars,
    inspectorPort: process.env.RS_INSPECTOR_PORT ? Number(process.env.RS_INSPECTOR_PORT) : undefined,
    // workerd died under us (killed, crashed): exit, so that whoever runs us sees the server is gone.
    onRuntimeExit: () => {
      console.error("reduct-edge: the Worker runtime (workerd) exited; stopping");
      stop(1);
    },
  });
} catch (error) {
  fail(`could not start the server: ${error?.message ?? error}`);
}
if (!stopping) {
  const origin = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  console.log(`reduct-edge: serving ${apiUrl(origin)} (state: ${persistTo}, auth: ${authMode}, log level: ${config.logLevel})`);
}
