// A minimal HTTP client for reduct-edge (node:http, keep-alive, bounded connections and timeouts)
// and the protocol pieces the reliability scripts need: v1/v2 batch framing (§5.1, §5.2), listing an
// entry with a query (§6), and the descriptor size of §3.8 to check entry sizes.
import http from "node:http";
import { sha256Hex } from "./prng.mjs";

export class RequestError extends Error {
  constructor(message, code) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/**
 * `client.request(method, path, { headers, body, timeoutMs })` resolves once the whole response
 * body has arrived with `{ status, headers, body }` (headers lower-cased, body a Buffer), and
 * rejects with a RequestError on socket errors or timeouts.
 */
export function makeClient(baseUrl, token, { connections = 16, timeoutMs = 60_000 } = {}) {
  const url = new URL(baseUrl);
  if (url.hostname !== "127.0.0.1") throw new Error(`refusing to talk to ${url.hostname}: 127.0.0.1 only`);
  // workerd closes a keep-alive connection after 5 s idle; a request sent on it just then dies with
  // ECONNRESET before the server read it. So: use the sockets round-robin (fifo) and let the client
  // close idle ones first (timeout 4 s; for busy sockets it only emits 'timeout', which is ignored).
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: connections,
    maxFreeSockets: connections,
    scheduling: "fifo",
    timeout: 4_000,
  });
  const auth = token ? { authorization: `Bearer ${token}` } : {};

  function request(method, path, { headers = {}, body, timeoutMs: limit = timeoutMs } = {}) {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body);
      const allHeaders = { ...auth, ...headers };
      if (payload !== undefined && allHeaders["content-length"] === undefined) allHeaders["content-length"] = payload.length;
      let settled = false;
      const finish = (fn, value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn(value);
      };
      const req = http.request({ host: "127.0.0.1", port: url.port, method, path, headers: allHeaders, agent }, (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          if (!res.complete) {
            finish(reject, new RequestError(`${method} ${path}: response cut short`, "ECUT"));
            return;
          }
          finish(resolve, { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
        });
        res.on("error", (error) => finish(reject, new RequestError(`${method} ${path}: ${error.message}`, error.code)));
        res.on("aborted", () => finish(reject, new RequestError(`${method} ${path}: response aborted`, "EABORTED")));
      });
      const timer = setTimeout(() => {
        req.destroy(new RequestError(`${method} ${path}: timed out after ${limit} ms`, "ETIMEOUT"));
      }, limit);
      req.on("error", (error) =>
        finish(
          reject,
          error instanceof RequestError ? error : new RequestError(`${method} ${path}: ${error.message}`, error.code),
        ),
      );
      req.end(payload);
    });
  }

  return { request, agent, close: () => agent.destroy(), baseUrl };
}

/** The `x-reduct-error` of a response, or "". */
export const errorOf = (response) => String(response.headers["x-reduct-error"] ?? "");

// ---------------------------------------------------------------------------------------------
// Labels and batch framing

/** `k=v`, quoted when the value contains a comma (as the reference writers do). */
const renderLabel = (key, value) => (String(value).includes(",") ? `${key}="${value}"` : `${key}=${value}`);

/**
 * Parses `k=v,k2="a,b",...` (§5.1.1 step 3): values starting with `"` run to the next `"`; keys and
 * values are trimmed; a fragment without `=` is ignored. Throws on an unterminated quote.
 */
export function parseLabelList(text) {
  const labels = {};
  let pos = 0;
  while (pos < text.length) {
    const eq = text.indexOf("=", pos);
    const comma = text.indexOf(",", pos);
    if (eq < 0) break;
    if (comma >= 0 && comma < eq) {
      pos = comma + 1; // a fragment without '='
      continue;
    }
    const key = text.slice(pos, eq).trim();
    let p = eq + 1;
    while (text[p] === " ") p++;
    let value;
    if (text[p] === '"') {
      const close = text.indexOf('"', p + 1);
      if (close < 0) throw new Error(`unterminated quote in '${text}'`);
      value = text.slice(p + 1, close);
      const next = text.indexOf(",", close + 1);
      pos = next < 0 ? text.length : next + 1;
    } else {
      const next = text.indexOf(",", p);
      value = text.slice(p, next < 0 ? text.length : next).trim();
      pos = next < 0 ? text.length : next + 1;
    }
    labels[key] = value;
  }
  return labels;
}

