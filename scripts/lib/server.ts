// The one launcher of the harness: smoke, restart and start checks, crash loop, soak, end-to-end
// bench and the console's browser tests all run `npm start` (the real scripts/start.ts, so they
// test what users run) through startServer/spawnServer here. A server runs in its own process
// group (node and workerd are stopped or killed together) on 127.0.0.1, with only the RS_*
// variables given, its output appended to a log file. Also: free ports, the process-tree readers
// the checks need, the "no unhandled error in the log" check, and the snapshot copy of the tree.
// Nothing here touches port 8383 (a developer's `npm start`) or .wrangler/state.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  symlinkSync,
} from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { tsNodeArgs } from "./node-ts.ts";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `npm start`'s default port: a developer's own server may be on it. */
const DEVELOPER_PORT = 8383;

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/**
 * A TCP port that is free on 127.0.0.1 right now: from `range` ("from-to"; default HARNESS_PORTS,
 * for a machine whose ports are shared out) when given, else one the kernel picks (its ephemeral
 * range); never 8383.
 */
export async function freePort(range = process.env.HARNESS_PORTS): Promise<number> {
  if (range) {
    const [from, to = from] = range.split("-").map(Number);
    if (!(from && to && from > 0 && to >= from && to < 65536)) throw new Error(`a port range is from-to, got '${range}'`);
    // From a random place in the range: a port just given up is not handed out again at once.
    const count = to - from + 1;
    const offset = Math.floor(Math.random() * count);
    for (let i = 0; i < count; i++) {
      const port = from + ((offset + i) % count);
      if (port !== DEVELOPER_PORT && (await portIsFree(port))) return port;
    }
    throw new Error(`no free port in ${range}`);
  }
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
    if (port !== DEVELOPER_PORT) return port;
  }
  throw new Error("no free port found");
}

