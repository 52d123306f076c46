/**
 * A digest of stored state as a client sees it, for "nothing changed" oracles: per bucket the
 * GET /b/:bucket document (info, settings, entries) and every record of every listed entry (ts,
 * the v1 batch header value — size, content type, labels — and the sha256 of the body), listed
 * with an entry-level query read through v1 batches; plus the bucket names in /list and the
 * token names in /tokens. Pending uploads are not listed (queries return finished records only).
 *
 * Reading the digest creates query cursors in the buckets; those are not stored data.
 */
import { expect } from "vitest";
import { api } from "./http";
import { sha256 } from "./records";

export interface RecordDigest {
  ts: number;
  /** `x-reduct-time-<ts>` value of a v1 batch read: `<LEN>,<CT>[,labels…]`. */
  header: string;
  sha256: string;
}

export interface BucketDigest {
  status: number;
  document?: unknown;
  records?: Record<string, RecordDigest[]>;
}

export interface StateDigest {
  buckets: Record<string, BucketDigest>;
  list: string[];
  tokens: string[];
}

const TIME_PREFIX = "x-reduct-time-";

async function json<T>(response: Response, what: string): Promise<T> {
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${what}: ${response.status} ${response.headers.get("x-reduct-error")}`);
  return JSON.parse(text) as T;
}

/** Every finished record of one entry, ascending by ts, read with a query and v1 batches. */
export async function listEntryRecords(bucket: string, entry: string): Promise<RecordDigest[]> {
  const created = await api("POST", `/b/${bucket}/${entry}/q`, { body: JSON.stringify({ query_type: "QUERY", ttl: 30 }) });
  const { id } = await json<{ id: number }>(created, `create query on ${bucket}/${entry}`);
  const records: RecordDigest[] = [];
  for (let page = 0; page < 10_000; page++) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${id}`);
    const body = new Uint8Array(await response.arrayBuffer());
    if (response.status === 204) return records;
    if (response.status !== 200) {
      throw new Error(`read ${bucket}/${entry} q=${id}: ${response.status} ${response.headers.get("x-reduct-error")}`);
    }
    const headers = [...response.headers]
      .filter(([name]) => name.startsWith(TIME_PREFIX))
      .map(([name, value]) => ({ ts: Number(name.slice(TIME_PREFIX.length)), value }))
      .sort((a, b) => a.ts - b.ts);
    let offset = 0;
    for (const { ts, value } of headers) {
      const size = Number(value.slice(0, value.indexOf(",")));
      records.push({ ts, header: value, sha256: await sha256(body.subarray(offset, offset + size)) });
      offset += size;
    }
    expect(offset, `batch body of ${bucket}/${entry} has exactly the announced bytes`).toBe(body.byteLength);
    if (response.headers.get("x-reduct-last") === "true") return records;
  }
  throw new Error(`query on ${bucket}/${entry} did not finish`);
}

export async function bucketDigest(bucket: string): Promise<BucketDigest> {
  const response = await api("GET", `/b/${bucket}`);
  if (response.status !== 200) {
    await response.text();
    return { status: response.status };
  }
  const document = (await response.json()) as { entries: { name: string }[] };
  const records: Record<string, RecordDigest[]> = {};
  for (const { name } of document.entries) records[name] = await listEntryRecords(bucket, name);
  return { status: 200, document, records };
}

/** The digest of the given buckets plus the bucket and token registries. */
export async function stateDigest(buckets: readonly string[]): Promise<StateDigest> {
  const digest: StateDigest = { buckets: {}, list: [], tokens: [] };
  for (const bucket of buckets) digest.buckets[bucket] = await bucketDigest(bucket);
  const list = await json<{ buckets: { name: string }[] }>(await api("GET", "/list"), "list");
  // `$system` appears and grows on its own (the server's audit records): not client state.
  digest.list = list.buckets
    .map((bucket) => bucket.name)
    .filter((name) => name !== "$system")
    .sort();
  const tokens = await json<{ tokens: { name: string }[] }>(await api("GET", "/tokens"), "tokens");
  digest.tokens = tokens.tokens.map((token) => token.name).sort();
  return digest;
}

/**
 * Checks the size invariants of a bucket document: Σ entry sizes = bucket size (there are no `$meta`
 * entries in the tests using this) and record counts equal the listed records.
 */
export function expectConsistentSizes(digest: BucketDigest): void {
  const document = digest.document as {
    info: { size: number };
    entries: { name: string; size: number; record_count: number }[];
  };
  const sum = document.entries.reduce((total, entry) => total + entry.size, 0);
  expect(sum, "Σ entry sizes = bucket size").toBe(document.info.size);
  for (const entry of document.entries) {
    expect(entry.record_count, `record_count of ${entry.name}`).toBe(digest.records?.[entry.name]?.length ?? 0);
  }
}
