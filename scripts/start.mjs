#!/usr/bin/env node
// `npm start`: a local reduct-edge on http://127.0.0.1:8383 with persisted local DO/R2/D1 state.
// Applies the D1 migrations first (no prompt), then runs `wrangler dev`, forwarding every RS_*
// variable of the shell to the Worker (wrangler does not forward the shell environment itself).
// Without RS_API_TOKEN the local server runs without authentication, as ReductStore does;
// a deployed Worker never does that unless RS_DISABLE_AUTH=true is set explicitly.
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wrangler = path.join(root, "node_modules", ".bin", "wrangler");
const persistTo = process.env.RS_DATA_PATH || path.join(root, ".wrangler", "state");
const host = process.env.RS_HOST || "127.0.0.1";
const port = process.env.RS_PORT || "8383";
const childEnv = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" };

const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], {
  cwd: root,
  env: childEnv,
  stdio: ["ignore", "inherit", "inherit"],
});
if (migrate.status !== 0) {
  console.error("reduct-edge: applying the D1 migrations failed");
  process.exit(migrate.status ?? 1);
}

const vars = Object.entries(process.env)
  .filter(
    ([key, value]) =>
      key.startsWith("RS_") &&
      !["RS_HOST", "RS_PORT", "RS_DATA_PATH", "RS_INSPECTOR_PORT", "RS_WORKER_SCRIPT"].includes(key) &&
      value !== "",
  )
  .map(([key, value]) => `${key}:${value}`);
if (!process.env.RS_API_TOKEN && !process.env.RS_DISABLE_AUTH) {
  vars.push("RS_DISABLE_AUTH:true");
  console.log("reduct-edge: RS_API_TOKEN is not set, so this local server runs without authentication");
}

// RS_WORKER_SCRIPT (the soak's no-op baseline only): another Worker script, with the same bindings.
const script = process.env.RS_WORKER_SCRIPT ? [process.env.RS_WORKER_SCRIPT] : [];
const args = ["dev", ...script, "--ip", host, "--port", port, "--persist-to", persistTo, "--show-interactive-dev-session=false"];
// The port of wrangler's devtools inspector (default: 9229 or the next free one); the soak sets it.
if (process.env.RS_INSPECTOR_PORT) args.push("--inspector-port", process.env.RS_INSPECTOR_PORT);
for (const entry of vars) args.push("--var", entry);
const dev = spawn(wrangler, args, { cwd: root, env: childEnv, stdio: ["ignore", "inherit", "inherit"] });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
