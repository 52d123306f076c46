// Black-box checks of `npm start` itself, run by scripts/smoke.ts after the client tests:
//  - it prints exactly one line (where it serves, the state directory, the auth mode, the log
//    level) and nothing else while it serves requests at the default level, offline included;
//  - the init token is on no process's command line and in no file of the state directory, and
//    works (also with characters a shell or a dotenv file would treat specially);
//  - RS_LOG_LEVEL=DEBUG logs each request as one JSON line, without the token or query string;
//  - RS_IO_OPERATION_TIMEOUT=2: a write whose body stalls gets 400 `Timeout while receiving data`
//    while the client still holds the body open (nothing in front of the Worker holds the answer
//    back), and nothing of it is stored;
//  - an invalid RS_* value stops the start with a non-zero exit naming the variable, before
//    anything is written to the state directory;
//  - RS_INIT_API_TOKEN alone turns authentication on; unknown RS_* names get one warning each;
//  - refusals are one line and exit 1: a base path with '..', a state directory that is a file,
//    under /proc, or in use by another start, a port in use (RS_PORT, RS_INSPECTOR_PORT), a host
//    that does not resolve, a bad inspector port;
//  - workerd dies with the launcher (SIGKILL of the launcher, or of the process that started it);
//    SIGINT/SIGTERM exit 0, during the start too, leaving no process behind.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stackOf } from "./lib/errors.ts";
import { commOf, descendantsOf, freePort, groupAlive, type Server, sleep, spawnServer } from "./lib/server.ts";

/** Starts `npm start` with exactly `env` as its RS_* variables (the test sets RS_HOST and RS_PORT). */
function startServer({
  env,
  dataPath,
  logPath,
  underShell = false,
}: {
  env: Record<string, string>;
  dataPath: string;
  logPath: string;
  underShell?: boolean;
}): Promise<Server> {
  return spawnServer({ tag: "npm start", env, dataPath, logPath, underShell });
}

/** Every process's command line that contains `needle`, as "pid: command line". */
function commandLinesContaining(needle: string): string[] {
  const found: string[] = [];
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

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath ?? entry.path, entry.name);
    try {
      if (readFileSync(file).includes(needle)) found.push(file);
    } catch {}
  }
  return found;
}

/**
 * Sends `head` of a request whose body is `declared` bytes long but only `sent` of them, then
 * waits; resolves with the answer's status, x-reduct-error and the ms it took, while the body is
 * still unfinished (undefined fields: no answer within `waitMs`).
 */
function stalledWrite(
  url: string,
  {
    path: urlPath,
    headers,
    declared,
    sent,
    waitMs,
  }: { path: string; headers: Record<string, string>; declared: number; sent: number; waitMs: number },
): Promise<{ status?: number; error?: string | string[]; ms?: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const request = http.request(new URL(urlPath, url), {
      method: "POST",
      headers: { ...headers, "content-length": String(declared) },
    });
    const timer = setTimeout(() => {
      request.destroy();
      resolve({});
    }, waitMs);
    request.on("response", (response) => {
      response.resume();
      response.on("end", () => {
        clearTimeout(timer);
        request.destroy();
        resolve({ status: response.statusCode, error: response.headers["x-reduct-error"], ms: Date.now() - started });
      });
    });
    request.on("error", () => {});
    request.write(Buffer.alloc(sent, 0x61));
  });
}

