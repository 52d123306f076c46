// `npm run crash-loop [-- --cycles N --seed S --quick]`: the crash-restart loop, black box
// against `npm start`. The run is split in: settings.ts (options and the fixed workload shape),
// context.ts (the state of one run, passed to everything), model.ts and journal.ts (what must be
// stored, from the client journal alone), workload.ts (the seeded writers), verify.ts (reading
// everything back and the dead server's state) and this file (the kill/restart cycles).
//
//  1. Starts `npm start` (scripts/start.ts) detached (its own process group) on a free 127.0.0.1 port with a
//     fresh temporary RS_DATA_PATH and a random RS_API_TOKEN. By default it runs a snapshot copy of
//     the tree taken at the start (the code under test stays the same across restarts; --live-tree
//     runs the repository itself).
//  2. Each cycle runs a seeded, mixed workload: 2 buckets × 4 entries (NONE quota) plus a FIFO
//     bucket sized to force eviction; single writes of 0 B–1 MiB skewed small, v1 batches
//     (`POST /b/:b/:e/batch`), v2 batches (`POST /io/:b/write`), label updates, deletes and
//     duplicate-timestamp writes that must be refused. Payloads are a function of
//     (seed, bucket, entry, ts); labels carry `sha256` and `n`. Every operation goes to an
//     append-only client journal: INTENT before sending, ACK after the whole answer, FAIL on a
//     socket error or timeout. A write without an ACK is indeterminate.
//  3. SIGKILLs the whole process group 1–15 s into the cycle, inspects the dead server's state
//     directory read-only (R2 objects vs index), restarts on the same state (must answer /alive
//     within 30 s) and verifies, from the journal alone: every ACKed write reads back byte-identical
//     with labels, content type and x-reduct-time; indeterminate writes are absent or complete
//     (a 425 must end with the upload lease); ACKed deletes stay deleted; no phantoms; entry and
//     bucket stats equal the listed records (exactly, except the per-record block offset inside
//     each descriptor, which a client cannot know); FIFO eviction removes only the oldest
//     records and the bucket stays within its quota (plus the descriptor bytes of records in
//     flight: the quota counts content lengths). A 503 makes a write indeterminate; other 5xx fail.
//  4. After the last cycle: a full read-back (every record by GET and a v2 /io listing), then the
//     server is stopped and its index (copied out of the state directory, read-only) is compared
//     exactly with the listing and the stats; R2 objects that neither an index row nor the garbage
//     queue knows are counted after every kill and at the end, and (unless --quick) the garbage
//     queue must drain once the sweep alarm has run. --self-test checks that the verifier notices
//     injected faults.
// Everything is bounded (cycle count, per-request timeouts, listing bounds, a run budget) and talks
// to 127.0.0.1 only. Prints a summary and exits 1 on any violation.
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { stackOf } from "../lib/errors.ts";
import { createHttpClient, errorOf, type HttpClient } from "../lib/http-client.ts";
import { Rng } from "../lib/prng.ts";
import { entryPath } from "../lib/reduct.ts";
import { type Server, sleep, snapshotTree, startServer, treeVersion, unhandledErrorLines } from "../lib/server.ts";
import { createRunContext, elapsed, log, type RunContext, violation } from "./context.ts";
import { Journal } from "./journal.ts";
import {
  ALIVE_ABORT_MS,
  ALIVE_LIMIT_MS,
  BUCKET_SETTINGS,
  FIFO_BUCKET,
  KILL_MAX_MS,
  KILL_MIN_MS,
  KILL_MODES,
  type KillMode,
  NONE_BUCKETS,
  PENDING_LIMIT_MS,
  parseSettings,
  REQUEST_TIMEOUT_MS,
  type Settings,
} from "./settings.ts";
import { getBucket, inspectDead, verify } from "./verify.ts";
import { journalRecord, makeRecord, nextTs, stableRecords, Workload } from "./workload.ts";

/** One run: its context, its files, and the server running now. */
interface Run {
  readonly ctx: RunContext;
  readonly workDir: string;
  readonly dataPath: string;
  /** Every start's output, one after the other. */
  readonly logPath: string;
  readonly scratch: string;
  /** The snapshot copy the servers run from, or undefined for the live tree. */
  readonly tree: string | undefined;
  readonly journal: Journal;
  readonly apiToken: string;
  server: Server | undefined;
  serverCount: number;
  finishing: boolean;
  readonly aliveTimes: number[];
  readonly cycleRows: Record<string, unknown>[];
}

/** The server running now (there is one from the first launch on). */
function currentServer(run: Run): Server {
  if (!run.server) throw new Error("no server is running");
  return run.server;
}

