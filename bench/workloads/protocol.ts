/**
 * Client side of the ReductStore HTTP API as the workloads use it: request specs for single
 * records, batch protocol v1 and v2 (framed by the shared codec, scripts/lib/batch-codec.ts),
 * queries, and readers of batch response headers.
 */
import crypto from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import {
  encodeEntryName as encodeName,
  type OutgoingRecord,
  renderV1Batch,
  renderV2Batch,
} from "../../scripts/lib/batch-codec.ts";
import type { HttpResponse, RepeatedBody, RequestSpec } from "../../scripts/lib/http-client.ts";
import { API_TOKEN } from "../lib/servers.ts";

export const KIB = 1024;
export const MIB = 1024 * 1024;
/** Timestamps of every workload start here (µs); each workload writes its own entries. */
export const TS0 = 1_700_000_000_000_000;
export const OCTET = "application/octet-stream";

export const AUTH = { authorization: `Bearer ${API_TOKEN}` };

/** Random bytes (incompressible; nothing here compresses, but it keeps the data honest). */
export function randomBytes(size: number): Buffer {
  return crypto.randomBytes(size);
}

/** A bench record: a timestamp (µs) and unlabelled bytes. */
export interface BenchRecord {
  ts: number;
  body: Buffer;
}

/** A batch write: the body is always a Buffer (W2gzip compresses it). */
export interface BatchRequest extends RequestSpec {
  method: string;
  headers: Record<string, string>;
  body: Buffer;
  records: number;
  bytes: number;
}

/** A bench record as the shared batch codec takes it. */
const asOutgoing = (record: BenchRecord): OutgoingRecord => ({
  ts: record.ts,
  contentType: OCTET,
  labels: {},
  data: record.body,
});

export function json(body: unknown): { headers: Record<string, string>; body: string } {
  return { headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** POST /api/v1/b/:bucket/:entry?ts= with a Buffer or a streamed `{ size, chunk }` body (`size`: its bytes). */
export function writeRecord(
  bucket: string,
  entry: string,
  ts: number,
  body: Buffer | RepeatedBody,
  size?: number,
): RequestSpec & { headers: Record<string, string> } {
  return {
    method: "POST",
    path: `/api/v1/b/${bucket}/${entry}?ts=${ts}`,
    headers: { ...AUTH, "content-type": OCTET },
    body,
    records: 1,
    bytes: size ?? (Buffer.isBuffer(body) ? body.length : body.size),
    timeoutMs: 300_000,
  };
}

/** POST /b/:bucket/:entry/batch, records `[{ ts, body }]` in ascending ts. */
export function batchV1Write(bucket: string, entry: string, records: readonly BenchRecord[]): BatchRequest {
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
export function batchV2Write(bucket: string, entry: string, records: readonly BenchRecord[]): BatchRequest {
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
export function labelsV1Update(
  bucket: string,
  entry: string,
  timestamps: readonly number[],
  labels: Record<string, string>,
): RequestSpec {
  const ops = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const headers: Record<string, string> = { ...AUTH };
  for (const ts of timestamps) headers[`x-reduct-time-${ts}`] = `0,,${ops}`;
  return { method: "PATCH", path: `/api/v1/b/${bucket}/${entry}/batch`, headers, body: "", records: timestamps.length, bytes: 0 };
}

/** PATCH /io/:bucket/update; later records of the entry inherit the first one's ops. */
export function labelsV2Update(
  bucket: string,
  entry: string,
  timestamps: readonly number[],
  labels: Record<string, string>,
): RequestSpec {
  const ops = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const start = timestamps[0];
  if (start === undefined) throw new Error("labelsV2Update needs at least one timestamp");
  const headers: Record<string, string> = { ...AUTH, "x-reduct-entries": encodeName(entry), "x-reduct-start-ts": String(start) };
  timestamps.forEach((ts, i) => {
    headers[`x-reduct-0-${ts - start}`] = i === 0 ? `0,,${ops}` : "0";
  });
  return { method: "PATCH", path: `/api/v1/io/${bucket}/update`, headers, body: "", records: timestamps.length, bytes: 0 };
}

/** Record headers of a v1 batch response (`x-reduct-time-<ts>`). */
export function v1RecordCount(headers: IncomingHttpHeaders): number {
  return Object.keys(headers).filter((name) => name.startsWith("x-reduct-time-")).length;
}

/** Record headers of a v2 batch response (`x-reduct-<idx>-<delta>`). */
export function v2RecordCount(headers: IncomingHttpHeaders): number {
  return Object.keys(headers).filter((name) => /^x-reduct-\d+-\d+$/.test(name)).length;
}

/** Per-record errors of a batch response (v1 `x-reduct-error-<ts>`, v2 `x-reduct-error-<i>-<d>`). */
export function recordErrors(headers: IncomingHttpHeaders): [string, string | string[] | undefined][] {
  return Object.entries(headers).filter(([name]) => name.startsWith("x-reduct-error-"));
}

/** Default check for writes and updates: 200 and no per-record error header. */
export function okWithoutRecordErrors(response: HttpResponse): string | undefined {
  if (response.status !== 200) return `HTTP ${response.status} ${response.body.toString().slice(0, 200)}`;
  const errors = recordErrors(response.headers);
  const [first] = errors;
  return first ? `${errors.length} record errors, e.g. ${first[0]}: ${first[1]}` : undefined;
}

/** Records `[{ ts, body }]` of batch `batch` (of `perBatch` records) starting at `firstTs`. */
export function batchRecords(firstTs: number, batch: number, perBatch: number, body: Buffer): BenchRecord[] {
  return Array.from({ length: perBatch }, (_, k) => ({ ts: firstTs + batch * perBatch + k, body }));
}