/** Listens on a free 127.0.0.1 port until `close()`, to have a port in use. */
async function occupiedPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await freePort();
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", () => resolve()));
  return { port, close: () => new Promise((resolve) => holder.close(() => resolve())) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

const lines = (text: string): string[] => text.split("\n").filter((line) => line.trim() !== "");

/** Runs every check; returns true when all passed, printing one line per check. */
export async function runStartCheck({ workDir }: { workDir: string }): Promise<boolean> {
  let ok = true;
  const servers: Server[] = [];
  const check = async (name: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
      console.log(`start-check: ok - ${name}`);
    } catch (error) {
      ok = false;
      console.log(`start-check: not ok - ${name}\n${String(stackOf(error) ?? error).replace(/^/gm, "    ")}`);
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
      const secretPart = randomBytes(8).toString("hex");
      const token = `t0k-${secretPart}-$HOME-\${PATH}-#-'q'-"dq"-\\n- end`;
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const server = await startServer({
        env: { RS_API_TOKEN: token, RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
      });
      servers.push(server);
      await server.waitAlive(60_000);

      assert.deepEqual(commandLinesContaining(token), [], "the token is on a command line");
      const children = descendantsOf(server.pid, 10);
      assert.ok(children.length >= 1, `expected workerd under pid ${server.pid}, found nothing`);
      assert.deepEqual(filesContaining(path.dirname(dataPath), secretPart), [], "the token is in a file");

      const me = await fetch(`${url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200, `GET /api/v1/me with the token answered ${me.status}`);
      assert.equal(((await me.json()) as { name: string }).name, "init-token");
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
      assert.deepEqual(filesContaining(path.dirname(dataPath), secretPart), [], "the token is in a file after the stop");
    });

    await check("RS_LOG_LEVEL=DEBUG: one JSON line per request, without the token or the query string", async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const server = await startServer({
        env: { RS_LOG_LEVEL: "DEBUG", RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
      });
      servers.push(server);
      await server.waitAlive(60_000);
      const secret = `s3cret-${randomBytes(6).toString("hex")}`;
      const response = await fetch(`${url}/api/v1/b/no-such-bucket/entry?ts=1&q=${secret}`, {
        headers: { Authorization: `Bearer ${secret}`, "x-request-id": "start-check-1" },
      });
      assert.equal(response.status, 404);
      const deadline = Date.now() + 10_000;
      let line: string | undefined;
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

    await check("RS_IO_OPERATION_TIMEOUT=2: a stalled write gets 400 while its body is open, stores nothing", async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const server = await startServer({
        env: { RS_IO_OPERATION_TIMEOUT: "2", RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
      });
      servers.push(server);
      await server.waitAlive(60_000);
      assert.equal((await fetch(`${url}/api/v1/b/stall`, { method: "POST" })).status, 200);
      const bucketBefore = await (await fetch(`${url}/api/v1/b/stall`)).json();
      const stalls = {
        "single write": { path: "/api/v1/b/stall/entry?ts=1000", headers: { "content-type": "text/plain" } },
        "v1 batch write": {
          path: "/api/v1/b/stall/entry/batch",
          headers: { "content-type": "application/octet-stream", "x-reduct-time-2000": "100,text/plain" },
        },
      };
      for (const [name, request] of Object.entries(stalls)) {
        const answer = await stalledWrite(url, { ...request, declared: 100, sent: 10, waitMs: 15_000 });
        assert.equal(answer.status, 400, `${name}: ${JSON.stringify(answer)}`);
        assert.equal(answer.error, "Timeout while receiving data", name);
        assert.ok(answer.ms !== undefined && answer.ms >= 1_500, `${name}: answered after ${answer.ms} ms, before the timeout`);
      }
      for (const ts of [1000, 2000]) {
        const read = await fetch(`${url}/api/v1/b/stall/entry?ts=${ts}`);
        assert.equal(read.status, 404, `record ${ts} of a stalled write is readable`);
      }
      const bucketAfter = await (await fetch(`${url}/api/v1/b/stall`)).json();
      assert.deepEqual(bucketAfter, bucketBefore, "a stalled write changed the bucket");
      assert.deepEqual(lines(server.log()).slice(1), [], `unexpected output:\n${server.log()}`);
      await server.stop();
    });

    for (const [variable, value] of [
      ["RS_IO_BATCH_MAX_RECORDS", "many"],
      ["RS_LOG_LEVEL", "LOUD"],
      ["RS_PORT", "http"],
    ] as const) {
      await check(`${variable}=${value}: exits non-zero naming the variable, writing nothing`, async () => {
        const { dataPath, logPath } = fresh();
        const port = variable === "RS_PORT" ? value : String(await freePort());
        const server = await startServer({ env: { [variable]: value, RS_HOST: "127.0.0.1", RS_PORT: port }, dataPath, logPath });
        servers.push(server);
        const result = await Promise.race([server.exit, sleep(30_000).then(() => "still running")]);
        assert.notEqual(result, "still running", `the server started despite ${variable}=${value}:\n${server.log()}`);
        assert.ok(typeof result !== "string" && result.code !== 0 && result.code !== null, `exit ${JSON.stringify(result)}`);
        const output = server.log();
        assert.match(output, new RegExp(`^reduct-edge: Invalid value of ${variable}: .+`, "m"));
        assert.equal(lines(output).length, 1, `more than the one error line:\n${output}`);
        assert.ok(!existsSync(dataPath), "the state directory was created");
      });
    }
    // One refusal each: one line naming the problem, exit 1, nothing left running.
    const fileAsDataPath = path.join(workDir, "a-file");
    writeFileSync(fileAsDataPath, "not a directory");
    const refusals: [
      string,
      () => Promise<{ env: Record<string, string>; dataPath?: string; expected: RegExp; done?: () => Promise<void> }>,
    ][] = [
      [
        "RS_API_BASE_PATH=../",
        async () => ({ env: { RS_API_BASE_PATH: "../" }, expected: /^reduct-edge: Invalid value of RS_API_BASE_PATH: .+/ }),
      ],
      [
        "RS_API_BASE_PATH=.",
        async () => ({ env: { RS_API_BASE_PATH: "." }, expected: /^reduct-edge: Invalid value of RS_API_BASE_PATH: .+/ }),
      ],
      [
        "RS_DATA_PATH is a file",
        async () => ({
          env: {},
          dataPath: fileAsDataPath,
          expected: /^reduct-edge: Invalid value of RS_DATA_PATH: .+ is not a directory$/,
        }),
      ],
      [
        "RS_DATA_PATH under a file",
        async () => ({
          env: {},
          dataPath: path.join(fileAsDataPath, "state"),
          expected: /^reduct-edge: Invalid value of RS_DATA_PATH: .+ is not a directory$/,
        }),
      ],
      [
        "RS_DATA_PATH=/proc/reduct-edge-check",
        async () => ({
          env: {},
          dataPath: "/proc/reduct-edge-check",
          expected: /^reduct-edge: Invalid value of RS_DATA_PATH: cannot create .+/,
        }),
      ],
      [
        "RS_HOST does not resolve",
        async () => ({
          env: { RS_HOST: "no-such-host.invalid" },
          expected: /^reduct-edge: Invalid value of RS_HOST: 'no-such-host.invalid' does not resolve/,
        }),
      ],
      ["RS_HOST=[::1", async () => ({ env: { RS_HOST: "[::1" }, expected: /^reduct-edge: Invalid value of RS_HOST: .+/ })],
      [
        "RS_DO_LOCATION_HINT=mars",
        async () => ({
          env: { RS_DO_LOCATION_HINT: "mars" },
          expected: /^reduct-edge: Invalid value of RS_DO_LOCATION_HINT: expected one of wnam, enam, .+$/,
        }),
      ],
      [
        "RS_INSPECTOR_PORT=99999",
        async () => ({ env: { RS_INSPECTOR_PORT: "99999" }, expected: /^reduct-edge: Invalid value of RS_INSPECTOR_PORT: .+/ }),
      ],
      [
        "RS_INSPECTOR_PORT=abc",
        async () => ({ env: { RS_INSPECTOR_PORT: "abc" }, expected: /^reduct-edge: Invalid value of RS_INSPECTOR_PORT: .+/ }),
      ],
      [
        "RS_PORT in use",
        async () => {
          const held = await occupiedPort();
          return {
            env: { RS_PORT: String(held.port) },
            expected: new RegExp(`^reduct-edge: port ${held.port} is in use \\(RS_PORT\\)$`),
            done: held.close,
          };
        },
      ],
      [
        "RS_INSPECTOR_PORT in use",
        async () => {
          const held = await occupiedPort();
          return {
            env: { RS_INSPECTOR_PORT: String(held.port) },
            expected: new RegExp(`^reduct-edge: port ${held.port} is in use \\(RS_INSPECTOR_PORT\\)$`),
            done: held.close,
          };
        },
      ],
    ];
    for (const [name, setup] of refusals) {
      await check(`${name}: refused with one line, exit 1`, async () => {
        const { env, dataPath: givenDataPath, expected, done } = await setup();
        const { dataPath, logPath } = fresh();
        const server = await startServer({
          env: { RS_HOST: "127.0.0.1", RS_PORT: String(await freePort()), ...env },
          dataPath: givenDataPath ?? dataPath,
          logPath,
        });
        servers.push(server);
        try {
          const result = await Promise.race([server.exit, sleep(30_000).then(() => "still running")]);
          assert.notEqual(result, "still running", `not refused:\n${server.log()}`);
          assert.deepEqual(result, { code: 1, signal: null }, `exit ${JSON.stringify(result)}`);
          const output = lines(server.log());
          assert.equal(output.length, 1, `not exactly one line:\n${server.log()}`);
          assert.match(output[0] ?? "", expected);
          assert.ok(!groupAlive(server.pid), "processes of the refused start are left running");
        } finally {
          await done?.();
        }
      });
    }

    await check("RS_INIT_API_TOKEN alone: auth on; unknown RS_* names get one warning each", async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const token = `init-${randomBytes(6).toString("hex")}`;
      const server = await startServer({
        env: {
          RS_INIT_API_TOKEN: token,
          RS_HOST: "127.0.0.1",
          RS_PORT: String(port),
          RS_TYPO_TOKEN: "x",
          RS_REPLICATION_A_NAME: "r",
          RS_BUCKET_A_NAME: "provisioned-b",
          RS_DO_JURISDICTION: "EU",
          RS_DO_LOCATION_HINT: "weur",
        },
        dataPath,
        logPath,
      });
      servers.push(server);
      await server.waitAlive(60_000);
      await waitUntil(() => server.log().includes("serving"), 5_000);
      assert.equal((await fetch(`${url}/api/v1/info`)).status, 401);
      assert.equal((await fetch(`${url}/api/v1/b/anyone`, { method: "POST" })).status, 401);
      const me = await fetch(`${url}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200);
      assert.deepEqual(
        (({ name, is_provisioned }) => ({ name, is_provisioned }))(
          (await me.json()) as { name: string; is_provisioned: boolean },
        ),
        { name: "init-token", is_provisioned: false },
      );
      const provisioned = await fetch(`${url}/api/v1/b/provisioned-b`, { headers: { Authorization: `Bearer ${token}` } });
      assert.equal(provisioned.status, 200);
      assert.equal(((await provisioned.json()) as { info: { is_provisioned: boolean } }).info.is_provisioned, true);
      assert.deepEqual(lines(server.log()), [
        "reduct-edge: warning: RS_TYPO_TOKEN is not a known variable, ignored",
        "reduct-edge: warning: RS_DO_JURISDICTION=EU applies on Cloudflare only; the local server ignores it",
        `reduct-edge: serving ${url} (state: ${dataPath}, auth: token (RS_INIT_API_TOKEN), log level: INFO)`,
      ]);
      await server.stop();
    });

    await check("one state directory, one start; SIGKILL of the launcher takes workerd with it; a restart serves", async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const { dataPath, logPath } = fresh();
      const env = { RS_HOST: "127.0.0.1", RS_PORT: String(port) };
      const first = await startServer({ env, dataPath, logPath });
      servers.push(first);
      await first.waitAlive(60_000);

      const secondLog = `${logPath}.second`;
      const second = await startServer({ env: { ...env, RS_PORT: String(await freePort()) }, dataPath, logPath: secondLog });
      servers.push(second);
      const result = await Promise.race([second.exit, sleep(30_000).then(() => "still running")]);
      assert.deepEqual(result, { code: 1, signal: null }, `second start: ${JSON.stringify(result)}\n${second.log()}`);
      assert.deepEqual(lines(second.log()).length, 1, second.log());
      assert.match(second.log(), /^reduct-edge: .+ \(RS_DATA_PATH\) is in use by another npm start \(pid \d+\)$/m);
      assert.equal((await fetch(`${url}/api/v1/alive`)).status, 200, "the first start stopped serving");

      const workerd = descendantsOf(first.pid, 10).filter((pid) => commOf(pid) === "workerd");
      assert.equal(workerd.length, 1, "expected one workerd");
      process.kill(first.pid, "SIGKILL"); // the launcher alone, not its group
      const [launched] = workerd;
      assert.ok(launched !== undefined);
      assert.ok(await waitUntil(() => !alive(launched), 5_000), "workerd outlived its launcher");

      const restartLog = `${logPath}.restart`;
      const restart = await startServer({ env, dataPath, logPath: restartLog });
      servers.push(restart);
      await restart.waitAlive(60_000);
      await waitUntil(() => restart.log().includes("serving"), 5_000);
      assert.equal(lines(restart.log()).length, 1, restart.log());
      process.kill(-restart.pid, "SIGINT");
      assert.deepEqual(await restart.exit, { code: 0, signal: null }, "SIGINT after serving");
      assert.ok(await waitUntil(() => !groupAlive(restart.pid), 5_000), "processes left after SIGINT");
    });

    await check("the process that started the launcher dies: the launcher and workerd stop", async () => {
      const port = await freePort();
      const { dataPath, logPath } = fresh();
      const server = await startServer({
        env: { RS_HOST: "127.0.0.1", RS_PORT: String(port) },
        dataPath,
        logPath,
        underShell: true,
      });
      servers.push(server);
      await server.waitAlive(60_000);
      const launcher = descendantsOf(server.pid, 1)[0];
      assert.ok(launcher, "no launcher under the shell");
      const workerd = descendantsOf(server.pid, 10).filter((pid) => commOf(pid) === "workerd");
      process.kill(server.pid, "SIGKILL"); // the shell only
      assert.ok(await waitUntil(() => !alive(launcher) && workerd.every((pid) => !alive(pid)), 5_000), "still running");
    });

    await check("SIGTERM during the start: exit 0, no wrangler or workerd left", async () => {
      const { dataPath, logPath } = fresh();
      const server = await startServer({ env: { RS_HOST: "127.0.0.1", RS_PORT: String(await freePort()) }, dataPath, logPath });
      servers.push(server);
      assert.ok(await waitUntil(() => descendantsOf(server.pid, 10).length > 0, 20_000), "nothing spawned");
      await sleep(500);
      process.kill(server.pid, "SIGTERM");
      assert.deepEqual(await server.exit, { code: 0, signal: null });
      assert.ok(await waitUntil(() => !groupAlive(server.pid), 5_000), "processes of the start are left running");
      assert.deepEqual(lines(server.log()), [], server.log());
    });
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
  return ok;
}

// `npx tsx scripts/start-check.ts`: the checks alone, in a temporary directory.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-start-check-"));
  const ok = await runStartCheck({ workDir });
  rmSync(workDir, { recursive: true, force: true });
  console.log(`start-check: ${ok ? "passed" : "FAILED"}`);
  process.exit(ok ? 0 : 1);
}