/** `<LEN>,<CT>[,labels]` (§5.1.1) → { size, contentType, labels }. */
export function parseV1RecordHeader(value) {
  const first = value.indexOf(",");
  if (first < 0) throw new Error(`invalid batched header '${value}'`);
  const size = Number(value.slice(0, first).trim());
  const rest = value.slice(first + 1);
  const second = rest.indexOf(",");
  const contentType = (second < 0 ? rest : rest.slice(0, second)).trim() || "application/octet-stream";
  const labels = second < 0 ? {} : parseLabelList(rest.slice(second + 1));
  return { size, contentType, labels };
}

/** Headers and body of a v1 batch write (§5.1.2) of `records` ({ ts, contentType, labels, data }). */
export function renderV1Batch(records) {
  const sorted = [...records].sort((a, b) => a.ts - b.ts);
  const headers = { "content-type": "application/octet-stream" };
  for (const record of sorted) {
    const labels = Object.entries(record.labels).map(([k, v]) => `,${renderLabel(k, v)}`);
    headers[`x-reduct-time-${record.ts}`] = `${record.data.length},${record.contentType}${labels.join("")}`;
  }
  return { headers, body: Buffer.concat(sorted.map((record) => record.data)) };
}

/** Per-record errors of a v1 batch answer: Map ts → "status,message". */
export function v1BatchErrors(headers) {
  const errors = new Map();
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-error-(\d+)$/.exec(name);
    if (match) errors.set(Number(match[1]), String(value));
  }
  return errors;
}