/** Waits (bounded) until nothing listens on 127.0.0.1:port any more. */
export async function waitPortFree(port: number, timeoutMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const busy = await new Promise<boolean>((resolve) => {
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

// ---------------------------------------------------------------------------------------------
// Processes

/** Is any process of the group `pgid` still alive? */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Direct children of `pid` (pgrep -P). */
function childrenOf(pid: number): number[] {
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
export function descendantsOf(pid: number, depth = 10): number[] {
  if (depth === 0) return [];
  return childrenOf(pid).flatMap((child) => [child, ...descendantsOf(child, depth - 1)]);
}

/** The executable name of a process (from /proc/<pid>/comm), or "" if it is gone. */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

export interface ProcessStats {
  rssKiB: number;
  /** Peak RSS (VmHWM), resettable with `echo 5 > /proc/<pid>/clear_refs`. */
  hwmKiB: number;
  anonKiB: number;
  fileKiB: number;
  fds: number;
}

/**
 * RSS in KiB (VmRSS of /proc/<pid>/status, and its anonymous and file-backed parts RssAnon and
 * RssFile: mapped files such as SQLite databases count in RSS but are page cache, not heap), the
 * peak RSS and the number of open fds, or undefined if the process is gone.
 */
export function processStats(pid: number): ProcessStats | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1] ?? Number.NaN);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { rssKiB: kib("VmRSS"), hwmKiB: kib("VmHWM"), anonKiB: kib("RssAnon"), fileKiB: kib("RssFile"), fds };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The server log

/** What a server's log must not contain: an error nothing caught (the Worker's or the runtime's). */
const UNHANDLED = /uncaught|unhandled/i;

/** The lines of a server log that report an uncaught or unhandled error (none: the log is clean). */
export function unhandledErrorLines(log: string): string[] {
  return log.split("\n").filter((line) => UNHANDLED.test(line));
}

/** The last `count` lines of `text`, for error messages. */
const tailOf = (text: string, count = 40) => text.trimEnd().split("\n").slice(-count).join("\n");

/** `file` from byte `offset` on ("" when it does not exist). */
function readFrom(file: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return "";
  }
  try {
    const size = statSync(file).size;
    if (size <= offset) return "";
    const buffer = Buffer.alloc(size - offset);
    const read = readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The launcher

/** The servers the launcher can run: `npm start` itself, or a no-op Worker under the same `npm start`. */
export const SERVER_KINDS = {
  /** reduct-edge: the Worker under Miniflare directly, one workerd. */
  miniflare: {},
  /** The no-op Worker (scripts/lib/noop-worker.ts) under the same `npm start`: the runtime's baseline. */
  noop: { RS_WORKER_SCRIPT: "scripts/lib/noop-worker.ts" },
} as const satisfies Record<string, Record<string, string>>;
export type ServerKind = keyof typeof SERVER_KINDS;

export interface ServerOptions {
  /** Names the server in messages ("server #2", "soak server"). */
  tag: string;
  /** RS_DATA_PATH. */
  dataPath: string;
  /** The output of `npm start` is appended here; a restart appends to the same file. */
  logPath: string;
  /** RS_PORT; default: a free port (from `ports` when given). */
  port?: number;
  /** "from-to": where a free port is chosen when `port` is not given. */
  ports?: string;
  /** RS_* variables; RS_HOST (default 127.0.0.1) and RS_PORT here win over `port`. */
  env?: Record<string, string>;
  /** The checkout to run: the repository (default) or a snapshotTree copy. */
  tree?: string;
  kind?: ServerKind;
  /** Started by a shell that stays its parent, as npm does (`; exit $?` keeps sh from exec'ing). */
  underShell?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Server {
  readonly tag: string;
  readonly options: ServerOptions;
  /** Where `npm start` said it serves (its one line), or http://127.0.0.1:<port> until then. */
  readonly url: string;
  readonly port: number;
  /** The pid of the process started (node, or the shell with underShell), leader of its group. */
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: boolean;
  /** How the started process ended. */
  readonly exit: Promise<ExitStatus>;
  /** Seconds from the spawn to the first 200 of /alive (once startServer resolved). */
  aliveSeconds: number;
  /** What this start wrote to the log (not earlier starts appending to the same file). */
  log(): string;
  /** Waits until `npm start` says it serves and HEAD /api/v1/alive answers 200; the seconds since the spawn. */
  waitAlive(timeoutMs: number): Promise<number>;
  /** The workerd process running the Worker, if any. */
  workerdPid(): number | undefined;
  /** `signal` to the whole group; with SIGKILL, waits (bounded) until none of it is left. True when gone. */
  kill(signal?: "SIGKILL" | "SIGTERM"): Promise<boolean>;
  /** SIGTERM to the group, SIGKILL after `graceMs` if anything of it is still alive. True when gone. */
  stop(graceMs?: number): Promise<boolean>;
  /** Stops this server and starts it again on the same state directory and log, with `changes`. */
  restart(changes?: Partial<ServerOptions>, aliveTimeoutMs?: number): Promise<Server>;
}

/** Every server started and not seen gone: stopped by stopAllServers, SIGKILLed when this process exits. */
const running = new Set<Server>();
process.on("exit", () => {
  for (const server of running) {
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch {}
  }
});

/** Stops every server the launcher started that still runs. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

/** Only the variables given reach `npm start`: none of this process's RS_* settings. */
function serverEnv(options: ServerOptions, port: number): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_")));
  return {
    ...inherited,
    RS_HOST: "127.0.0.1",
    RS_PORT: String(port),
    ...options.env,
    ...SERVER_KINDS[options.kind ?? "miniflare"],
    RS_DATA_PATH: options.dataPath,
  };
}

/**
 * Starts `npm start` and returns at once (the start may still fail: see `exit` and `log()`).
 * Throws when `port` is 8383 or in use right now.
 */
export async function spawnServer(options: ServerOptions): Promise<Server> {
  const { tag, logPath } = options;
  if (options.port === DEVELOPER_PORT)
    throw new Error(`${tag}: port ${DEVELOPER_PORT} is a developer's npm start, not for tests`);
  if (options.port !== undefined && !(await portIsFree(options.port))) throw new Error(`${tag}: port ${options.port} is busy`);
  const port = options.port ?? (await freePort(options.ports));
  const env = serverEnv(options, port);
  const tree = options.tree ?? root;
  const command = [process.execPath, ...tsNodeArgs(path.join(tree, "scripts", "start.ts"))];
  const [file, ...args] = options.underShell
    ? ["/bin/sh", "-c", `${command.map((arg) => `'${arg.replaceAll("'", "'\\''")}'`).join(" ")}; exit $?`]
    : command;
  mkdirSync(path.dirname(logPath), { recursive: true });
  const logOffset = existsSync(logPath) ? statSync(logPath).size : 0;
  const logFd = openSync(logPath, "a");
  let child: ChildProcess;
  try {
    child = spawn(file as string, args, { cwd: tree, detached: true, stdio: ["ignore", logFd, logFd], env });
  } finally {
    closeSync(logFd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${tag}: could not start ${file}`);
  const givenPort = Number(env.RS_PORT);
  let url = `http://127.0.0.1:${Number.isInteger(givenPort) ? givenPort : port}`;
  let exited = false;
  const exit = new Promise<ExitStatus>((resolve) =>
    child.on("exit", (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  const startedAt = Date.now();
  let stopping: Promise<boolean> | undefined;

  const server: Server = {
    tag,
    options,
    get url() {
      return url;
    },
    port: Number.isInteger(givenPort) ? givenPort : port,
    pid,
    startedAt,
    get exited() {
      return exited;
    },
    exit,
    aliveSeconds: Number.NaN,
    log: () => readFrom(logPath, logOffset),
    async waitAlive(timeoutMs) {
      const failure = (what: string) =>
        new Error(`${tag}: ${what}; the last lines of its log (${logPath}):\n${tailOf(server.log()) || "(nothing)"}`);
      // The one line `npm start` prints once it listens: until then /alive could be answered by
      // whatever else took the port meanwhile.
      for (;;) {
        const serving = /^reduct-edge: serving (\S+)/m.exec(server.log());
        if (serving?.[1]) {
          url = serving[1];
          break;
        }
        if (exited) throw failure(`npm start exited (${JSON.stringify(await exit)}) before serving`);
        if (Date.now() - startedAt > timeoutMs)
          throw failure(`npm start did not serve within ${(timeoutMs / 1000).toFixed(0)} s`);
        await sleep(100);
      }
      // A generous timeout: an aborted request makes workerd log a broken pipe.
      const response = await fetch(`${url}/api/v1/alive`, { method: "HEAD", signal: AbortSignal.timeout(30_000) }).catch(
        (error) => error as Error,
      );
      if (response instanceof Error || response.status !== 200) {
        throw failure(`HEAD ${url}/api/v1/alive answered ${response instanceof Error ? response.message : response.status}`);
      }
      return (Date.now() - startedAt) / 1000;
    },
    workerdPid: () => descendantsOf(pid).find((child) => commOf(child) === "workerd"),
    async kill(signal = "SIGKILL") {
      try {
        process.kill(-pid, signal);
      } catch {}
      if (signal !== "SIGKILL") return !groupAlive(pid);
      // Killed processes may linger as zombies until their new parent reaps them: wait a little.
      const deadline = Date.now() + 5_000;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(50);
      const gone = !groupAlive(pid);
      if (gone) running.delete(server);
      return gone;
    },
    stop(graceMs = 5_000) {
      stopping ??= (async () => {
        if (groupAlive(pid)) {
          await server.kill("SIGTERM");
          const deadline = Date.now() + graceMs;
          while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
        }
        if (groupAlive(pid)) return server.kill("SIGKILL");
        running.delete(server);
        return true;
      })();
      return stopping;
    },
    async restart(changes = {}, aliveTimeoutMs = 60_000) {
      await server.stop();
      // A port the launcher chose is chosen anew; one the caller gave is kept.
      return startServer({ ...options, ...changes }, aliveTimeoutMs);
    },
  };
  running.add(server);
  exit.then(() => {
    if (!groupAlive(pid)) running.delete(server);
  });
  return server;
}

/**
 * Starts `npm start` and resolves once it serves (`aliveSeconds` set). When it does not: stops
 * what is left of it and throws with the tail of its log. A port chosen here that another
 * process took meanwhile is chosen anew (up to 3 times).
 */
export async function startServer(options: ServerOptions, aliveTimeoutMs = 60_000): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const server = await spawnServer(options);
    try {
      server.aliveSeconds = await server.waitAlive(aliveTimeoutMs);
      return server;
    } catch (error) {
      await server.stop();
      const portTaken = / is in use \(RS_PORT\)$/m.test(server.log());
      if (!portTaken || options.port !== undefined || options.env?.RS_PORT !== undefined || attempt >= 3) throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The code under test

/**
 * Copies what `npm start` runs (src, migrations, wrangler.toml, package.json, scripts/, …) into
 * `dest`, with node_modules linked, and returns `dest`. `npm start` bundles the Worker anew on
 * every start; running from a snapshot keeps the code under test the same across every restart of
 * a run even while the tree is being edited.
 */
export function snapshotTree(dest: string): string {
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

/** What `npm start` runs besides the packages: a change there changes the code under test. */
const SERVED = ["src", "migrations", "wrangler.toml", "scripts/start.ts", "scripts/lib/launcher.ts"];

/** "<commit> (+N uncommitted changes under …)" of the repository, for reports. */
export function treeVersion(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", ...SERVED], { cwd: root, encoding: "utf8" })
      .split("\n")
      .filter(Boolean).length;
    return dirty ? `${head} (+${dirty} uncommitted changes under ${SERVED.join(", ")})` : head;
  } catch {
    return "unknown";
  }
}