/** --kill mix: the kill mode of a cycle, by index into KILL_MODES. */
function mixedKillMode(index: number): KillMode {
  const mode = KILL_MODES[index];
  if (mode === undefined) throw new Error(`no kill mode ${index}`);
  return mode;
}

function createRun(settings: Settings): Run {
  const workDir = mkdtempSync(path.join(os.tmpdir(), "reduct-edge-crash-loop-"));
  const scratch = path.join(workDir, "scratch");
  mkdirSync(scratch, { recursive: true });
  return {
    ctx: createRunContext(settings),
    workDir,
    dataPath: path.join(workDir, "state"),
    logPath: path.join(workDir, "server.log"),
    scratch,
    tree: settings.liveTree ? undefined : snapshotTree(path.join(workDir, "tree")),
    journal: new Journal(path.join(workDir, "journal.log")),
    apiToken: randomBytes(16).toString("hex"),
    server: undefined,
    serverCount: 0,
    finishing: false,
    aliveTimes: [],
    cycleRows: [],
  };
}

/**
 * Ends the server the way `mode` says: `group` SIGKILLs the whole process group; `workerd` SIGKILLs
 * only the workerd that runs reduct-edge (the runtime dies under `npm start`'s node process, which
 * must notice and exit by itself within 5 s, else that is a violation), then SIGKILLs whatever is
 * left; `term` sends SIGTERM (a graceful stop; SIGKILL after 5 s). True when nothing of the group
 * is left.
 */
async function endServer(ctx: RunContext, server: Server, mode: KillMode): Promise<boolean> {
  if (mode === "term") return server.stop(5_000);
  if (mode === "workerd") {
    const pid = server.workerdPid();
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
      const deadline = Date.now() + 5_000;
      while (!server.exited && Date.now() < deadline) await sleep(50);
      if (!server.exited) violation(ctx, "lingering", `npm start still runs 5 s after its workerd (pid ${pid}) was killed`);
    }
  }
  return server.kill();
}

/** Starts the server, or (after a kill) starts it again on the same state directory and log. */
async function launch(run: Run): Promise<HttpClient> {
  const { ctx } = run;
  run.serverCount++;
  const tag = `server #${run.serverCount}`;
  appendFileSync(run.logPath, `\n===== crash-loop: ${tag} =====\n`);
  const server = run.server
    ? await run.server.restart({ tag }, ALIVE_ABORT_MS)
    : await startServer(
        {
          tag,
          dataPath: run.dataPath,
          logPath: run.logPath,
          env: { RS_API_TOKEN: run.apiToken, RS_INSTANCE_NAME: "crash-loop" },
          tree: run.tree,
        },
        ALIVE_ABORT_MS,
      );
  run.server = server;
  const seconds = server.aliveSeconds;
  run.aliveTimes.push(seconds);
  if (seconds * 1000 > ALIVE_LIMIT_MS)
    violation(ctx, "alive", `${tag} on port ${server.port} answered /alive after ${seconds.toFixed(1)} s (> 30 s)`);
  return createHttpClient(server.url, { token: run.apiToken, connections: 24, timeoutMs: REQUEST_TIMEOUT_MS });
}

function scanLog(run: Run): string[] {
  return unhandledErrorLines(existsSync(run.logPath) ? readFileSync(run.logPath, "utf8") : "");
}

async function finish(run: Run, code: number): Promise<void> {
  const { ctx } = run;
  if (run.finishing) return;
  run.finishing = true;
  if (run.server) await run.server.stop();
  if (code !== 0 || ctx.settings.keep) console.log(`crash-loop: journal, state and server log kept in ${run.workDir}`);
  else rmSync(run.workDir, { recursive: true, force: true });
  process.exit(code);
}

