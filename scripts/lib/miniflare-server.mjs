#!/usr/bin/env node
// A local server run by Miniflare directly (no `wrangler dev`, no proxy workerd in front), for the
// soak's `--server miniflare|noop` (see scripts/soak.mjs). Started by startServer in
// scripts/lib/server.mjs as its own process group, like `npm start`, and configured the same way:
// RS_HOST, RS_PORT, RS_DATA_PATH (local DO/R2/D1 state persisted there), RS_INSPECTOR_PORT and every
// other RS_* variable as a Worker binding. Like `npm run bench` (bench/lib/servers.mjs): log level WARN,
// compatibility date/flags of wrangler.toml, the bindings of wrangler.toml, the D1 migrations applied
// before the server reports itself listening.
//
//   node scripts/lib/miniflare-server.mjs --worker reduct-edge   the product, bundled from the cwd
//                                                                 tree with `wrangler deploy --dry-run`
//   node scripts/lib/miniflare-server.mjs --worker noop          scripts/lib/noop-worker.mjs, the same
//                                                                 bindings, none of them used
// Loopback only; never port 8383. Stops Miniflare (and its workerd) on SIGTERM/SIGINT.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";
import { compatibility, splitSql } from "../../bench/lib/servers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({ options: { worker: { type: "string", default: "reduct-edge" } } });
if (!["reduct-edge", "noop"].includes(options.worker)) throw new Error(`--worker must be reduct-edge or noop`);

const tree = process.cwd();
const host = process.env.RS_HOST || "127.0.0.1";
const port = Number(process.env.RS_PORT);
const dataPath = process.env.RS_DATA_PATH;
if (host !== "127.0.0.1") throw new Error(`refusing to listen on ${host}: 127.0.0.1 only`);
if (!(port > 0) || port === 8383) throw new Error(`RS_PORT must be a free port other than 8383, got ${process.env.RS_PORT}`);
if (!dataPath) throw new Error("RS_DATA_PATH is required");
fs.mkdirSync(dataPath, { recursive: true });

/** `wrangler deploy --dry-run` of the tree's Worker (src/index.ts) into `outDir`; the script path. */
function bundle(outDir) {
  const wrangler = path.join(tree, "node_modules", ".bin", "wrangler");
  const result = spawnSync(wrangler, ["deploy", "--dry-run", "--outdir", outDir], {
    cwd: tree,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) throw new Error(`wrangler build failed:\n${result.stdout}\n${result.stderr}`);
  const script = path.join(outDir, "index.js");
  if (!fs.existsSync(script)) throw new Error(`wrangler did not write ${script}`);
  return script;
}

const script = options.worker === "noop" ? path.join(here, "noop-worker.mjs") : bundle(path.join(`${dataPath}.build`));
const bindings = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key, value]) =>
      key.startsWith("RS_") && !["RS_HOST", "RS_PORT", "RS_DATA_PATH", "RS_INSPECTOR_PORT"].includes(key) && value !== "",
  ),
);
if (!bindings.RS_API_TOKEN && !bindings.RS_DISABLE_AUTH) bindings.RS_DISABLE_AUTH = "true";

const D1_ID = "00000000-0000-0000-0000-000000000000";
const mf = new Miniflare({
  host,
  port,
  log: new Log(LogLevel.WARN),
  cf: false,
  defaultPersistRoot: dataPath,
  modules: true,
  scriptPath: script,
  modulesRoot: path.dirname(script),
  ...compatibility(),
  durableObjects: { BUCKETS: { className: "BucketObject", useSQLite: true } },
  r2Buckets: { RECORDS: "reduct-edge-records" },
  d1Databases: { DB: D1_ID },
  bindings,
  // RS_INSPECTOR_PORT (the soak sets it): workerd's V8 inspector on localhost, for heap figures, as
  // wrangler dev always runs one.
  ...(process.env.RS_INSPECTOR_PORT ? { inspectorPort: Number(process.env.RS_INSPECTOR_PORT) } : {}),
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  await mf.dispose().catch(() => {});
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => stop(0));

try {
  const url = await mf.ready;
  if (url.hostname !== "127.0.0.1" || Number(url.port) !== port) throw new Error(`unexpected server address ${url}`);
  const db = await mf.getD1Database("DB");
  const migrations = fs
    .readdirSync(path.join(tree, "migrations"))
    .filter((name) => name.endsWith(".sql"))
    .sort();
  for (const name of migrations) {
    const statements = splitSql(fs.readFileSync(path.join(tree, "migrations", name), "utf8"));
    if (statements.length > 0) await db.batch(statements.map((sql) => db.prepare(sql)));
  }
  console.log(`miniflare-server: ${options.worker} listening on ${url} (workerd under pid ${process.pid})`);
} catch (error) {
  console.error("miniflare-server:", error?.stack ?? error);
  await stop(1);
}
