/**
 * Helpers for record tests: create buckets, write and read records through the Worker.
 */
import { api } from "./http";

export async function createBucket(name: string, settings?: Record<string, unknown>): Promise<void> {
  const response = await api("POST", `/b/${name}`, { body: settings ? JSON.stringify(settings) : null });
  await response.text();
  if (response.status !== 200) throw new Error(`create ${name}: ${response.status} ${response.headers.get("x-reduct-error")}`);
}

export interface WriteOptions {
  contentType?: string;
  labels?: Record<string, string>;
  headers?: Record<string, string>;
}

export async function writeRecord(
  bucket: string,
  entry: string,
  ts: number | string,
  body: string | Uint8Array,
  options: WriteOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.contentType) headers["content-type"] = options.contentType;
  for (const [name, value] of Object.entries(options.labels ?? {})) headers[`x-reduct-label-${name}`] = value;
  const response = await api("POST", `/b/${bucket}/${entry}?ts=${ts}`, { headers, body });
  await response.arrayBuffer();
  return response;
}

/** Writes and insists on 200. */
export async function putRecord(
  bucket: string,
  entry: string,
  ts: number,
  body: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  const response = await writeRecord(bucket, entry, ts, body, options);
  if (response.status !== 200) {
    throw new Error(`write ${bucket}/${entry}@${ts}: ${response.status} ${response.headers.get("x-reduct-error")}`);
  }
}

export async function bucketInfo(bucket: string): Promise<{
  info: Record<string, unknown>;
  settings: Record<string, unknown>;
  entries: Record<string, unknown>[];
}> {
  const response = await api("GET", `/b/${bucket}`);
  return response.json();
}

/** Deterministic pseudo-random bytes. */
export function bytesOf(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

export async function sha256(bytes: ArrayBuffer | Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
