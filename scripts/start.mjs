#!/usr/bin/env node
// `npm start`: a local reduct-edge on http://127.0.0.1:8383 with persisted local DO/R2/D1 state.
//  1. validates the RS_* variables with the Worker's own config code (src/config.ts, run with tsx)
//     and exits 1 naming the variable if one is invalid;
//  2. applies the D1 migrations (no prompt);
//  3. runs `wrangler dev`. The RS_* variables reach the Worker through a mode-600 env file in the
//     state directory, never on a command line (which every user of the machine can read in ps).
// Prints one line once the server listens, then only real warnings and errors, and the Worker's
// logs at RS_LOG_LEVEL. Without RS_API_TOKEN the local server runs without authentication, as
// ReductStore does; a deployed Worker never does that unless RS_DISABLE_AUTH=true is set explicitly.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");

/** Variables of this script only; the Worker never sees them. */
const START_ONLY = new Set(["RS_HOST", "RS_PORT", "RS_DATA_PATH", "RS_INSPECTOR_PORT", "RS_WORKER_SCRIPT"]);

/** Prints `{error}` for an invalid configuration, else the parts of it this script shows. */
const CHECK_CONFIG = `
import { readFileSync } from "node:fs";
import { require as requireTs } from "tsx/cjs/api";
const { ConfigError, parseConfig } = requireTs("./src/config.ts", import.meta.url);
let result;
try {
  const config = parseConfig(JSON.parse(readFileSync(0, "utf8")));
  result = { basePath: config.basePath, authKind: config.auth.kind, logLevel: config.logLevel };
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  result = { error: error.message };
}
process.stdout.write(JSON.stringify(result));
`;

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
if (!workerVars.RS_API_TOKEN && !workerVars.RS_DISABLE_AUTH) workerVars.RS_DISABLE_AUTH = "true";

// Validated by the Worker's own config code, in a short-lived child: the TypeScript runner's
// esbuild service then does not live on beside the server. The values go through stdin, never argv.
const checked = spawnSync(process.execPath, ["--input-type=module", "-e", CHECK_CONFIG], {
  cwd: root,
  input: JSON.stringify(workerVars),
  encoding: "utf8",
  stdio: ["pipe", "pipe", "inherit"],
});
if (checked.status !== 0) fail("could not run the configuration check (src/config.ts)");
const config = JSON.parse(checked.stdout);
if (config.error) fail(config.error);

/**
 * One line of a dotenv file that wrangler 4.86 (dotenv 16 + dotenv-expand 12) reads back as exactly
 * `value`: quoted with a quote character the value does not contain, `$` escaped so that nothing
 * is expanded. Line breaks cannot be represented reliably, so they are refused.
 */
function envFileLine(key, value) {
  if (/[\r\n\0]/.test(value)) fail(`Invalid value of ${key}: line breaks are not supported`);
  const quote = ["'", "`", '"'].find((q) => !value.includes(q) && (q !== '"' || !/\\[nr]/.test(value)));
  if (!quote) fail(`Invalid value of ${key}: it cannot contain all of ' " and \` at once`);
  return `${key}=${quote}${value.replaceAll("$", "\\$")}${quote}\n`;
}

// Written to a fresh file created with mode 600 and renamed into place, so that no other user can
// read it even for a moment; removed when the server stops.
const varsText = Object.entries(workerVars)
  .map(([key, value]) => envFileLine(key, value))
  .join("");
mkdirSync(persistTo, { recursive: true });
const varsFile = path.join(persistTo, "worker.env");
const varsTemp = `${varsFile}.${process.pid}.tmp`;
rmSync(varsTemp, { force: true });
writeFileSync(varsTemp, varsText, { mode: 0o600, flag: "wx" });
chmodSync(varsTemp, 0o600);
renameSync(varsTemp, varsFile);
const removeVarsFile = () => rmSync(varsFile, { force: true });

// Quiet wrangler: no banner (and so no update check against the npm registry), no telemetry, no
// Request.cf download (offline it prints an ENOTFOUND stack), only warnings and errors of its own.
// It loads the env file into its own environment (children inherit it): like the file, that is
// readable only by this user, unlike a command line.
const wranglerEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_"))),
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  CLOUDFLARE_INCLUDE_PROCESS_ENV: "false",
  WRANGLER_LOG: process.env.WRANGLER_LOG || "warn",
};

const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], {
  cwd: root,
  env: wranglerEnv,
  stdio: ["ignore", "inherit", "inherit"],
});
if (migrate.status !== 0) {
  removeVarsFile();
  fail("applying the D1 migrations failed");
}

const apiUrl = (serverUrl) => (config.basePath === "/" ? serverUrl : `${serverUrl}${config.basePath.slice(0, -1)}`);
const authMode = {
  token: "token (RS_API_TOKEN)",
  disabled: process.env.RS_DISABLE_AUTH ? "off (RS_DISABLE_AUTH)" : "off (RS_API_TOKEN not set)",
  unconfigured: "not configured: every request but /alive and /ready gets 401 (set RS_API_TOKEN)",
}[config.authKind];
const servingLine = (serverUrl) =>
  `reduct-edge: serving ${apiUrl(serverUrl)} (state: ${persistTo}, auth: ${authMode}, log level: ${config.logLevel})`;

// RS_WORKER_SCRIPT (the soak's no-op baseline only): another Worker script, with the same bindings.
const script = process.env.RS_WORKER_SCRIPT ? [process.env.RS_WORKER_SCRIPT] : [];
const args = [
  "dev",
  ...script,
  "--ip",
  host,
  "--port",
  port,
  "--persist-to",
  persistTo,
  "--env-file",
  varsFile,
  "--show-interactive-dev-session=false",
];
// The port of wrangler's devtools inspector (default: 9229 or the next free one); the soak sets it.
if (process.env.RS_INSPECTOR_PORT) args.push("--inspector-port", process.env.RS_INSPECTOR_PORT);
// Level info, not warn: the Worker's logs reach wrangler's logger at info (console.debug/info).
const dev = spawn(wrangler, args, {
  cwd: root,
  env: { ...wranglerEnv, WRANGLER_LOG: process.env.WRANGLER_LOG || "info" },
  stdio: ["ignore", "pipe", "pipe"],
});

// wrangler's own info lines: its "Ready on" (replaced by our one line) and its per-request lines
// (the Worker logs requests itself at RS_LOG_LEVEL). Everything else passes through unchanged.
const ANSI = /\u001b\[[0-9;]*m/g;
const READY = /^\[wrangler:info\] Ready on (\S+)$/;
const REQUEST_LINE = /^\[wrangler:info\] [A-Z]+ \S+ \d{3} .*\(\d+ms\)$/;
function relay(stream, out) {
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
    const plain = line.replace(ANSI, "");
    const ready = READY.exec(plain);
    if (ready) out.write(`${servingLine(ready[1])}\n`);
    else if (!REQUEST_LINE.test(plain)) out.write(`${line}\n`);
  });
}
relay(dev.stdout, process.stdout);
relay(dev.stderr, process.stderr);

for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => {
  removeVarsFile();
  process.exit(code ?? (signal ? 1 : 0));
});
