// Black-box checks of `npm start` itself, run by scripts/smoke.mjs after the client tests:
//  - it prints exactly one line (where it serves, the state directory, the auth mode, the log
//    level) and nothing else while it serves requests at the default level, offline included;
//  - the init token is on no process's command line, reaches wrangler in a mode-600 file, and
//    works (also with characters a shell or a dotenv file would treat specially);
//  - RS_LOG_LEVEL=DEBUG logs each request as one JSON line, without the token or query string;
//  - an invalid RS_* value stops the start with a non-zero exit naming the variable, before
//    anything is written to the state directory.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { descendantsOf, freePort, groupAlive, root, sleep } from "./lib/server.mjs";

/** Starts `node scripts/start.mjs` in its own process group with exactly `env` as RS_* variables. */
function startServer({ env, dataPath, logPath }) {
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("RS_")));
  const logFd = openSync(logPath, "a");
  const child = spawn(process.execPath, [path.join(root, "scripts", "start.mjs")], {
    cwd: root,
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: { ...baseEnv, ...env, RS_DATA_PATH: dataPath },
  });
  closeSync(logFd);
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    pid: child.pid,
    exit,
    log: () => (existsSync(logPath) ? readFileSync(logPath, "utf8") : ""),
    async stop() {
      if (!groupAlive(child.pid)) return;
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      const deadline = Date.now() + 5_000;
      while (groupAlive(child.pid) && Date.now() < deadline) await sleep(100);
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
      while (groupAlive(child.pid) && Date.now() < deadline + 3_000) await sleep(50);
    },
  };
}

