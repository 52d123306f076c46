#!/usr/bin/env node
// `npm run smoke`: the black-box compatibility suite, as CI runs it.
//  1. starts `npm start` with the shared launcher (scripts/lib/server.ts) on a free 127.0.0.1 port,
//     with a fresh temporary RS_DATA_PATH, a random RS_API_TOKEN and RS_INSTANCE_NAME=smoke;
//  2. runs test/blackbox/*.test.ts (the official reduct-js client against that server) with
//     `node --test`, one file at a time (the files share the server and clean it before each test);
//  3. runs scripts/restart-check.ts: state written before a restart must be readable after it;
//  4. runs scripts/start-check.ts: what `npm start` prints, secrets off command lines, RS_LOG_LEVEL,
//     a stalled write answered 400 while its body is open, invalid RS_* values refused at start;
//     then scripts/usage-check.ts: `$system` usage records with a 2 s window, read with reduct-js;
//  5. stops every server it started (SIGTERM to the group, SIGKILL after 5 s) and exits non-zero if
//     anything failed, printing the server logs in that case.
// The whole run is bounded (RUN_BUDGET_MS); nothing here touches port 8383 or .wrangler/state.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { TSX_FLAGS } from "./lib/node-ts.ts";
import { root, type Server, type ServerOptions, spawnServer, stopAllServers } from "./lib/server.ts";
import { runRestartCheck } from "./restart-check.ts";
import { runStartCheck } from "./start-check.ts";
import { runUsageCheck } from "./usage-check.ts";

const RUN_BUDGET_MS = 420_000;
/** Kept for the restart and start checks after the client tests. */
const CHECKS_RESERVE_MS = 150_000;
const TEST_TIMEOUT_MS = 30_000;
const runStarted = Date.now();

const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-smoke-"));
const dataPath = path.join(workDir, "state");
const apiToken = randomBytes(16).toString("hex");
/** Every server this run started, so that all of them are stopped on any exit path. */
const servers: Server[] = [];
/** Set once the run is ending: no server may be started after that. */
let finishing = false;

/** Starts `npm start` through the shared launcher, unless the run is ending; remembered for the stop. */
async function startSmokeServer(options: ServerOptions): Promise<Server> {
  if (finishing) throw new Error(`not starting ${options.tag}: the run is being aborted`);
  const server = await spawnServer(options);
  servers.push(server);
  console.log(`smoke: started ${options.tag} (pid ${server.pid}) on ${server.url}, state in ${options.dataPath}`);
  server.aliveSeconds = await server.waitAlive(Math.min(60_000, remaining()));
  console.log(`smoke: ${options.tag} alive after ${server.aliveSeconds.toFixed(1)} s`);
  return server;
}

function printLog(server: Server) {
  const { tag, logPath } = server.options;
  console.log(`\n----- ${tag} log (${logPath}) -----\n${server.log()}----- end of ${tag} log -----\n`);
}

/** The running `node --test` process, if any (killed when the run is aborted). */
let testRunner: ChildProcess | undefined;

/** Runs `node <args>` with stdio inherited; resolves with its exit code (1 when killed on timeout). */
function runNode(
  args: string[],
  { cwd, env, timeoutMs }: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: "inherit" });
    testRunner = child;
    const timer = setTimeout(
      () => {
        console.error(`smoke: node ${args.join(" ")} exceeded ${(timeoutMs / 1000).toFixed(0)} s, killing it`);
        child.kill("SIGKILL");
      },
      Math.max(timeoutMs, 1_000),
    );
    child.on("exit", (code, signal) => {
      testRunner = undefined;
      clearTimeout(timer);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

const elapsed = () => `${((Date.now() - runStarted) / 1000).toFixed(1)} s`;
const remaining = () => RUN_BUDGET_MS - (Date.now() - runStarted);

async function finish(code: number, { showLogs }: { showLogs: boolean }): Promise<void> {
  if (finishing) return;
  finishing = true;
  testRunner?.kill("SIGKILL");
  await stopAllServers();
  if (showLogs) for (const server of servers) printLog(server);
  rmSync(workDir, { recursive: true, force: true });
  console.log(`smoke: ${code === 0 ? "passed" : "FAILED"} in ${elapsed()}`);
  process.exit(code);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    console.error(`smoke: ${signal} received, stopping the servers`);
    finish(1, { showLogs: false });
  });
}
const watchdog = setTimeout(() => {
  console.error(`smoke: the run exceeded its budget of ${RUN_BUDGET_MS / 1000} s`);
  finish(1, { showLogs: true });
}, RUN_BUDGET_MS);
watchdog.unref();

async function main() {
  const testFiles = readdirSync(path.join(root, "test", "blackbox"))
    .filter((name) => name.endsWith(".test.ts"))
    .sort()
    .map((name) => path.join("test", "blackbox", name));
  if (testFiles.length === 0) throw new Error("no test/blackbox/*.test.ts files found");

  const instanceName = "smoke";
  const server = await startSmokeServer({
    tag: "server",
    dataPath,
    logPath: path.join(workDir, "server.log"),
    env: { RS_API_TOKEN: apiToken, RS_INSTANCE_NAME: instanceName },
  });

  console.log(`smoke: running ${testFiles.length} test files against ${server.url}`);
  const testCode = await runNode(
    [...TSX_FLAGS, "--test", "--test-concurrency=1", `--test-timeout=${TEST_TIMEOUT_MS}`, "--test-reporter=spec", ...testFiles],
    {
      cwd: root,
      env: { STORAGE_URL: server.url, RS_API_TOKEN: apiToken, RS_INSTANCE_NAME: instanceName },
      timeoutMs: remaining() - CHECKS_RESERVE_MS,
    },
  );
  if (finishing) return;
  console.log(`smoke: black-box tests exited with ${testCode} (${elapsed()})`);

  const restartOk = await runRestartCheck({
    first: server,
    restart: async (changes) => {
      await server.stop();
      return startSmokeServer({ ...server.options, ...changes });
    },
    apiToken,
    instanceName,
    logPath: path.join(workDir, "server-restarted.log"),
  });
  console.log(`smoke: restart check ${restartOk ? "passed" : "FAILED"} (${elapsed()})`);
  if (finishing) return;

  const startOk = await runStartCheck({ workDir });
  console.log(`smoke: start check ${startOk ? "passed" : "FAILED"} (${elapsed()})`);

  if (finishing) return;

  const usageOk = await runUsageCheck({ workDir });
  console.log(`smoke: usage check ${usageOk ? "passed" : "FAILED"} (${elapsed()})`);

  const code = testCode !== 0 ? testCode : restartOk && startOk && usageOk ? 0 : 1;
  await finish(code, { showLogs: code !== 0 });
}

main().catch(async (error) => {
  console.error("smoke:", error?.stack ?? error);
  await finish(1, { showLogs: true });
});
