/**
 * `npm start` (scripts/start.ts) for the console tests: its own process group, a fresh state
 * directory, a port from CONSOLE_TEST_PORTS (default 9160-9179) that is free right now. The whole
 * output is kept so the tests can check it for unhandled errors.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { tsNodeArgs } from "../../scripts/lib/node-ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  const [from, to] = (process.env.CONSOLE_TEST_PORTS ?? "9160-9179").split("-").map(Number);
  for (let port = from ?? 9160; port <= (to ?? from ?? 9179); port++) if (await portIsFree(port)) return port;
  throw new Error(`no free port in ${from}-${to} (set CONSOLE_TEST_PORTS=from-to)`);
}

export interface Server {
  url: string;
  token: string;
  /** Everything the server printed so far. */
  output: () => string;
  stop: () => Promise<void>;
}

export async function startServer(): Promise<Server> {
  const port = await freePort();
  const dataPath = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-console-"));
  const token = `console-test-${Math.random().toString(16).slice(2)}`;
  const child: ChildProcess = spawn(process.execPath, tsNodeArgs(path.join(root, "scripts", "start.ts")), {
    cwd: root,
    detached: true,
    env: { ...process.env, RS_PORT: String(port), RS_DATA_PATH: path.join(dataPath, "state"), RS_API_TOKEN: token },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dataPath, { recursive: true, force: true });
    if (process.env.CONSOLE_TEST_SERVER_LOG) writeFileSync(process.env.CONSOLE_TEST_SERVER_LOG, output);
  };

  const deadline = Date.now() + 240_000;
  while (!output.includes("reduct-edge: serving")) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not listen within 240 s:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { url: `http://127.0.0.1:${port}`, token, output: () => output, stop };
}