/** The kill/restart cycles, the final verification, the sweep check and the summary. */
async function runCycles(run: Run): Promise<void> {
  const { ctx } = run;
  console.log(
    `crash-loop: seed ${ctx.settings.seed} (replay: npm run crash-loop -- --seed ${ctx.settings.seed} --cycles ${ctx.settings.cycles}${ctx.settings.quick ? " --quick" : ""})`,
  );
  console.log(`crash-loop: ${ctx.settings.cycles} cycles, work dir ${run.workDir}`);
  console.log(`crash-loop: server code ${treeVersion()}${run.tree ? ", run from a snapshot copy" : ", run from the live tree"}`);
  run.journal.marker(`RUN ${JSON.stringify({ seed: ctx.settings.seed, cycles: ctx.settings.cycles })}`);
  let client = await launch(run);
  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) {
    const response = await client.request("POST", `/api/v1/b/${b}`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify(BUCKET_SETTINGS[b]),
    });
    if (response.status !== 200) throw new Error(`creating ${b} answered ${response.status} ${errorOf(response)}`);
  }

  let indeterminateSoFar = 0;
  /** How many cycles ended which way (--kill). */
  const killModes: Record<string, number> = {};
  for (let cycle = 1; cycle <= ctx.settings.cycles; cycle++) {
    ctx.cycle = cycle;
    const killAfter = new Rng(ctx.settings.seed, "kill", cycle).int(KILL_MIN_MS, KILL_MAX_MS);
    run.journal.marker(`CYCLE ${cycle} ${JSON.stringify({ killAfter })}`);
    const before = { ...run.journal.live.counts };
    const workload = new Workload(ctx, { journal: run.journal, client, cycle });
    const cycleStart = Date.now();
    const running = workload.run(cycleStart + KILL_MAX_MS + 5_000);
    await sleep(killAfter);
    workload.stopping = true;
    const mode: KillMode =
      ctx.settings.kill === "mix" ? mixedKillMode(new Rng(ctx.settings.seed, "kill-mode", cycle).int(0, 2)) : ctx.settings.kill;
    const killed = await endServer(ctx, currentServer(run), mode);
    killModes[mode] = (killModes[mode] ?? 0) + 1;
    run.journal.marker(`KILL ${cycle} ${JSON.stringify({ afterMs: Date.now() - cycleStart, mode })}`);
    if (!killed) throw new Error(`cycle ${cycle}: the server's process group survived (${mode})`);
    client.close();
    await Promise.race([running, sleep(REQUEST_TIMEOUT_MS + 5_000)]);
    for (const op of run.journal.live.ops.values()) if (!op.done) run.journal.fail(op.id, "no answer before the kill");
    indeterminateSoFar = run.journal.live.counts.indeterminateRecords;

    const dead = inspectDead(ctx, run.dataPath, run.scratch, { indeterminateSoFar, label: `after kill ${cycle}` });
    client = await launch(run);
    const verifyStarted = Date.now();
    const verified = await verify(ctx, client, run.journal, { final: false });
    const verifySeconds = (Date.now() - verifyStarted) / 1000;
    for (const item of run.journal.live.runtime.splice(0)) violation(ctx, item.kind, item.detail, item.key);
    const counts = run.journal.live.counts;
    const row = {
      cycle,
      killMs: killAfter,
      requests: workload.requests,
      acked: counts.ackedRecords - before.ackedRecords,
      indeterminate: counts.indeterminateRecords - before.indeterminateRecords,
      deletes: counts.ackedDeletes - before.ackedDeletes,
      patches: counts.ackedPatches - before.ackedPatches,
      alive: run.aliveTimes[run.aliveTimes.length - 1],
      verifyS: Number(verifySeconds.toFixed(1)),
      pending425: verified.pending.length,
      untracked: dead.checked ? dead.objects.untracked.length : "-",
      violations: ctx.violations.filter((item) => item.cycle === cycle).length,
    };
    run.cycleRows.push(row);
    log(
      ctx,
      `cycle ${cycle}/${ctx.settings.cycles}: killed (${mode}) after ${(killAfter / 1000).toFixed(1)} s, ${row.requests} requests, ${row.acked} records ACKed, ` +
        `${row.indeterminate} indeterminate, ${row.deletes} deletes, ${row.patches} label updates; /alive after ${row.alive?.toFixed(1)} s; ` +
        `verified in ${row.verifyS} s; ` +
        `${row.pending425} still 425; R2 untracked at kill: ${row.untracked}; violations so far: ${ctx.violations.length}`,
    );
  }

  if (ctx.settings.selfTest) return selfTest(run, client);

  // Final read-back: every record by GET, v2 cross-check; wait for interrupted uploads to end.
  ctx.cycle = ctx.settings.cycles + 1;
  log(ctx, "final verification: every record read back, v2 /io listing cross-check");
  let final = await verify(ctx, client, run.journal, { final: true });
  const waitUntil = Date.now() + PENDING_LIMIT_MS + 10_000;
  while (final.pending.length && Date.now() < waitUntil) {
    log(ctx, `${final.pending.length} interrupted uploads still answer 425; waiting for their leases`);
    await sleep(10_000);
    final = await verify(ctx, client, run.journal, { final: false });
  }
  for (const rec of final.pending)
    violation(ctx, "stuck-425", `${rec.b}/${rec.e}@${rec.ts} still 425 at the end of the run`, rec.key);
  for (const item of run.journal.live.runtime.splice(0)) violation(ctx, item.kind, item.detail, item.key);

  // Stop and compare the index with the listing exactly; count R2 orphans.
  await currentServer(run).stop();
  const stopped = inspectDead(ctx, run.dataPath, run.scratch, {
    indeterminateSoFar: run.journal.live.counts.indeterminateRecords,
    label: "after the run",
    listings: final.listings,
    exact: true,
  });
  let swept: ReturnType<typeof inspectDead> | undefined;
  if (ctx.settings.sweep && stopped.checked) {
    const lastDue = Math.max(0, ...stopped.garbage.map((item) => item.notBefore));
    const waitMs = Math.min(Math.max(lastDue - Date.now(), 0) + 20_000, 200_000);
    log(
      ctx,
      `sweep check: restarting and waiting ${(waitMs / 1000).toFixed(0)} s for the alarm to delete ${stopped.garbage.length} queued objects`,
    );
    client = await launch(run);
    for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) await getBucket(client, b); // wake every bucket object
    await sleep(waitMs);
    await currentServer(run).stop();
    swept = inspectDead(ctx, run.dataPath, run.scratch, { indeterminateSoFar: 0, label: "after the sweep" });
    if (swept.checked) {
      const overdue = swept.garbage.filter((item) => item.notBefore < Date.now() - 20_000);
      if (swept.objects.queued > 0 && overdue.length > 0) {
        violation(
          ctx,
          "orphans",
          `after the sweep: ${overdue.length} garbage keys are overdue, ${swept.objects.queued} objects still queued`,
        );
      }
    }
  }
  const logErrors = scanLog(run);
  if (logErrors.length)
    violation(ctx, "log", `${logErrors.length} uncaught/unhandled lines in the server log, e.g. ${logErrors[0]?.slice(0, 200)}`);

  // Summary
  const counts = run.journal.live.counts;
  console.log("\ncrash-loop: per cycle");
  console.table(run.cycleRows);
  const summary = {
    seed: ctx.settings.seed,
    cycles: ctx.settings.cycles,
    acked: counts.ackedRecords,
    indeterminate: counts.indeterminateRecords,
    "indeterminate present/absent": `${ctx.totals.indeterminatePresent}/${ctx.totals.indeterminateAbsent}`,
    lost: ctx.violations.filter((item) => item.kind === "lost" || item.kind === "fifo-order").length,
    altered: ctx.violations.filter((item) => item.kind === "altered").length,
    phantoms: ctx.violations.filter((item) => item.kind === "phantom").length,
    "acked deletes": counts.ackedDeletes,
    "acked label updates": counts.ackedPatches,
    "503 answers (indeterminate)": counts.retryLater,
    "fifo evicted": ctx.totals.evicted,
    "fifo max over quota (B)": Number.isFinite(ctx.fifoMaxOver) ? ctx.fifoMaxOver : "-",
    "reads back (GET)": ctx.totals.readbacks,
    "/alive max (s)": Math.max(...run.aliveTimes).toFixed(1),
    "R2 untracked max": stopped.checked ? ctx.maxUntracked : `not checked: ${stopped.reason}`,
    "R2 objects at end": stopped.checked
      ? `${stopped.objects.total} (${stopped.objects.referenced} referenced, ${stopped.objects.queued} queued for deletion)`
      : "-",
    "R2 after sweep": swept?.checked
      ? `${swept.objects.total} (${swept.objects.referenced} referenced, ${swept.objects.queued} queued, ${swept.objects.untracked.length} untracked)`
      : ctx.settings.sweep
        ? "not checked"
        : "not run (--quick)",
    "cycles ended by": Object.entries(killModes)
      .map(([mode, n]) => `${mode} ${n}`)
      .join(", "),
    violations: ctx.violations.length,
    "run time": elapsed(ctx),
  };
  console.log("\ncrash-loop: summary");
  console.table(Object.entries(summary).map(([what, value]) => ({ what, value })));
  if (ctx.violations.length) {
    const byKind: Record<string, number> = {};
    for (const item of ctx.violations) byKind[item.kind] = (byKind[item.kind] ?? 0) + 1;
    console.log("crash-loop: violations by kind", byKind);
    const model = run.journal.replay();
    for (const item of ctx.violations.slice(0, 10)) {
      console.log(`\n- ${item.kind} (cycle ${item.cycle}): ${item.detail}`);
      const rec = item.key ? model.records.get(item.key) : undefined;
      if (rec)
        for (const line of run.journal.linesOf(rec.history))
          console.log(`    ${line.length > 400 ? `${line.slice(0, 400)}…` : line}`);
    }
  }
  console.log(`\ncrash-loop: ${ctx.violations.length ? "FAILED" : "passed"} (seed ${ctx.settings.seed}) in ${elapsed(ctx)}`);
  await finish(run, ctx.violations.length ? 1 : 0);
}

