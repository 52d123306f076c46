/**
 * The console's client of the public HTTP API (same origin, under the base path the console is
 * served from). Errors carry the server's status and its `x-reduct-error` text.
 */
import { parseBatchHeaders, type RecordMeta } from "./batch-headers";

/** `{base}` of the server: the console lives at `{base}ui/`. */
export function basePath(pathname: string): string {
  const at = pathname.lastIndexOf("/ui/");
  return at >= 0 ? pathname.slice(0, at + 1) : "/";
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface BucketInfo {
  name: string;
  entry_count: number;
  size: number;
  oldest_record: number;
  latest_record: number;
  is_provisioned: boolean;
  status: string;
}

export interface BucketSettings {
  max_block_size: number;
  max_block_records: number;
  quota_type: "NONE" | "FIFO" | "HARD";
  quota_size: number;
}

export interface EntryInfo {
  name: string;
  size: number;
  record_count: number;
  block_count: number;
  oldest_record: number;
  latest_record: number;
  status: string;
}

export interface ServerInfo {
  version: string;
  instance_name?: string;
  bucket_count: number;
  usage: number;
  uptime: number;
  oldest_record: number;
  latest_record: number;
}

export interface Permissions {
  full_access: boolean;
  read: string[];
  write: string[];
}

export interface Token {
  name: string;
  created_at: string;
  permissions: Permissions | null;
  is_provisioned: boolean;
  expires_at: string | null;
  ttl: number | null;
  last_access: string | null;
  ip_allowlist: string[];
  is_expired: boolean;
}

export interface RecordsPage {
  records: RecordMeta[];
  /** True when more records follow the last one of this page. */
  more: boolean;
}

/** Query body of a records page or a removal (start inclusive, stop exclusive, µs). */
export interface RecordFilter {
  start?: number;
  stop?: number;
  when?: Record<string, unknown>;
}

const seg = (name: string) => encodeURIComponent(name);
/** Entry names may contain `/`: each segment is encoded, the slashes stay. */
const entryPath = (entry: string) => entry.split("/").map(seg).join("/");

export class Api {
  constructor(
    readonly base: string,
    private token: string | null,
    /** Told when the server refuses this client (token deleted or expired, e.g. in another tab). */
    private onUnauthorized?: () => void,
  ) {}

  private url(path: string): string {
    return `${this.base}api/v1${path}`;
  }

  async request(method: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) {
    const headers = new Headers(init.headers);
    if (this.token) headers.set("authorization", `Bearer ${this.token}`);
    let body: BodyInit | undefined;
    if (init.body !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(init.body);
    }
    const response = await fetch(this.url(path), { method, headers, body });
    if (response.status >= 400) {
      const message = response.headers.get("x-reduct-error") ?? (response.statusText || `HTTP ${response.status}`);
      await response.body?.cancel();
      if (response.status === 401) this.onUnauthorized?.();
      throw new ApiError(response.status, message);
    }
    return response;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, { body });
    return (await response.json()) as T;
  }

  private async send(method: string, path: string, body?: unknown): Promise<void> {
    const response = await this.request(method, path, { body });
    await response.body?.cancel();
  }

  info = () => this.json<ServerInfo>("GET", "/info");

  /** The console's own endpoint: does the API want a token? null when the server cannot say. */
  async tokenRequired(): Promise<boolean | null> {
    try {
      const response = await fetch(`${this.base}ui/auth.json`, { cache: "no-store" });
      if (!response.ok) {
        await response.body?.cancel();
        return null;
      }
      const answer = (await response.json()) as { token_required?: unknown };
      return typeof answer.token_required === "boolean" ? answer.token_required : null;
    } catch {
      return null;
    }
  }
  me = () => this.json<Token>("GET", "/me");
  listBuckets = async () => (await this.json<{ buckets: BucketInfo[] }>("GET", "/list")).buckets;
  bucket = (name: string) =>
    this.json<{ info: BucketInfo; settings: BucketSettings; entries: EntryInfo[] }>("GET", `/b/${seg(name)}`);
  createBucket = (name: string, settings: Partial<BucketSettings>) => this.send("POST", `/b/${seg(name)}`, settings);
  updateBucket = (name: string, settings: Partial<BucketSettings>) => this.send("PUT", `/b/${seg(name)}`, settings);
  renameBucket = (name: string, newName: string) => this.send("PUT", `/b/${seg(name)}/rename`, { new_name: newName });
  removeBucket = (name: string) => this.send("DELETE", `/b/${seg(name)}`);
  removeEntry = (bucket: string, entry: string) => this.send("DELETE", `/b/${seg(bucket)}/${entryPath(entry)}`);

  /**
   * One page of record metadata: a query from `filter.start` with `$limit` one past the page size
   * (to learn whether more follow), read as metadata-only batches. The server never walks more than
   * the page, whatever the entry's size.
   */
  async recordsPage(bucket: string, entry: string, filter: RecordFilter, pageSize: number): Promise<RecordsPage> {
    const when = { ...(filter.when ?? {}), $limit: pageSize + 1 };
    const records: RecordMeta[] = [];
    await this.readQuery(bucket, entry, { ...filter, when }, (batch) => {
      records.push(...batch);
      return records.length <= pageSize;
    });
    return { records: records.slice(0, pageSize), more: records.length > pageSize };
  }

  /** How many records a removal with this filter would remove, counting at most `cap`. */
  async countRecords(bucket: string, entry: string, filter: RecordFilter, cap: number): Promise<number> {
    const when = { ...(filter.when ?? {}), $limit: cap };
    let count = 0;
    await this.readQuery(bucket, entry, { ...filter, when }, (batch) => {
      count += batch.length;
      return count < cap;
    });
    return Math.min(count, cap);
  }

  /** Runs a metadata-only query and hands each batch to `onBatch` until it returns false or the query ends. */
  private async readQuery(
    bucket: string,
    entry: string,
    filter: RecordFilter,
    onBatch: (records: RecordMeta[]) => boolean,
  ): Promise<void> {
    const base = `/b/${seg(bucket)}/${entryPath(entry)}`;
    const { id } = await this.json<{ id: number }>("POST", `${base}/q`, {
      query_type: "QUERY",
      start: filter.start,
      stop: filter.stop,
      when: filter.when,
      only_metadata: true,
      ttl: 30,
    });
    for (;;) {
      const response = await this.request("HEAD", `${base}/batch?q=${id}`);
      if (response.status === 204) return;
      const more = onBatch(parseBatchHeaders(response.headers));
      if (!more || response.headers.get("x-reduct-last") === "true") return;
    }
  }

  async removeRecords(bucket: string, entry: string, filter: RecordFilter): Promise<number> {
    const body = { query_type: "REMOVE", start: filter.start, stop: filter.stop, when: filter.when };
    const result = await this.json<{ removed_records: number }>("POST", `/b/${seg(bucket)}/${entryPath(entry)}/q`, body);
    return result.removed_records;
  }

  /** The record's body (for previews and downloads). */
  async readRecord(bucket: string, entry: string, ts: number): Promise<Blob> {
    const response = await this.request("GET", `/b/${seg(bucket)}/${entryPath(entry)}?ts=${ts}`);
    return response.blob();
  }

  /** Sets labels (non-empty value) and removes them (empty value). */
  updateLabels = (bucket: string, entry: string, ts: number, labels: Record<string, string>) =>
    this.request("PATCH", `/b/${seg(bucket)}/${entryPath(entry)}?ts=${ts}`, {
      headers: Object.fromEntries(Object.entries(labels).map(([key, value]) => [`x-reduct-label-${key}`, value])),
    }).then((response) => response.body?.cancel());

  tokens = async () => (await this.json<{ tokens: Token[] }>("GET", "/tokens")).tokens;
  createToken = (name: string, body: { permissions: Permissions; ttl?: number; expires_at?: string }) =>
    this.json<{ value: string; created_at: string }>("POST", `/tokens/${seg(name)}`, body);
  rotateToken = (name: string) => this.json<{ value: string }>("POST", `/tokens/${seg(name)}/rotate`, {});
  removeToken = (name: string) => this.send("DELETE", `/tokens/${seg(name)}`);

  /** Lifecycles and replications share one shape: list, get, create, update, mode, delete. */
  policies = (kind: PolicyKind) => this.json<Record<string, Array<Record<string, unknown>>>>("GET", `/${kind}`);
  policy = (kind: PolicyKind, name: string) =>
    this.json<{ info: Record<string, unknown>; settings: Record<string, unknown> }>("GET", `/${kind}/${seg(name)}`);
  savePolicy = (kind: PolicyKind, name: string, settings: unknown, exists: boolean) =>
    this.send(exists ? "PUT" : "POST", `/${kind}/${seg(name)}`, settings);
  setPolicyMode = (kind: PolicyKind, name: string, mode: string) => this.send("PATCH", `/${kind}/${seg(name)}/mode`, { mode });
  removePolicy = (kind: PolicyKind, name: string) => this.send("DELETE", `/${kind}/${seg(name)}`);

  /** Bodies of `usage/<instance>/total` records in `$system` (JSON), oldest first, at most `limit`. */
  async usageSeries(instance: string, since: number, limit: number): Promise<Array<Record<string, number>>> {
    const base = `/b/${seg("$system")}/${entryPath(`usage/${instance}/total`)}`;
    const { id } = await this.json<{ id: number }>("POST", `${base}/q`, {
      query_type: "QUERY",
      start: since,
      when: { $limit: limit },
      ttl: 30,
    });
    const out: Array<Record<string, number>> = [];
    while (out.length < limit) {
      const response = await this.request("GET", `${base}/batch?q=${id}`);
      if (response.status === 204) break;
      const metas = parseBatchHeaders(response.headers);
      const bytes = new Uint8Array(await response.arrayBuffer());
      let offset = 0;
      const decoder = new TextDecoder();
      for (const meta of metas) {
        const text = decoder.decode(bytes.subarray(offset, offset + meta.size));
        offset += meta.size;
        try {
          out.push({ timestamp: meta.ts, ...JSON.parse(text) });
        } catch {
          // A record that is not JSON is no usage sample: skipped.
        }
      }
      if (response.headers.get("x-reduct-last") === "true") break;
    }
    return out;
  }
}

export type PolicyKind = "lifecycles" | "replications";
