/**
 * `npm start` for the console tests, through the harness's one launcher (scripts/lib/server.ts): a
 * fresh state directory, a port from CONSOLE_TEST_PORTS (default 9160-9179) that is free right
 * now. Its output goes to a log file (CONSOLE_TEST_SERVER_LOG to keep it somewhere) that the tests
 * check for unhandled errors.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServer as launch } from "../../scripts/lib/server.ts";

export interface Server {
  url: string;
  token: string;
  /** Everything the server printed so far. */
  output: () => string;
  stop: () => Promise<void>;
}

export async function startServer(): Promise<Server> {
  const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-console-"));
  const token = `console-test-${Math.random().toString(16).slice(2)}`;
  const server = await launch(
    {
      tag: "console test server",
      ports: process.env.CONSOLE_TEST_PORTS ?? "9160-9179",
      dataPath: path.join(workDir, "state"),
      logPath: process.env.CONSOLE_TEST_SERVER_LOG ?? path.join(workDir, "server.log"),
      env: { RS_API_TOKEN: token },
    },
    240_000,
  ).catch((error) => {
    rmSync(workDir, { recursive: true, force: true });
    throw error;
  });
  const stop = async () => {
    await server.stop(15_000);
    rmSync(workDir, { recursive: true, force: true });
  };
  return { url: server.url, token, output: () => server.log(), stop };
}