const TOKEN_CHAR = /[A-Za-z0-9!#$%&'*+\-.^_`|~]/;

/** Entry name encoding of `x-reduct-entries` (§5.2.1): token characters kept, other bytes %XX. */
export function encodeEntryName(name) {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const char = String.fromCharCode(byte);
    out += byte < 128 && TOKEN_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export function decodeEntryName(text) {
  return decodeURIComponent(text.replace(/%(?![0-9A-Fa-f]{2})/g, "%25"));
}

/**
 * Headers and body of a v2 batch write (§5.2.3) of `records` ({ entry, ts, contentType, labels,
 * data }). Entry indexes follow the sorted entry names; the body is in (entry index, ts) order;
 * each entry's first record carries its type and all labels, later ones only the changes (delta).
 * With `labelIndexes`, label names are published in `x-reduct-labels` and referenced by index.
 */
export function renderV2Batch(records, { labelIndexes = false } = {}) {
  const entries = [...new Set(records.map((record) => record.entry))].sort();
  const startTs = Math.min(...records.map((record) => record.ts));
  const labelNames = [];
  const keyOf = (name) => {
    if (!labelIndexes) return name;
    let index = labelNames.indexOf(name);
    if (index < 0) index = labelNames.push(name) - 1;
    return String(index);
  };
  const headers = {
    "content-type": "application/octet-stream",
    "x-reduct-entries": entries.map(encodeEntryName).join(","),
    "x-reduct-start-ts": String(startTs),
  };
  const ordered = [];
  entries.forEach((entry, index) => {
    const own = records.filter((record) => record.entry === entry).sort((a, b) => a.ts - b.ts);
    let prev = { contentType: "application/octet-stream", labels: {} };
    own.forEach((record, i) => {
      const ops = [];
      for (const [k, v] of Object.entries(record.labels).sort()) if (prev.labels[k] !== v) ops.push(renderLabel(keyOf(k), v));
      for (const k of Object.keys(prev.labels).sort()) if (!(k in record.labels)) ops.push(`${keyOf(k)}=`);
      let value;
      if (i === 0) value = `${record.data.length},${record.contentType}${ops.length ? `,${ops.join(",")}` : ""}`;
      else if (ops.length === 0 && record.contentType === prev.contentType) value = `${record.data.length}`;
      else {
        const ct = record.contentType === prev.contentType ? "" : record.contentType;
        value = `${record.data.length},${ct}${ops.length ? `,${ops.join(",")}` : ""}`;
      }
      headers[`x-reduct-${index}-${record.ts - startTs}`] = value;
      ordered.push(record);
      prev = record;
    });
  });
  if (labelIndexes && labelNames.length > 0) headers["x-reduct-labels"] = labelNames.map(encodeEntryName).join(",");
  return { headers, body: Buffer.concat(ordered.map((record) => record.data)), entries, startTs };
}

/** Per-record errors of a v2 write answer: Map "entry\u0000ts" → "status,message". */
export function v2BatchErrors(headers, entries, startTs) {
  const errors = new Map();
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-error-(\d+)-(\d+)$/.exec(name);
    if (match) errors.set(`${entries[Number(match[1])]}\u0000${startTs + Number(match[2])}`, String(value));
  }
  return errors;
}

/**
 * Parses a v2 read answer (§5.2.5): Map entry → [{ ts, size, contentType, labels, sha256 }], the
 * body sliced in (entry index, ts) order.
 */
export function parseV2Read(headers, body) {
  const entriesHeader = String(headers["x-reduct-entries"] ?? "");
  const entries = entriesHeader === "" ? [] : entriesHeader.split(",").map(decodeEntryName);
  const startTs = Number(headers["x-reduct-start-ts"] ?? 0);
  const labelNames = headers["x-reduct-labels"] ? String(headers["x-reduct-labels"]).split(",").map(decodeEntryName) : undefined;
  const heads = [];
  for (const [name, value] of Object.entries(headers)) {
    const match = /^x-reduct-(\d+)-(\d+)$/.exec(name);
    if (match) heads.push({ index: Number(match[1]), delta: Number(match[2]), value: String(value) });
  }
  heads.sort((a, b) => a.index - b.index || a.delta - b.delta);
  const out = new Map();
  const prevByEntry = new Map();
  let offset = 0;
  for (const head of heads) {
    const entry = entries[head.index];
    if (entry === undefined) throw new Error(`record header index ${head.index} beyond x-reduct-entries '${entriesHeader}'`);
    const prev = prevByEntry.get(entry) ?? { contentType: "application/octet-stream", labels: {} };
    const comma = head.value.indexOf(",");
    let size;
    let contentType = prev.contentType;
    const labels = { ...prev.labels };
    if (comma < 0) size = Number(head.value.trim());
    else {
      size = Number(head.value.slice(0, comma).trim());
      const rest = head.value.slice(comma + 1);
      const second = rest.indexOf(",");
      const ct = (second < 0 ? rest : rest.slice(0, second)).trim();
      if (ct) contentType = ct;
      if (second >= 0) {
        for (const [key, value] of Object.entries(parseLabelList(rest.slice(second + 1)))) {
          const name = labelNames && /^\d+$/.test(key) ? labelNames[Number(key)] : key;
          if (value === "") delete labels[name];
          else labels[name] = value;
        }
      }
    }
    const data = body.subarray(offset, offset + size);
    offset += size;
    const record = {
      ts: startTs + head.delta,
      size,
      contentType,
      labels,
      sha256: sha256Hex(data),
      truncated: data.length !== size,
    };
    prevByEntry.set(entry, record);
    if (!out.has(entry)) out.set(entry, []);
    out.get(entry).push(record);
  }
  return { records: out, bodyBytes: offset, extraBytes: body.length - offset };
}

// ---------------------------------------------------------------------------------------------
// Listing

/** The query id of a `{"id": N}` answer, as text (ids may exceed 2^53). */
export function queryIdOf(body) {
  const match = /"id"\s*:\s*(\d+)/.exec(body.toString("utf8"));
  if (!match) throw new Error(`no query id in '${body.toString("utf8").slice(0, 200)}'`);
  return match[1];
}

const entryPath = (bucket, entry) =>
  `/api/v1/b/${encodeURIComponent(bucket)}/${entry.split("/").map(encodeURIComponent).join("/")}`;

export { entryPath };

/**
 * Lists every record of one entry with a v1 query and batch reads (§6.2, §5.1.3), bounded by
 * `maxBatches` and `deadline` (ms epoch). Resolves with { missing: true } when the entry is 404, or
 * { records: [{ ts, size, contentType, labels, sha256 }], problems: [text] }.
 */
export async function listEntryV1(client, bucket, entry, { maxBatches = 10_000, deadline = Date.now() + 120_000 } = {}) {
  const problems = [];
  const created = await client.request("POST", `${entryPath(bucket, entry)}/q`, {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_type: "QUERY", ttl: 120 }),
  });
  if (created.status === 404) return { missing: true, records: [], problems };
  if (created.status !== 200) throw new Error(`POST ${bucket}/${entry}/q answered ${created.status} ${errorOf(created)}`);
  const id = queryIdOf(created.body);
  const records = [];
  let sawLast = false;
  for (let batch = 0; ; batch++) {
    if (batch >= maxBatches || Date.now() > deadline)
      throw new Error(`listing ${bucket}/${entry} did not finish within its bounds`);
    const response = await client.request("GET", `${entryPath(bucket, entry)}/batch?q=${id}`);
    if (response.status === 204) break;
    if (response.status !== 200)
      throw new Error(`GET ${bucket}/${entry}/batch?q= answered ${response.status} ${errorOf(response)}`);
    if (sawLast) problems.push(`${bucket}/${entry}: a batch after x-reduct-last: true`);
    const heads = [];
    for (const [name, value] of Object.entries(response.headers)) {
      const match = /^x-reduct-time-(\d+)$/.exec(name);
      if (match) heads.push({ ts: Number(match[1]), ...parseV1RecordHeader(String(value)) });
    }
    heads.sort((a, b) => a.ts - b.ts);
    const total = heads.reduce((sum, head) => sum + head.size, 0);
    if (response.body.length !== total) {
      problems.push(`${bucket}/${entry}: batch body has ${response.body.length} bytes, headers announce ${total}`);
    }
    let offset = 0;
    for (const head of heads) {
      const data = response.body.subarray(offset, offset + head.size);
      offset += head.size;
      records.push({ ts: head.ts, size: head.size, contentType: head.contentType, labels: head.labels, sha256: sha256Hex(data) });
    }
    if (String(response.headers["x-reduct-last"]) === "true") sawLast = true;
  }
  for (let i = 1; i < records.length; i++) {
    if (records[i].ts <= records[i - 1].ts) {
      problems.push(`${bucket}/${entry}: listing not strictly ordered (${records[i - 1].ts} then ${records[i].ts})`);
    }
  }
  return { missing: false, records, problems };
}