async function waitAlive(url, server, timeoutMs) {
  const started = Date.now();
  let exited = false;
  server.exit.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error(`the server exited before answering /alive; its output:\n${server.log()}`);
    try {
      // A generous timeout: an aborted request makes workerd log a broken pipe, which this check
      // would rightly count as output.
      const response = await fetch(`${url}/api/v1/alive`, { signal: AbortSignal.timeout(30_000) });
      if (response.status === 200) return;
    } catch {}
    if (Date.now() - started > timeoutMs) throw new Error(`no /alive within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

/** Every process's command line that contains `needle`, as "pid: command line". */
function commandLinesContaining(needle) {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes(needle)) found.push(`${name}: ${cmdline.split("\0").join(" ").slice(0, 300)}`);
  }
  return found;
}

const lines = (text) => text.split("\n").filter((line) => line.trim() !== "");

/** Runs every check; returns true when all passed, printing one line per check. */
export async function runStartCheck({ workDir }) {
  let ok = true;
  const servers = [];
  const check = async (name, fn) => {
    try {
      await fn();
      console.log(`start-check: ok - ${name}`);
    } catch (error) {
      ok = false;
      console.log(`start-check: not ok - ${name}\n${String(error?.stack ?? error).replace(/^/gm, "    ")}`);
    }
  };
  let counter = 0;
  const fresh = () => {
    counter += 1;
    return { dataPath: path.join(workDir, `start-${counter}`, "state"), logPath: path.join(workDir, `start-${counter}.log`) };
  };

  try {
    await check("prints one line; the token is on no command line and works", async () => {
      // A token with characters a shell, a dotenv file or its variable expansion would alter.
      const token = `t0k-${randomBytes(8).toString("hex")}-$HOME-\${PATH}-#-'q'-"dq"-\\n- end`;
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const server = startServer({
        env: { RS_API_TOKEN: token, RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
      });
      servers.push(server);
      await waitAlive(url, server, 60_000);

      assert.deepEqual(commandLinesContaining(token), [], "the token is on a command line");
      const children = descendantsOf(server.pid, 10);
      assert.ok(children.length >= 2, `expected wrangler and workerd under pid ${server.pid}, found ${children.length}`);
      // The variables reach wrangler through a file only this user can read.
      const varsFile = path.join(dataPath, "worker.env");
      assert.equal((statSync(varsFile).mode & 0o777).toString(8), "600");

      const me = await fetch(`${url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200, `GET /api/v1/me with the token answered ${me.status}`);
      assert.equal((await me.json()).name, "init-token");
      const anonymous = await fetch(`${url}/api/v1/info`);
      assert.equal(anonymous.status, 401);
      const wrong = await fetch(`${url}/api/v1/info`, { headers: { Authorization: "Bearer t0k" } });
      assert.equal(wrong.status, 401);
      await sleep(500); // anything printed about these requests would arrive by now

      const expected = `reduct-edge: serving ${url} (state: ${dataPath}, auth: token (RS_API_TOKEN), log level: INFO)`;
      const output = server.log();
      for (const noise of ["update available", "ENOTFOUND", "fallback value", "wrangler 4.", "Request.cf", "Using secrets"]) {
        assert.ok(!output.includes(noise), `the output contains "${noise}":\n${output}`);
      }
      assert.ok(!output.includes(token), "the output contains the token");
      assert.deepEqual(lines(output), [expected], `the output is not exactly the one line:\n${output}`);
      await server.stop();
      assert.ok(!existsSync(path.join(dataPath, "worker.env")), "the env file with the token was left behind");
    });

    await check("RS_LOG_LEVEL=DEBUG: one JSON line per request, without the token or the query string", async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const server = startServer({
        env: { RS_LOG_LEVEL: "DEBUG", RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
      });
      servers.push(server);
      await waitAlive(url, server, 60_000);
      const secret = `s3cret-${randomBytes(6).toString("hex")}`;
      const response = await fetch(`${url}/api/v1/b/no-such-bucket/entry?ts=1&q=${secret}`, {
        headers: { Authorization: `Bearer ${secret}`, "x-request-id": "start-check-1" },
      });
      assert.equal(response.status, 404);
      const deadline = Date.now() + 10_000;
      let line;
      while (!line && Date.now() < deadline) {
        line = lines(server.log()).find((text) => text.includes('"request_id":"start-check-1"'));
        if (!line) await sleep(200);
      }
      assert.ok(line, `no request line in the output:\n${server.log()}`);
      const output = server.log();
      assert.equal(
        lines(output)[0],
        `reduct-edge: serving ${url} (state: ${dataPath}, auth: off (RS_API_TOKEN not set), log level: DEBUG)`,
      );
      assert.ok(!output.includes(secret), "the output contains the token or the query string");
      const json = JSON.parse(line.slice(line.indexOf("{")));
      assert.deepEqual(
        { ...json, duration_ms: typeof json.duration_ms },
        {
          level: "DEBUG",
          msg: "request",
          method: "GET",
          path: "/api/v1/b/no-such-bucket/entry",
          status: 404,
          duration_ms: "number",
          bucket: "no-such-bucket",
          request_id: "start-check-1",
          error: "Bucket 'no-such-bucket' is not found",
        },
      );
      await server.stop();
    });

    for (const [variable, value] of [
      ["RS_IO_BATCH_MAX_RECORDS", "many"],
      ["RS_LOG_LEVEL", "LOUD"],
      ["RS_PORT", "http"],
    ]) {
      await check(`${variable}=${value}: exits non-zero naming the variable, writing nothing`, async () => {
        const { dataPath, logPath } = fresh();
        const port = variable === "RS_PORT" ? value : String(await freePort());
        const server = startServer({ env: { [variable]: value, RS_HOST: "127.0.0.1", RS_PORT: port }, dataPath, logPath });
        servers.push(server);
        const result = await Promise.race([server.exit, sleep(30_000).then(() => "still running")]);
        assert.notEqual(result, "still running", `the server started despite ${variable}=${value}:\n${server.log()}`);
        assert.ok(result.code !== 0 && result.code !== null, `exit ${JSON.stringify(result)}`);
        const output = server.log();
        assert.match(output, new RegExp(`^reduct-edge: Invalid value of ${variable}: .+`, "m"));
        assert.equal(lines(output).length, 1, `more than the one error line:\n${output}`);
        assert.ok(!existsSync(dataPath), "the state directory was created");
      });
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
  return ok;
}

// `node scripts/start-check.mjs`: the checks alone, in a temporary directory.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-start-check-"));
  const ok = await runStartCheck({ workDir });
  rmSync(workDir, { recursive: true, force: true });
  console.log(`start-check: ${ok ? "passed" : "FAILED"}`);
  process.exit(ok ? 0 : 1);
}