/** Checks that the verifier notices faults: injects four and expects exactly those four reports. */
async function selfTest(run: Run, client: HttpClient): Promise<void> {
  const { ctx } = run;
  ctx.cycle = 2;
  const before = ctx.violations.length;
  const rng = new Rng(ctx.settings.seed, "self-test");
  const stable = (e: string) => stableRecords(run.journal.live, "cl-a", e).filter((rec) => rec.labelOptions.length === 1);
  // 1. phantom: a record the journal never heard of.
  const phantom = makeRecord(ctx, "cl-a", "e0", nextTs(ctx, "cl-a", "e0", rng), "batch", rng, 2);
  const put = await client.request("POST", `${entryPath("cl-a", "e0")}?ts=${phantom.ts}`, { body: phantom.data });
  // 2. lost: a write the journal says was ACKed but that was never sent.
  const ghost = makeRecord(ctx, "cl-a", "e1", nextTs(ctx, "cl-a", "e1", rng), "batch", rng, 2);
  const ghostId = run.journal.intent("write", { ...journalRecord(ghost), cycle: 2, at: Date.now() });
  run.journal.ack(ghostId, 200, {});
  // 3. altered: a stored record whose labels change behind the journal's back.
  const victim = rng.pick(stable("grp/e2"));
  if (!victim) throw new Error("self-test setup failed: no stable record in cl-a/grp/e2");
  const patched = await client.request("PATCH", `${entryPath("cl-a", "grp/e2")}?ts=${victim.ts}`, {
    headers: { "x-reduct-label-n": "tampered" },
    body: "",
  });
  // 4. resurrected: a delete the journal says was ACKed but that was never sent.
  const survivor = rng.pick(stable("grp/e3"));
  if (!survivor) throw new Error("self-test setup failed: no stable record in cl-a/grp/e3");
  const deleteId = run.journal.intent("delete", { b: "cl-a", e: "grp/e3", ts: survivor.ts, cycle: 2, at: Date.now() });
  run.journal.ack(deleteId, 200, {});
  if (put.status !== 200 || patched.status !== 200) throw new Error(`self-test setup failed: ${put.status} ${patched.status}`);

  await verify(ctx, client, run.journal, { final: false });
  const found = ctx.violations.slice(before);
  const expected = [
    ["phantom", `cl-a/e0@${phantom.ts}`],
    ["lost", `cl-a/e1@${ghost.ts}`],
    ["altered", `cl-a/grp/e2@${victim.ts}`],
    ["resurrected", `cl-a/grp/e3@${survivor.ts}`],
  ] as const;
  const missed = expected.filter(([kind, where]) => !found.some((item) => item.kind === kind && item.detail.includes(where)));
  const extra = found.filter((item) => !expected.some(([kind, where]) => item.kind === kind && item.detail.includes(where)));
  for (const [kind, where] of missed) console.log(`crash-loop: self-test MISSED ${kind} of ${where}`);
  for (const item of extra) console.log(`crash-loop: self-test unexpected report ${item.kind}: ${item.detail}`);
  const ok = missed.length === 0 && extra.length === 0 && before === 0;
  console.log(
    `crash-loop: self-test ${ok ? "passed: the verifier reported exactly the 4 injected faults" : "FAILED"} (seed ${ctx.settings.seed})`,
  );
  await finish(run, ok ? 0 : 1);
}

async function main(): Promise<void> {
  const run = createRun(parseSettings(process.argv.slice(2)));
  const { ctx } = run;
  for (const signal of ["SIGINT", "SIGTERM"]) {
    process.on(signal, () => {
      console.error(`crash-loop: ${signal} received, stopping the server`);
      finish(run, 130);
    });
  }
  const watchdog = setTimeout(() => {
    console.error(`crash-loop: the run exceeded its budget of ${ctx.settings.runBudgetMs / 1000} s`);
    finish(run, 1);
  }, ctx.settings.runBudgetMs);
  watchdog.unref();
  try {
    await runCycles(run);
  } catch (error) {
    console.error("crash-loop:", stackOf(error) ?? error);
    console.error(`crash-loop: aborted (seed ${ctx.settings.seed})`);
    await finish(run, 1);
  }
}

await main();
