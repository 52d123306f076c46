// Shared helpers of the reliability scripts (crash-loop, soak): start `node scripts/start.mjs` in its
// own process group on a free 127.0.0.1 port with a given RS_DATA_PATH, wait for /alive, SIGKILL or
// stop the whole group, and find the workerd process of a running server.
// Everything here talks to 127.0.0.1 only and never touches port 8383 or .wrangler/state.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port that is free on 127.0.0.1 right now (never 8383, the port `npm start` uses). */
export async function freePort() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const probe = net.createServer();
      probe.unref();
      probe.on("error", reject);
      probe.listen(0, "127.0.0.1", () => {
        const { port } = probe.address();
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

/** The servers startServer can run: the command (relative to the tree) and its arguments. */
export const SERVER_KINDS = {
  /** `npm start`: wrangler dev (a proxy workerd on our port in front of the workerd running the Worker). */
  wrangler: { args: ["scripts/start.mjs"], proxy: true },
  /** The no-op Worker (scripts/lib/noop-worker.mjs) under the same `npm start`: wrangler's baseline. */
  "wrangler-noop": {
    args: ["scripts/start.mjs"],
    proxy: true,
    env: { RS_WORKER_SCRIPT: "scripts/lib/noop-worker.mjs" },
  },
  /** The same Worker and bindings under Miniflare directly: one workerd, no proxy. */
  miniflare: { args: ["scripts/lib/miniflare-server.mjs", "--worker", "reduct-edge"], readyLine: "listening on" },
  /** The no-op Worker under the same Miniflare: Miniflare's baseline. */
  noop: { args: ["scripts/lib/miniflare-server.mjs", "--worker", "noop"], readyLine: "listening on" },
};

/**
 * Starts `node scripts/start.mjs` (`kind` "wrangler", the default, or "wrangler-noop") or the
 * Miniflare launcher (`kind` "miniflare" or "noop", see scripts/lib/miniflare-server.mjs) detached
 * (its own process group, so the node processes and workerd are killed together) with only the
 * given RS_* variables, appending its output to `logPath`. `tree`: the checkout to run (the repository, or a snapshotTree
 * copy). `tag` prefixes the log lines printed here. RS_INSPECTOR_PORT in `env` turns on workerd's
 * V8 inspector on that port (wrangler dev: its devtools proxy, which always runs).
 */
export function startServer({ tag, port, dataPath, logPath, env = {}, tree = root, kind = "wrangler" }) {
  const spec = SERVER_KINDS[kind];
  if (!spec) throw new Error(`unknown server kind ${kind}`);
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_")));
  const logFd = openSync(logPath, "a");
  const child = spawn(process.execPath, [path.join(tree, spec.args[0]), ...spec.args.slice(1)], {
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
    /**
     * Polls HEAD /api/v1/alive until 200 (and, under Miniflare, until the launcher logged that the
     * D1 migrations are applied); resolves with the seconds it took since the spawn.
     */
    async waitAlive(timeoutMs) {
      for (;;) {
        if (exited) throw new Error(`${tag}: the server exited before answering HEAD /api/v1/alive`);
        try {
          const ready = !spec.readyLine || readFileSync(logPath, "utf8").includes(spec.readyLine);
          const response = await fetch(`${url}/api/v1/alive`, { method: "HEAD", signal: AbortSignal.timeout(2_000) });
          if (ready && response.status === 200) return (Date.now() - startedAt) / 1000;
        } catch {
          // not listening yet
        }
        if (Date.now() - startedAt > timeoutMs) {
          throw new Error(`${tag}: HEAD /api/v1/alive did not answer 200 within ${(timeoutMs / 1000).toFixed(0)} s`);
        }
        await sleep(200);
      }
    },
    /**
     * The workerd processes of this server (descendants of the group leader): wrangler dev runs
     * two. `proxy` listens on our port and forwards to `runtime`, which runs reduct-edge (its
     * Worker, bucket objects, and the local R2/D1 simulators). Miniflare runs one, `runtime`.
     */
    workerdPids() {
      const out = {};
      for (const pid of descendantsOf(pgid, 10)) {
        if (commOf(pid) !== "workerd") continue;
        if (!spec.proxy) {
          out.runtime ??= pid;
          continue;
        }
        let args = "";
        try {
          args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
        } catch {}
        if (args.includes(`entry=127.0.0.1:${port} `) || args.endsWith(`entry=127.0.0.1:${port}`)) out.proxy = pid;
        else out.runtime ??= pid;
      }
      return out;
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
 * Copies what `npm start` runs (src, migrations, wrangler.toml, package.json, scripts/start.mjs, …)
 * into `dest`, with node_modules linked, and returns `dest`. wrangler dev rebuilds and restarts the
 * Worker whenever a source file changes ("Your worker restarted mid-request" 503s); running from a
 * snapshot keeps the code under test fixed for the whole run even while the tree is being edited.
 */
export function snapshotTree(dest) {
  mkdirSync(path.join(dest, "scripts"), { recursive: true });
  for (const item of ["src", "migrations", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts"]) {
    const from = path.join(root, item);
    if (existsSync(from)) cpSync(from, path.join(dest, item), { recursive: true });
  }
  cpSync(path.join(root, "scripts", "start.mjs"), path.join(dest, "scripts", "start.mjs"));
  // The Miniflare launcher and its no-op Worker (soak --server miniflare|noop), and the bench
  // helpers the launcher shares with `npm run bench`.
  mkdirSync(path.join(dest, "scripts", "lib"), { recursive: true });
  for (const item of ["miniflare-server.mjs", "noop-worker.mjs"]) {
    cpSync(path.join(root, "scripts", "lib", item), path.join(dest, "scripts", "lib", item));
  }
  cpSync(path.join(root, "bench", "lib"), path.join(dest, "bench", "lib"), { recursive: true });
  // Hard links (same file system, instant): esbuild watches every input it resolved, and through a
  // symlink those are under the repository, where any change (npm ci, a new file at the root) makes
  // wrangler rebuild and restart the Worker. Falls back to a symlink across file systems.
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
