/**
 * Feature probes: one real request per endpoint a planned workload needs, verified by reading the
 * effect back, so a workload runs only when the server really implements it (no numbers are made
 * up for missing endpoints). Probes use their own bucket, never the measured ones.
 */
import { fieldOf, messageOf } from "../../scripts/lib/errors.ts";
import type { HttpClient, HttpResponse, RequestSpec } from "../../scripts/lib/http-client.ts";
import { send } from "../lib/http-load.ts";
import type { FeatureName, FeatureProbe, Features } from "../lib/types.ts";
import {
  AUTH,
  batchV1Write,
  batchV2Write,
  json,
  labelsV1Update,
  labelsV2Update,
  TS0,
  v1RecordCount,
  v2RecordCount,
  writeRecord,
} from "./protocol.ts";

export const PROBE_BUCKET = "bench-probe";

function describe(spec: RequestSpec, response: HttpResponse): string {
  const detail = response.headers["x-reduct-error"] ?? response.body.toString().slice(0, 120);
  return `${spec.method ?? "GET"} ${spec.path.split("?")[0]} → ${response.status}${detail ? ` ${JSON.stringify(detail)}` : ""}`;
}

async function readBack(client: HttpClient, entry: string, ts: number): Promise<HttpResponse> {
  return send(client, { path: `/api/v1/b/${PROBE_BUCKET}/${entry}?ts=${ts}`, headers: AUTH });
}

async function seed(client: HttpClient, entry: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const response = await send(client, writeRecord(PROBE_BUCKET, entry, TS0 + i, Buffer.from(`r${i}`)));
    if (response.status !== 200) throw new Error(`probe seed failed: ${response.status}`);
  }
}

