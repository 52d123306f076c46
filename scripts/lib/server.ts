// Shared helpers of the reliability scripts (crash-loop, soak): start `npx tsx scripts/start.ts` in its
// own process group on a free 127.0.0.1 port with a given RS_DATA_PATH, wait for /alive, SIGKILL or
// stop the whole group, and find the workerd process of a running server.
// Everything here talks to 127.0.0.1 only and never touches port 8383 or .wrangler/state.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { tsNodeArgs } from "./node-ts.ts";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port that is free on 127.0.0.1 right now (never 8383, the port `npm start` uses). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = net.createServer();
      probe.unref();
      probe.on("error", reject);
      probe.listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    if (port !== 8383) return port;
  }
  throw new Error("no free port found");
}

/** Is any process of the group `pgid` still alive? */
export function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

/** Direct children of `pid` (pgrep -P), as numbers. */
function childrenOf(pid) {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

/** Every descendant of `pid` (pgrep -P, recursively; bounded depth). */
export function descendantsOf(pid, depth = 6) {
  if (depth === 0) return [];
  const out = [];
  for (const child of childrenOf(pid)) out.push(child, ...descendantsOf(child, depth - 1));
  return out;
}

/** The executable name of a process (from /proc/<pid>/comm), or "" if it is gone. */
export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/**
 * RSS in KiB (VmRSS of /proc/<pid>/status, and its anonymous and file-backed parts RssAnon and
 * RssFile: mapped files such as SQLite databases count in RSS but are page cache, not heap) and the
 * number of open fds, or undefined if the process is gone.
 */
export function processStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1] ?? Number.NaN);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssKiB: kib("VmRSS"), anonKiB: kib("RssAnon"), fileKiB: kib("RssFile"), fds };
  } catch {
    return undefined;
  }
}

/** The servers startServer can run: the command (relative to the tree), its arguments and variables. */
export const SERVER_KINDS = {
  /** `npm start`: the Worker under Miniflare directly, one workerd. */
  miniflare: { args: ["scripts/start.ts"] },
  /** The no-op Worker (scripts/lib/noop-worker.ts) under the same `npm start`: the runtime's baseline. */
  noop: { args: ["scripts/start.ts"], env: { RS_WORKER_SCRIPT: "scripts/lib/noop-worker.ts" } },
};

/**
 * Starts `npx tsx scripts/start.ts` (`kind` "miniflare", the default: reduct-edge; "noop": the no-op
 * Worker) detached (its own process group, so node and workerd are killed together) with only the
 * given RS_* variables, appending its output to `logPath`. `tree`: the checkout to run (the
 * repository, or a snapshotTree copy). `tag` prefixes the log lines printed here. RS_INSPECTOR_PORT
 * in `env` turns on workerd's V8 inspector on that port. Never port 8383 (a developer's `npm start`).
 */
export function startServer({ tag, port, dataPath, logPath, env = {}, tree = root, kind = "miniflare" }) {
  const spec = SERVER_KINDS[kind];
  if (!spec) throw new Error(`unknown server kind ${kind}`);
  if (!(port > 0) || port === 8383) throw new Error(`${tag}: port must be a free port other than 8383, got ${port}`);
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_")));
  const logFd = openSync(logPath, "a");
  const child = spawn(process.execPath, tsNodeArgs(path.join(tree, spec.args[0]), ...spec.args.slice(1)), {
    cwd: tree,
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: { ...baseEnv, ...env, ...spec.env, RS_HOST: "127.0.0.1", RS_PORT: String(port), RS_DATA_PATH: dataPath },
  });
  closeSync(logFd);
  const pgid = child.pid;
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const url = `http://127.0.0.1:${port}`;
  const startedAt = Date.now();

  const server = {
    url,
    pgid,
    port,
    startedAt,
    get exited() {
      return exited;
    },
    kind,
    /** Polls HEAD /api/v1/alive until 200; resolves with the seconds it took since the spawn. */
    async waitAlive(timeoutMs) {
      for (;;) {
        if (exited) throw new Error(`${tag}: the server exited before answering HEAD /api/v1/alive`);
        try {
          const response = await fetch(`${url}/api/v1/alive`, { method: "HEAD", signal: AbortSignal.timeout(2_000) });
          if (response.status === 200) return (Date.now() - startedAt) / 1000;
        } catch {
          // not listening yet
        }
        if (Date.now() - startedAt > timeoutMs) {
          throw new Error(`${tag}: HEAD /api/v1/alive did not answer 200 within ${(timeoutMs / 1000).toFixed(0)} s`);
        }
        await sleep(200);
      }
    },
    /** The workerd process of this server (a child of the launcher), as `{ runtime }`. */
    workerdPids() {
      const runtime = descendantsOf(pgid, 10).find((pid) => commOf(pid) === "workerd");
      return runtime ? { runtime } : {};
    },
    /** The workerd process that runs reduct-edge, if any. */
    workerdPid() {
      return server.workerdPids().runtime;
    },
    /** SIGKILL to the whole group, then waits (bounded) until nothing of it is left. */
    async kill() {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {}
      const deadline = Date.now() + 5_000;
      while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
      return !groupAlive(pgid);
    },
    /** SIGTERM to the group, SIGKILL after `graceMs` if anything of it is still alive. */
    async stop(graceMs = 5_000) {
      if (!groupAlive(pgid)) return true;
      try {
        process.kill(-pgid, "SIGTERM");
      } catch {}
      const deadline = Date.now() + graceMs;
      while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(pgid)) return server.kill();
      return true;
    },
  };
  return server;
}

/** Waits (bounded) until nothing listens on 127.0.0.1:port any more. */
export async function waitPortFree(port, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const busy = await new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (!busy) return true;
    await sleep(100);
  }
  return false;
}

/**
 * Copies what `npm start` runs (src, migrations, wrangler.toml, package.json, scripts/start.ts, …)
 * into `dest`, with node_modules linked, and returns `dest`. `npm start` bundles the Worker anew on
 * every start; running from a snapshot keeps the code under test the same across every restart of
 * a run even while the tree is being edited.
 */
export function snapshotTree(dest) {
  mkdirSync(path.join(dest, "scripts"), { recursive: true });
  for (const item of ["src", "ui", "migrations", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts"]) {
    const from = path.join(root, item);
    if (existsSync(from)) cpSync(from, path.join(dest, item), { recursive: true });
  }
  // `npm start` and what it imports: the launcher, the soak's no-op Worker, the shared helpers.
  cpSync(path.join(root, "scripts"), path.join(dest, "scripts"), { recursive: true });
  // Hard links (same file system, instant), so that an `npm ci` in the repository during the run
  // does not change the packages under test. Falls back to a symlink across file systems.
  try {
    execFileSync("cp", ["-al", path.join(root, "node_modules"), path.join(dest, "node_modules")], { stdio: "ignore" });
  } catch {
    symlinkSync(path.join(root, "node_modules"), path.join(dest, "node_modules"), "dir");
  }
  return dest;
}

/** "<commit> (+N uncommitted files under src/)" of the repository, for reports. */
export function treeVersion() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"], {
      cwd: root,
      encoding: "utf8",
    })
      .split("\n")
      .filter(Boolean).length;
    return dirty ? `${head} (+${dirty} uncommitted changes under src/, migrations/, wrangler.toml)` : head;
  } catch {
    return "unknown";
  }
}
