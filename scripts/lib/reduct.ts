// What the reliability scripts read back from a server: every record of an entry (v1 query and
// batched reads) or of a bucket (v2 query and `/io` reads), and the descriptor size bounds used to
// check entry sizes.
import { type Labels, parseV1Read, parseV2Read, type ReadRecord } from "./batch-codec.ts";
import { errorOf, type HttpClient } from "./http-client.ts";

// ---------------------------------------------------------------------------------------------
// Listing

/** A record as a listing showed it, with the digest of its bytes. */
export interface ListedRecord {
  ts: number;
  size: number;
  contentType: string;
  labels: Labels;
  sha256: string;
}

/** The query id of a `{"id": N}` answer, as text (ids may exceed 2^53). */
export function queryIdOf(body: Buffer): string {
  const match = /"id"\s*:\s*(\d+)/.exec(body.toString("utf8"));
  if (!match) throw new Error(`no query id in '${body.toString("utf8").slice(0, 200)}'`);
  return match[1] ?? "";
}

/** Bounds of a listing: at most `maxBatches` batches, until `deadline` (ms epoch). */
export interface ListingBounds {
  maxBatches?: number;
  deadline?: number;
}

export interface EntryListing {
  missing: boolean;
  records: ListedRecord[];
  problems: string[];
}

export interface BucketListing {
  byEntry: Map<string, ReadRecord[]>;
  problems: string[];
}

/** What descriptorBounds needs of a record. */
export interface DescriptorInput {
  ts: number;
  size: number;
  labels: Labels;
  contentType: string;
  updated: boolean;
  maxBegin: number;
}

const entryPath = (bucket: string, entry: string): string =>
  `/api/v1/b/${encodeURIComponent(bucket)}/${entry.split("/").map(encodeURIComponent).join("/")}`;

export { entryPath };

/**
 * Lists every record of one entry with a v1 query and batch reads (`GET …/batch?q=`), bounded by
 * `maxBatches` and `deadline` (ms epoch). Resolves with { missing: true } when the entry is 404, or
 * { records: [{ ts, size, contentType, labels, sha256 }], problems: [text] }.
 */
export async function listEntryV1(
  client: HttpClient,
  bucket: string,
  entry: string,
  { maxBatches = 10_000, deadline = Date.now() + 120_000 }: ListingBounds = {},
): Promise<EntryListing> {
  const problems: string[] = [];
  const created = await client.request("POST", `${entryPath(bucket, entry)}/q`, {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_type: "QUERY", ttl: 120 }),
  });
  if (created.status === 404) return { missing: true, records: [], problems };
  if (created.status !== 200) throw new Error(`POST ${bucket}/${entry}/q answered ${created.status} ${errorOf(created)}`);
  const id = queryIdOf(created.body);
  const records: ListedRecord[] = [];
  let sawLast = false;
  for (let batch = 0; ; batch++) {
    if (batch >= maxBatches || Date.now() > deadline)
      throw new Error(`listing ${bucket}/${entry} did not finish within its bounds`);
    const response = await client.request("GET", `${entryPath(bucket, entry)}/batch?q=${id}`);
    if (response.status === 204) break;
    if (response.status !== 200)
      throw new Error(`GET ${bucket}/${entry}/batch?q= answered ${response.status} ${errorOf(response)}`);
    if (sawLast) problems.push(`${bucket}/${entry}: a batch after x-reduct-last: true`);
    const parsed = parseV1Read(response.headers, response.body);
    if (parsed.extraBytes !== 0) {
      problems.push(
        `${bucket}/${entry}: batch body has ${response.body.length} bytes, headers announce ${response.body.length - parsed.extraBytes}`,
      );
    }
    for (const { ts, size, contentType, labels, sha256 } of parsed.records)
      records.push({ ts, size, contentType, labels, sha256 });
    if (String(response.headers["x-reduct-last"]) === "true") sawLast = true;
  }
  for (let i = 1; i < records.length; i++) {
    const prev = records[i - 1];
    const next = records[i];
    if (prev && next && next.ts <= prev.ts) {
      problems.push(`${bucket}/${entry}: listing not strictly ordered (${prev.ts} then ${next.ts})`);
    }
  }
  return { missing: false, records, problems };
}