/**
 * Lists every record of a bucket with a v2 query and /io reads (§5.2.4, §5.2.5), bounded like
 * listEntryV1. Resolves with Map entry → records, plus problems.
 */
export async function listBucketV2(client, bucket, { maxBatches = 10_000, deadline = Date.now() + 120_000 } = {}) {
  const problems = [];
  const created = await client.request("POST", `/api/v1/io/${encodeURIComponent(bucket)}/q`, {
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query_type: "QUERY", entries: ["*"], ttl: 120 }),
  });
  if (created.status !== 200) throw new Error(`POST /io/${bucket}/q answered ${created.status} ${errorOf(created)}`);
  const id = queryIdOf(created.body);
  const byEntry = new Map();
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
      if (!byEntry.has(entry)) byEntry.set(entry, []);
      byEntry.get(entry).push(...records);
    }
    if (parsed.records.size === 0 && String(response.headers["x-reduct-last"]) !== "true") {
      problems.push(`/io/${bucket}/read: an empty 200 batch for a finite query`);
    }
    if (String(response.headers["x-reduct-last"]) === "true") break;
  }
  return { byEntry, problems };
}

// ---------------------------------------------------------------------------------------------
// Sizes (§3.8)

export function varintLength(value) {
  let n = 1;
  let v = value;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

const field = (length) => 1 + varintLength(length) + length;

/**
 * The descriptor length of a record without its `begin` field (which depends on the record's block
 * position and is unknown to a client): timestamp, end (= begin + size; bounded by the caller),
 * labels, content type and, after a label update, the finished state (+2).
 */
export function descriptorBounds({ ts, size, labels, contentType, updated, maxBegin }) {
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