const FEATURES: Record<FeatureName, (client: HttpClient) => Promise<FeatureProbe>> = {
  /** Batch write v1. */
  async batchV1(client) {
    const records = [1, 2].map((i) => ({ ts: TS0 + i, body: Buffer.from(`v1-${i}`) }));
    const spec = batchV1Write(PROBE_BUCKET, "w2v1", records);
    const response = await send(client, spec);
    if (response.status !== 200) return { ok: false, reason: describe(spec, response) };
    const back = await readBack(client, "w2v1", TS0 + 2);
    return back.status === 200 && back.body.toString() === "v1-2"
      ? { ok: true }
      : { ok: false, reason: `${describe(spec, response)}, but the record is not readable (${back.status})` };
  },
  /** Batch write v2. */
  async batchV2(client) {
    const records = [1, 2].map((i) => ({ ts: TS0 + i, body: Buffer.from(`v2-${i}`) }));
    const spec = batchV2Write(PROBE_BUCKET, "w2v2", records);
    const response = await send(client, spec);
    if (response.status !== 200) return { ok: false, reason: describe(spec, response) };
    const back = await readBack(client, "w2v2", TS0 + 2);
    return back.status === 200 && back.body.toString() === "v2-2"
      ? { ok: true }
      : { ok: false, reason: `${describe(spec, response)}, but the record is not readable (${back.status})` };
  },
  /** Entry-level query + batched read. */
  async queryV1(client) {
    await seed(client, "q1", 3);
    const create = { method: "POST", path: `/api/v1/b/${PROBE_BUCKET}/q1/q`, ...json({ query_type: "QUERY" }) };
    const created = await send(client, create);
    const id = created.status === 200 ? jsonField(created.body, "id") : undefined;
    if (typeof id !== "number") return { ok: false, reason: describe(create, created) };
    const read = { path: `/api/v1/b/${PROBE_BUCKET}/q1/batch?q=${id}`, headers: AUTH };
    const batch = await send(client, read);
    return batch.status === 200 && v1RecordCount(batch.headers) === 3
      ? { ok: true }
      : { ok: false, reason: describe(read, batch) };
  },
  /** Multi-entry query + batched read. */
  async queryV2(client) {
    await seed(client, "q2", 3);
    const create = { method: "POST", path: `/api/v1/io/${PROBE_BUCKET}/q`, ...json({ query_type: "QUERY", entries: ["q2"] }) };
    const created = await send(client, create);
    const id = created.status === 200 ? jsonField(created.body, "id") : undefined;
    if (typeof id !== "number") return { ok: false, reason: describe(create, created) };
    const read = { path: `/api/v1/io/${PROBE_BUCKET}/read`, headers: { ...AUTH, "x-reduct-query-id": String(id) } };
    const batch = await send(client, read);
    return batch.status === 200 && v2RecordCount(batch.headers) === 3
      ? { ok: true }
      : { ok: false, reason: describe(read, batch) };
  },
  /** Batched label update v1. */
  async labelsV1(client) {
    await seed(client, "l1", 2);
    const spec = labelsV1Update(PROBE_BUCKET, "l1", [TS0, TS0 + 1], { probe: "yes" });
    const response = await send(client, spec);
    if (response.status !== 200) return { ok: false, reason: describe(spec, response) };
    const back = await readBack(client, "l1", TS0 + 1);
    return back.headers["x-reduct-label-probe"] === "yes"
      ? { ok: true }
      : { ok: false, reason: `${describe(spec, response)}, but the label is not set` };
  },
  /** Batched label update v2. */
  async labelsV2(client) {
    await seed(client, "l2", 2);
    const spec = labelsV2Update(PROBE_BUCKET, "l2", [TS0, TS0 + 1], { probe: "yes" });
    const response = await send(client, spec);
    if (response.status !== 200) return { ok: false, reason: describe(spec, response) };
    const back = await readBack(client, "l2", TS0 + 1);
    return back.headers["x-reduct-label-probe"] === "yes"
      ? { ok: true }
      : { ok: false, reason: `${describe(spec, response)}, but the label is not set` };
  },
  /** Remove query (multi-entry form) with `$each_n`. */
  async removeQueryV2(client) {
    await seed(client, "rm2", 4);
    const body = { query_type: "REMOVE", entries: ["rm2"], when: { $each_n: 2 } };
    const spec = { method: "POST", path: `/api/v1/io/${PROBE_BUCKET}/q`, ...json(body) };
    const response = await send(client, spec);
    const removed = response.status === 200 ? jsonField(response.body, "removed_records") : undefined;
    return removed === 2 ? { ok: true } : { ok: false, reason: describe(spec, response) };
  },
  /** Remove query (entry-level form) with `$each_n`. */
  async removeQueryV1(client) {
    await seed(client, "rm1", 4);
    const spec = {
      method: "POST",
      path: `/api/v1/b/${PROBE_BUCKET}/rm1/q`,
      ...json({ query_type: "REMOVE", when: { $each_n: 2 } }),
    };
    const response = await send(client, spec);
    const removed = response.status === 200 ? jsonField(response.body, "removed_records") : undefined;
    return removed === 2 ? { ok: true } : { ok: false, reason: describe(spec, response) };
  },
};

/** Field `name` of a JSON answer, undefined when the body is not JSON or lacks it. */
function jsonField(buffer: Buffer, name: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(buffer.toString());
  } catch {
    return undefined;
  }
  return fieldOf(parsed, name);
}

/** Runs every probe once; a probe that throws counts as "not available" with the error. */
export async function probeFeatures(client: HttpClient): Promise<Features> {
  const create = await send(client, { method: "POST", path: `/api/v1/b/${PROBE_BUCKET}`, ...json({}) });
  if (create.status !== 200) throw new Error(`cannot create the probe bucket: HTTP ${create.status}`);
  const features: [string, FeatureProbe][] = [];
  for (const [name, probe] of Object.entries(FEATURES)) {
    try {
      features.push([name, await probe(client)]);
    } catch (error) {
      features.push([name, { ok: false, reason: messageOf(error) }]);
    }
  }
  return Object.fromEntries(features);
}
