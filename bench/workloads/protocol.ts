/**
 * Client side of the ReductStore HTTP API as the workloads use it: request specs for single
 * records, batch protocol v1 and v2 (framed by the shared codec, scripts/lib/batch-codec.ts),
 * queries, and readers of batch response headers.
 */
import crypto from "node:crypto";
import {
  encodeEntryName as encodeName,
  type OutgoingRecord,
  renderV1Batch,
  renderV2Batch,
} from "../../scripts/lib/batch-codec.ts";
import { API_TOKEN } from "../lib/servers.ts";

export const KIB = 1024;
export const MIB = 1024 * 1024;
/** Timestamps of every workload start here (µs); each workload writes its own entries. */
export const TS0 = 1_700_000_000_000_000;
export const OCTET = "application/octet-stream";

export const AUTH = { authorization: `Bearer ${API_TOKEN}` };

/** Random bytes (incompressible; nothing here compresses, but it keeps the data honest). */
export function randomBytes(size) {
  return crypto.randomBytes(size);
}

/** A bench record (`{ ts, body }`, unlabelled bytes) as the shared batch codec takes it. */
const asOutgoing = (record: { ts: number; body: Buffer }): OutgoingRecord => ({
  ts: record.ts,
  contentType: OCTET,
  labels: {},
  data: record.body,
});

export function json(body) {
  return { headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** POST /api/v1/b/:bucket/:entry?ts= with a Buffer or a streamed `{ size, chunk }` body. */
export function writeRecord(bucket: string, entry: string, ts: number, body, size?: number) {
  return {
    method: "POST",
    path: `/api/v1/b/${bucket}/${entry}?ts=${ts}`,
    headers: { ...AUTH, "content-type": OCTET },
    body,
    records: 1,
    bytes: size ?? body.length,
    timeoutMs: 300_000,
  };
}

/** POST /b/:bucket/:entry/batch, records `[{ ts, body }]` in ascending ts. */
export function batchV1Write(bucket, entry, records) {
  const { headers, body } = renderV1Batch(records.map(asOutgoing));
  return {
    method: "POST",
    path: `/api/v1/b/${bucket}/${entry}/batch`,
    headers: { ...AUTH, ...headers },
    body,
    records: records.length,
    bytes: body.length,
  };
}

/** POST /io/:bucket/write for one entry, records `[{ ts, body }]` in ascending ts. */
export function batchV2Write(bucket, entry, records) {
  const { headers, body } = renderV2Batch(records.map((record) => ({ ...asOutgoing(record), entry })));
  return {
    method: "POST",
    path: `/api/v1/io/${bucket}/write`,
    headers: { ...AUTH, ...headers },
    body,
    records: records.length,
    bytes: body.length,
  };
}

/** PATCH /b/:bucket/:entry/batch setting `labels` on every ts. */
export function labelsV1Update(bucket, entry, timestamps, labels) {
  const ops = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const headers = { ...AUTH };
  for (const ts of timestamps) headers[`x-reduct-time-${ts}`] = `0,,${ops}`;
  return { method: "PATCH", path: `/api/v1/b/${bucket}/${entry}/batch`, headers, body: "", records: timestamps.length, bytes: 0 };
}

/** PATCH /io/:bucket/update; later records of the entry inherit the first one's ops. */
export function labelsV2Update(bucket, entry, timestamps, labels) {
  const ops = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const start = timestamps[0];
  const headers = { ...AUTH, "x-reduct-entries": encodeName(entry), "x-reduct-start-ts": String(start) };
  timestamps.forEach((ts, i) => {
    headers[`x-reduct-0-${ts - start}`] = i === 0 ? `0,,${ops}` : "0";
  });
  return { method: "PATCH", path: `/api/v1/io/${bucket}/update`, headers, body: "", records: timestamps.length, bytes: 0 };
}

/** Record headers of a v1 batch response (`x-reduct-time-<ts>`). */
export function v1RecordCount(headers) {
  return Object.keys(headers).filter((name) => name.startsWith("x-reduct-time-")).length;
}

/** Record headers of a v2 batch response (`x-reduct-<idx>-<delta>`). */
export function v2RecordCount(headers) {
  return Object.keys(headers).filter((name) => /^x-reduct-\d+-\d+$/.test(name)).length;
}

/** Per-record errors of a batch response (v1 `x-reduct-error-<ts>`, v2 `x-reduct-error-<i>-<d>`). */
export function recordErrors(headers) {
  return Object.entries(headers).filter(([name]) => name.startsWith("x-reduct-error-"));
}

/** Default check for writes and updates: 200 and no per-record error header. */
export function okWithoutRecordErrors(response) {
  if (response.status !== 200) return `HTTP ${response.status} ${response.body.toString().slice(0, 200)}`;
  const errors = recordErrors(response.headers);
  return errors.length > 0 ? `${errors.length} record errors, e.g. ${errors[0][0]}: ${errors[0][1]}` : undefined;
}

/** Records `[{ ts, body }]` of batch `batch` (of `perBatch` records) starting at `firstTs`. */
export function batchRecords(firstTs, batch, perBatch, body) {
  return Array.from({ length: perBatch }, (_, k) => ({ ts: firstTs + batch * perBatch + k, body }));
}
