#!/usr/bin/env node
// `npm run bench:profile [-- --workload W2v2|W1|W4v2] [-- --seconds 8]`: a V8 CPU profile of
// reduct-edge under one bench-like load, taken through workerd's inspector (Miniflare directly, as
// `npm run bench`). Prints the functions with the most self time (the Worker and the bucket object
// share one isolate) and writes the .cpuprofile to bench/results/ for Chrome DevTools. Bounded:
// fixed duration, 127.0.0.1 only.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { fieldOf } from "../scripts/lib/errors.ts";
import type { RequestSpec } from "../scripts/lib/http-client.ts";
import { createClient, send } from "./lib/http-load.ts";
import { BENCH_DIR, serverDefinitions, startServer } from "./lib/servers.ts";
import { AUTH, batchRecords, batchV2Write, json, randomBytes, TS0, writeRecord } from "./workloads/protocol.ts";

const { values: options } = parseArgs({
  options: {
    workload: { type: "string", default: "W2v2" },
    seconds: { type: "string", default: "8" },
    connections: { type: "string", default: "8" },
  },
});
const seconds = Number(options.seconds);
const connections = Number(options.connections);
const inspectorPort = 9300 + Math.floor(Math.random() * 500);

const work = fs.mkdtempSync(path.join(os.tmpdir(), "reduct-edge-profile-"));
const base = serverDefinitions(work).reductEdge;
const definition = { ...base, worker: { ...base.worker, inspectorPort } };
const server = await startServer("reductEdge", definition, work);
const client = createClient(server.port, connections);

/** What this script reads of V8's CPU profile. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
}

/** A CDP answer as this script reads it. */
interface CdpAnswer {
  id?: number;
  result?: { profile?: CpuProfile };
}

/** One Chrome DevTools Protocol session with the isolate that runs reduct-edge. */
async function inspect() {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    id: string;
    title?: string;
    webSocketDebuggerUrl: string;
  }[];
  const target = targets.find((t) => /reduct|core:user/.test(t.title ?? t.id)) ?? targets[0];
  if (!target) throw new Error(`no inspector target on port ${inspectorPort}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  let id = 0;
  const pending = new Map<number, (answer: CdpAnswer) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(data.toString()) as CdpAnswer;
    const resolve = message.id ? pending.get(message.id) : undefined;
    if (message.id && resolve) {
      resolve(message);
      pending.delete(message.id);
    }
  });
  const call = (method: string, params = {}): Promise<CdpAnswer> =>
    new Promise((resolve) => {
      const messageId = ++id;
      pending.set(messageId, resolve);
      socket.send(JSON.stringify({ id: messageId, method, params }));
    });
  return { call, close: () => socket.close(), title: target.title };
}

const bucket = "profile";
const entry = "e";
const body = randomBytes(1024);
const created = await send(client, { method: "POST", path: `/api/v1/b/${bucket}`, headers: AUTH, body: "" });
if (created.status !== 200) throw new Error(`create bucket: HTTP ${created.status}`);

let batch = 0;
const nextRequest = {
  W1: () => writeRecord(bucket, entry, TS0 + batch++, body, body.length),
  W2v2: () => batchV2Write(bucket, entry, batchRecords(TS0, batch++, 80, body)),
};
async function readAll() {
  const q = await send(client, {
    method: "POST",
    path: `/api/v1/io/${bucket}/q`,
    ...json({ query_type: "QUERY", entries: [entry] }),
    headers: { ...AUTH, "content-type": "application/json" },
  });
  const id = fieldOf(JSON.parse(q.body.toString()), "id");
  for (;;) {
    const r = await send(client, { path: `/api/v1/io/${bucket}/read`, headers: { ...AUTH, "x-reduct-query-id": String(id) } });
    if (r.status !== 200 || r.headers["x-reduct-last"] === "true") return;
  }
}

const load = async (make: () => RequestSpec): Promise<number> => {
  const until = Date.now() + seconds * 1000;
  let requests = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < until) {
        const response = await send(client, make());
        if (response.status !== 200) throw new Error(`HTTP ${response.status} ${response.headers["x-reduct-error"]}`);
        requests++;
      }
    }),
  );
  return requests;
};

const session = await inspect();
console.log(`profiling ${options.workload} for ${seconds} s on ${connections} connections (target ${session.title})`);
if (options.workload === "W4v2") {
  await load(nextRequest.W2v2); // data to read
}
await session.call("Profiler.enable");
await session.call("Profiler.setSamplingInterval", { interval: 200 });
await session.call("Profiler.start");
let done: number | undefined;
if (options.workload === "W4v2") {
  const until = Date.now() + seconds * 1000;
  done = 0;
  while (Date.now() < until) {
    await Promise.all(Array.from({ length: connections }, () => readAll()));
    done++;
  }
} else {
  done = await load(options.workload === "W1" ? nextRequest.W1 : nextRequest.W2v2);
}
const { result } = await session.call("Profiler.stop");
session.close();
client.close();
await server.stop();

const profile = result?.profile;
if (!profile) throw new Error("Profiler.stop answered without a profile");
const file = path.join(
  BENCH_DIR,
  "results",
  `profile-${options.workload}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`,
);
fs.mkdirSync(path.dirname(file), { recursive: true });
fs.writeFileSync(file, JSON.stringify(profile));

// Self time per function from the samples.
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfSamples = new Map<number, number>();
for (const sample of profile.samples) selfSamples.set(sample, (selfSamples.get(sample) ?? 0) + 1);
const totals = new Map<string, number>();
let all = 0;
for (const [nodeId, count] of selfSamples) {
  const node = byId.get(nodeId);
  if (!node) throw new Error(`profile sample of unknown node ${nodeId}`);
  const frame = node.callFrame;
  const key = `${frame.functionName || "(anonymous)"} ${path.basename(frame.url || "")}:${frame.lineNumber + 1}`;
  totals.set(key, (totals.get(key) ?? 0) + count);
  all += count;
}
console.log(`${done} ${options.workload === "W4v2" ? "full reads" : "requests"}; ${all} samples; profile: ${file}`);
for (const [key, count] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`${((100 * count) / all).toFixed(1).padStart(5)} %  ${key}`);
}
fs.rmSync(work, { recursive: true, force: true });