/**
 * Lists every record of a bucket with a v2 query and /io reads, bounded like
 * listEntryV1. Resolves with Map entry → records, plus problems.
 */
export async function listBucketV2(
  client: HttpClient,
  bucket: string,
  { maxBatches = 10_000, deadline = Date.now() + 120_000 }: ListingBounds = {},
): Promise<BucketListing> {
  const problems: string[] = [];
  const created = await client.request("POST", `/api/v1/io/${encodeURIComponent(bucket)}/q`, {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_type: "QUERY", entries: ["*"], ttl: 120 }),
  });
  if (created.status !== 200) throw new Error(`POST /io/${bucket}/q answered ${created.status} ${errorOf(created)}`);
  const id = queryIdOf(created.body);
  const byEntry = new Map<string, ReadRecord[]>();
  for (let batch = 0; ; batch++) {
    if (batch >= maxBatches || Date.now() > deadline) throw new Error(`v2 listing of ${bucket} did not finish within its bounds`);
    const response = await client.request("GET", `/api/v1/io/${encodeURIComponent(bucket)}/read`, {
      headers: { "x-reduct-query-id": id },
    });
    if (response.status === 204) break;
    if (response.status !== 200) throw new Error(`GET /io/${bucket}/read answered ${response.status} ${errorOf(response)}`);
    const parsed = parseV2Read(response.headers, response.body);
    if (parsed.extraBytes !== 0) problems.push(`/io/${bucket}/read: body and headers disagree by ${parsed.extraBytes} bytes`);
    for (const [entry, records] of parsed.records) {
      const listed = byEntry.get(entry);
      if (listed) listed.push(...records);
      else byEntry.set(entry, [...records]);
    }
    if (parsed.records.size === 0 && String(response.headers["x-reduct-last"]) !== "true") {
      problems.push(`/io/${bucket}/read: an empty 200 batch for a finite query`);
    }
    if (String(response.headers["x-reduct-last"]) === "true") break;
  }
  return { byEntry, problems };
}

// ---------------------------------------------------------------------------------------------
// Sizes (an entry's size counts each record's content and its block descriptor)

export function varintLength(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

const field = (length: number): number => 1 + varintLength(length) + length;

/**
 * The descriptor length of a record without its `begin` field (which depends on the record's block
 * position and is unknown to a client): timestamp, end (= begin + size; bounded by the caller),
 * labels, content type and, after a label update, the finished state (+2).
 */
export function descriptorBounds({ ts, size, labels, contentType, updated, maxBegin }: DescriptorInput): {
  low: number;
  high: number;
} {
  const sec = Math.floor(ts / 1e6);
  const nanos = (ts % 1e6) * 1000;
  const t = (sec ? 1 + varintLength(sec) : 0) + (nanos ? 1 + varintLength(nanos) : 0);
  let fixed = 1 + varintLength(t) + t;
  for (const [name, value] of Object.entries(labels)) {
    const n = Buffer.byteLength(name);
    const v = Buffer.byteLength(value);
    fixed += field((n ? 1 + varintLength(n) + n : 0) + (v ? 1 + varintLength(v) + v : 0));
  }
  const ct = Buffer.byteLength(contentType);
  fixed += ct ? 1 + varintLength(ct) + ct : 0;
  if (updated) fixed += 2;
  // begin = 0 (first in its block): no begin field, end = size. Otherwise begin in [1, maxBegin].
  const low = fixed + (size ? 1 + varintLength(size) : 0);
  const high = maxBegin > 0 ? fixed + 1 + varintLength(maxBegin) + 1 + varintLength(maxBegin + size) : low;
  return { low, high: Math.max(low, high) };
}
