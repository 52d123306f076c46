/**
 * The server's own records in the `$system` bucket: one JSON record per event, labelled with its
 * `status`. The bucket is created (provisioned, FIFO-limited) at the first event; clients may read
 * it with full access or the exact `$system` permission, and never write it.
 * Call it off the request path (ctx.waitUntil, an alarm): it does one RPC to the `$system` object.
 */

import type { BucketObject } from "../bucket/bucket-object";
import type { BucketSettings, Config } from "../config";
import type { Bindings } from "../env";
import { bucketObject } from "../placement";

export const SYSTEM_BUCKET = "$system";
/** Ours for lifecycle and replication events; audit records carry the call's HTTP status, as ReductStore's do. */
export type SystemEventStatus = "ok" | "warning" | "error" | number;

/** Attempts with a later timestamp when another isolate took the same microsecond. */
const TIMESTAMP_RETRIES = 3;
let lastTimestampUs = 0;

/** A unique, increasing microsecond timestamp within this isolate. */
function nextTimestampUs(): number {
  lastTimestampUs = Math.max(Date.now() * 1000, lastTimestampUs + 1);
  return lastTimestampUs;
}

/** The longest segment entrySegment returns: `lifecycle/<instance>/<policy>` stays a valid entry name. */
export const MAX_ENTRY_SEGMENT = 200;
/** Of a segment cut short: the escaped beginning kept before `_h` and the name's hash. */
const SEGMENT_PREFIX = MAX_ENTRY_SEGMENT - 2 - 28;

/** 53 bits of a string hash (cyrb53); two seeds give the 106 bits a cut-short segment carries. */
function hash53(text: string, seed: number): string {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
}

/**
 * The UTF-8 bytes of one code point. A lone surrogate gets its own three bytes (as WTF-8 does)
 * rather than U+FFFD's, so two different lone surrogates stay different.
 */
function utf8Bytes(code: number): number[] {
  if (code < 0x80) return [code];
  if (code < 0x800) return [0xc0 | (code >> 6), 0x80 | (code & 0x3f)];
  if (code < 0x10000) return [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)];
  return [0xf0 | (code >> 18), 0x80 | ((code >> 12) & 0x3f), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)];
}

/**
 * An instance, token or policy name as one valid entry-name segment (letters, digits, `-`, `_`),
 * different for different names, so two tokens never share an audit entry. Letters, digits and
 * `-` stay; `_` becomes `__`; any other character becomes `_` and two lowercase hex digits per
 * UTF-8 byte of its code point (`a.b` → `a_2e`, `a_b` → `a__b`); the empty name is `_`. After an escaping `_` comes
 * `_` or a hex digit, so the escaped form reads back one way only. A form longer than
 * MAX_ENTRY_SEGMENT keeps its beginning (whole escapes) and ends in `_h` and 28 hex digits of the
 * name's hash: `_h` never occurs in an escaped form, and two long names meet only if their
 * 106-bit hashes do. The mapping is fixed: events of a name always go to the same entry.
 */
export function entrySegment(name: string): string {
  if (name === "") return "_";
  const parts: string[] = [];
  let length = 0;
  for (const char of name) {
    let part: string;
    if (/^[A-Za-z0-9-]$/.test(char)) part = char;
    else if (char === "_") part = "__";
    else
      part = utf8Bytes(char.codePointAt(0) ?? 0)
        .map((byte) => `_${byte.toString(16).padStart(2, "0")}`)
        .join("");
    parts.push(part);
    length += part.length;
  }
  if (length <= MAX_ENTRY_SEGMENT) return parts.join("");
  let prefix = "";
  for (const part of parts) {
    if (prefix.length + part.length > SEGMENT_PREFIX) break;
    prefix += part;
  }
  return `${prefix}_h${hash53(name, 1)}${hash53(name, 2)}`;
}

function systemStub(env: Bindings): DurableObjectStub<BucketObject> {
  return bucketObject(env, SYSTEM_BUCKET);
}

/** The settings `$system` is created with. */
export function systemBucketSettings(config: Config): BucketSettings {
  return { ...config.bucketDefaults, quota_type: "FIFO", quota_size: config.systemEvents.quotaBytes };
}

/** Creates `$system` if it is missing; an existing one is left as it is. */
export async function ensureSystemBucket(env: Bindings, config: Config): Promise<void> {
  const outcome = await systemStub(env).createBucket(SYSTEM_BUCKET, systemBucketSettings(config), true);
  if (!outcome.ok && outcome.error.status !== 409) {
    throw new Error(`creating ${SYSTEM_BUCKET} failed: ${outcome.error.message}`);
  }
}

/**
 * Writes one event `{timestamp, instance, status, message, ...payload}` into `entry` of `$system`
 * (e.g. `lifecycle/<instance>/<policy>`). Does nothing when RS_SYSTEM_EVENTS_ENABLED is false.
 */
export async function recordSystemEvent(
  env: Bindings,
  config: Config,
  entry: string,
  status: SystemEventStatus,
  message: string,
  payload: Record<string, unknown> = {},
): Promise<void> {
  if (!config.systemEvents.enabled) return;
  const stub = systemStub(env);
  for (let attempt = 0; attempt <= TIMESTAMP_RETRIES; attempt++) {
    const ts = nextTimestampUs();
    const body = JSON.stringify({ timestamp: ts, instance: config.instanceName, status, message, ...payload });
    const bytes = new TextEncoder().encode(body);
    const item = {
      meta: { entry, ts, size: bytes.byteLength, contentType: "application/json", labels: { status: String(status) } },
      payload: bytes.buffer as ArrayBuffer,
    };
    const written = await stub.writeRecords([item]);
    if (!written.ok) {
      if (written.error.status !== 404) throw new Error(`writing a ${SYSTEM_BUCKET} event failed: ${written.error.message}`);
      await ensureSystemBucket(env, config);
      continue;
    }
    const outcome = written.outcomes[0];
    if (outcome?.ok) return;
    if (outcome?.error.status !== 409) {
      throw new Error(`writing a ${SYSTEM_BUCKET} event failed: ${outcome?.error.message ?? "no outcome"}`);
    }
  }
  throw new Error(`writing a ${SYSTEM_BUCKET} event failed: no free timestamp after ${TIMESTAMP_RETRIES} retries`);
}
