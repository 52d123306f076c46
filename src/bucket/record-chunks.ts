/**
 * The packed record index: an entry's records live in *chunks*, one SQLite row each holding the
 * descriptors of up to CHUNK_MAX_RECORDS records (ReductStore's block descriptors, as JSON) and the
 * staged bytes of those still staged. A batch of 80 records is one row written, not 80 — Durable
 * Object SQLite bills every row (and index entry) written, which made a row per record cost 20×
 * the $0.50 per million records target.
 *
 * Invariant: the chunks of an entry cover disjoint, ordered time ranges [min_ts, max_ts], so the
 * chunk holding a timestamp is found with one index seek on (entry_id, min_ts). A record written
 * into the range of existing chunks (out of order) is merged into them.
 *
 * Everything here is pure: encoding, splitting and payload packing, unit-tested apart from storage.
 */
import type { Labels } from "../model/records";

/** Where a record's bytes are: in the chunk's payload, a range of its block's object, its own object. */
export const Loc = { Staged: 0, Block: 1, Object: 2 } as const;
export type Loc = (typeof Loc)[keyof typeof Loc];

export interface Descriptor {
  ts: number;
  block_id: number;
  size: number;
  content_type: string;
  labels: Labels;
  /** ReductStore's descriptor length of this record, counted in the entry's size. */
  meta_len: number;
  /** Content bytes before this record in its logical block (ReductStore's 'begin'). */
  block_begin: number;
  loc: Loc;
  /** Own object's key (Loc.Object); block objects are found through the block row. */
  key: string | null;
  /** Staged: offset in the chunk payload; Block: offset in the block object; Object: 0. */
  offset: number;
}

type Packed = [number, number, number, string, Labels, number, number, Loc, string | null, number];

export function encodeDescriptors(records: readonly Descriptor[]): string {
  return JSON.stringify(
    records.map(
      (d): Packed => [d.ts, d.block_id, d.size, d.content_type, d.labels, d.meta_len, d.block_begin, d.loc, d.key, d.offset],
    ),
  );
}

export function decodeDescriptors(json: string): Descriptor[] {
  return (JSON.parse(json) as Packed[]).map(
    ([ts, block_id, size, content_type, labels, meta_len, block_begin, loc, key, offset]) => ({
      ts,
      block_id,
      size,
      content_type,
      labels,
      meta_len,
      block_begin,
      loc,
      key,
      offset,
    }),
  );
}

/** Records per chunk row. */
export const CHUNK_MAX_RECORDS = 1024;
/** Staged bytes per chunk row (a DO SQLite row holds at most 2 MB, descriptors included). */
export const CHUNK_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Estimated descriptor JSON per chunk row. */
export const CHUNK_MAX_DESCRIPTOR_BYTES = 512 * 1024;
/**
 * New records that continue an entry (the common, in-order case) are appended to the entry's last
 * chunk while it stays this small, so single-record writes rewrite one row instead of inserting a
 * row and an index entry; bigger batches start a chunk of their own.
 */
export const APPEND_MAX_PAYLOAD_BYTES = 64 * 1024;
export const APPEND_MAX_RECORDS = 256;

/** Rough JSON length of one descriptor (an over-estimate is fine: it only cuts chunks earlier). */
export function descriptorBytes(d: Descriptor): number {
  let bytes = 80 + d.content_type.length + (d.key?.length ?? 0);
  for (const [name, value] of Object.entries(d.labels)) bytes += name.length + value.length + 6;
  return bytes;
}

/** A record with its staged bytes, while a chunk is being rebuilt. */
export interface PackedRecord {
  descriptor: Descriptor;
  /** The staged bytes (Loc.Staged only). */
  bytes: Uint8Array | null;
}

export interface ChunkImage {
  records: Descriptor[];
  payload: Uint8Array | null;
}

/** Lays out records (ascending ts) as one chunk: staged bytes concatenated, offsets set. */
export function packChunk(records: readonly PackedRecord[]): ChunkImage {
  let total = 0;
  for (const record of records) if (record.descriptor.loc === Loc.Staged) total += record.bytes?.byteLength ?? 0;
  const payload = total > 0 ? new Uint8Array(total) : null;
  let offset = 0;
  const descriptors = records.map((record) => {
    if (record.descriptor.loc !== Loc.Staged) return record.descriptor;
    const bytes = record.bytes ?? new Uint8Array(0);
    payload?.set(bytes, offset);
    const descriptor = { ...record.descriptor, offset };
    offset += bytes.byteLength;
    return descriptor;
  });
  return { records: descriptors, payload };
}

/** Cuts records (ascending ts) into runs that each fit one chunk row. */
export function splitIntoChunks(records: readonly PackedRecord[]): PackedRecord[][] {
  const chunks: PackedRecord[][] = [];
  let current: PackedRecord[] = [];
  let payload = 0;
  let descriptors = 0;
  for (const record of records) {
    const bytes = record.descriptor.loc === Loc.Staged ? (record.bytes?.byteLength ?? 0) : 0;
    const json = descriptorBytes(record.descriptor);
    const full =
      current.length >= CHUNK_MAX_RECORDS ||
      payload + bytes > CHUNK_MAX_PAYLOAD_BYTES ||
      descriptors + json > CHUNK_MAX_DESCRIPTOR_BYTES;
    if (current.length > 0 && full) {
      chunks.push(current);
      current = [];
      payload = 0;
      descriptors = 0;
    }
    current.push(record);
    payload += bytes;
    descriptors += json;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Index of the descriptor with timestamp `ts` in ascending `records`, or -1. */
export function findTs(records: readonly Descriptor[], ts: number): number {
  let lo = 0;
  let hi = records.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const at = records[mid]!.ts;
    if (at === ts) return mid;
    if (at < ts) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** Index of the first descriptor with timestamp ≥ `ts` in ascending `records`. */
export function lowerBound(records: readonly Descriptor[], ts: number): number {
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (records[mid]!.ts < ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The staged bytes of `descriptor` within its chunk's payload. */
export function stagedBytesOf(payload: Uint8Array | null, descriptor: Descriptor): Uint8Array {
  if (descriptor.size === 0 || payload === null) return new Uint8Array(0);
  return payload.subarray(descriptor.offset, descriptor.offset + descriptor.size);
}
