/**
 * Labels through the Worker: what a write accepts reads back identical on every read path (single
 * GET/HEAD, single `?q=` reads, v1 batches, v2 `/io` batches parsed by reduct-js's own parser);
 * what no read path could return is refused at write (single, v1, v2) and after a label update
 * (single PATCH, v1 PATCH …/batch, v2 /io update) with 422, leaving the record as it was.
 */
import fc from "fast-check";
import { fetchAndParseBatchV2 } from "reduct-js/lib/esm/batch/BatchV2.js";
import { describe, expect, it } from "vitest";
import {
  encodeName,
  HEADER_LINE_OVERHEAD_BYTES,
  headerBytes,
  LABEL_HEADER_OVERHEAD_BYTES,
  MAX_LABEL_TOTAL_BYTES,
  MAX_LABELS_PER_RECORD,
} from "../../src/api/headers";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

type Labels = Record<string, string>;
type WritePath = "single" | "v1" | "v2";

const quote = (value: string) => (value.includes(",") ? `"${value}"` : value);
const items = (labels: Labels) => Object.entries(labels).map(([name, value]) => `${name}=${quote(value)}`);

/** Writes one 1-byte record the way the official clients do on each path. */
async function write(path: WritePath, bucket: string, entry: string, ts: number, labels: Labels): Promise<Response> {
  let response: Response;
  if (path === "single") {
    const headers = Object.fromEntries(Object.entries(labels).map(([name, value]) => [`x-reduct-label-${name}`, value]));
    response = await api("POST", `/b/${bucket}/${entry}?ts=${ts}`, { headers, body: "x" });
  } else if (path === "v1") {
    const value = ["1", "text/plain", ...items(labels)].join(",");
    response = await api("POST", `/b/${bucket}/${entry}/batch`, { headers: { [`x-reduct-time-${ts}`]: value }, body: "x" });
  } else {
    const names = Object.keys(labels);
    const headers: Record<string, string> = {
      "x-reduct-entries": encodeName(entry),
      "x-reduct-start-ts": String(ts),
      "x-reduct-0-0": ["1", "text/plain", ...names.map((name, i) => `${i}=${quote(labels[name] ?? "")}`)].join(","),
    };
    if (names.length > 0) headers["x-reduct-labels"] = names.map(encodeName).join(",");
    response = await api("POST", `/io/${bucket}/write`, { headers, body: "x" });
  }
  await response.arrayBuffer();
  return response;
}

/** The failure of a write: the request's own error, or the record's `x-reduct-error-*` header. */
function writeFailure(response: Response): { status: number; message: string } | null {
  if (response.status !== 200) return { status: response.status, message: response.headers.get("x-reduct-error") ?? "" };
  for (const [name, value] of response.headers) {
    if (!name.startsWith("x-reduct-error-")) continue;
    const comma = value.indexOf(",");
    return { status: Number(value.slice(0, comma)), message: value.slice(comma + 1) };
  }
  return null;
}

const labelsOfHeaders = (headers: Headers): Labels =>
  Object.fromEntries(
    [...headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([name, value]) => [name.slice(15), value]),
  );

async function queryId(path: string, body: Record<string, unknown>): Promise<string> {
  const response = await api("POST", path, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  expect(response.status).toBe(200);
  return String(((await response.json()) as { id: number }).id);
}

/** reduct-js's HTTP client, answered by the Worker. */
const clientOverWorker = {
  get: async (url: string, headers: Record<string, string> = {}) => {
    const response = await api("GET", url, { headers });
    return { status: response.status, headers: response.headers, data: response.body };
  },
  head: async (url: string, headers: Record<string, string> = {}) => {
    const response = await api("HEAD", url, { headers });
    return { status: response.status, headers: response.headers, data: response.body };
  },
};

/** Node's default limit on a response's header section (reduct-js runs on it). */
const NODE_MAX_HEADER_BYTES = 16 * 1024;
/** Header section of a response as sent: status line, header lines, the blank line. */
const responseHeaderBytes = (response: Response) => 17 + headerBytes(response.headers) + HEADER_LINE_OVERHEAD_BYTES / 2;
/** The largest header section of a single-record read (GET/HEAD by time, `?q=`) so far. */
let largestResponseHeader = 0;
const track = (response: Response) => {
  largestResponseHeader = Math.max(largestResponseHeader, responseHeaderBytes(response));
  return response;
};

interface ReadBack {
  ts: number;
  labels: Labels;
}

/** Every record of `entry` in time order, through each read path; single reads name labels in lower case. */
async function readAllPaths(bucket: string, entry: string, timestamps: readonly number[]): Promise<Record<string, ReadBack[]>> {
  const out: Record<string, ReadBack[]> = { get: [], head: [], singleQuery: [], v1: [], v2: [] };
  for (const ts of timestamps) {
    for (const method of ["GET", "HEAD"] as const) {
      const response = track(await api(method, `/b/${bucket}/${entry}?ts=${ts}`));
      expect(response.status, `${method} ${ts}`).toBe(200);
      await response.arrayBuffer();
      out[method === "GET" ? "get" : "head"]?.push({ ts, labels: labelsOfHeaders(response.headers) });
    }
  }
  const single = await queryId(`/b/${bucket}/${entry}/q`, {});
  for (;;) {
    const response = track(await api("GET", `/b/${bucket}/${entry}?q=${single}`));
    await response.arrayBuffer();
    if (response.status === 204) break;
    expect(response.status).toBe(200);
    out.singleQuery?.push({ ts: Number(response.headers.get("x-reduct-time")), labels: labelsOfHeaders(response.headers) });
  }
  const v1 = await queryId(`/b/${bucket}/${entry}/q`, {});
  for (;;) {
    const response = await api("GET", `/b/${bucket}/${entry}/batch?q=${v1}`);
    await response.arrayBuffer();
    if (response.status === 204) break;
    expect(response.status).toBe(200);
    const lines = [...response.headers].filter(([name]) => name.startsWith("x-reduct-time-"));
    expect(lines.length).toBeGreaterThan(0);
    for (const [name, value] of lines.sort((a, b) => Number(a[0].slice(14)) - Number(b[0].slice(14)))) {
      out.v1?.push({ ts: Number(name.slice(14)), labels: parseV1Labels(value) });
    }
  }
  const v2 = await queryId(`/io/${bucket}/q`, { entries: [entry] });
  for await (const record of fetchAndParseBatchV2(bucket, entry, v2, false, 1, false, clientOverWorker as never)) {
    await record.read();
    out.v2?.push({ ts: Number(record.time), labels: { ...record.labels } as Labels });
  }
  return out;
}

/** The v1 grammar as the contract gives it: `LEN,CT[,k=v|k="v"]…`, quoted values end at the next `"`. */
function parseV1Labels(value: string): Labels {
  const labels: Labels = {};
  let rest = value.slice(value.indexOf(",") + 1);
  const comma = rest.indexOf(",");
  if (comma < 0) return labels;
  rest = rest.slice(comma + 1);
  while (rest.length > 0) {
    const equals = rest.indexOf("=");
    const name = rest.slice(0, equals);
    rest = rest.slice(equals + 1);
    let text: string;
    if (rest.startsWith('"')) {
      const close = rest.indexOf('"', 1);
      text = rest.slice(1, close);
      rest = rest.slice(close + 2);
    } else {
      const next = rest.indexOf(",");
      text = next < 0 ? rest : rest.slice(0, next);
      rest = next < 0 ? "" : rest.slice(next + 1);
    }
    Object.defineProperty(labels, name, { value: text, enumerable: true, writable: true, configurable: true });
  }
  return labels;
}

const lowerNames = (labels: Labels): Labels =>
  Object.fromEntries(Object.entries(labels).map(([name, value]) => [name.toLowerCase(), value]));

/** Label names that may be stored: header tokens, case kept, never two equal ignoring case. */
const tokenChars = "abcXYZ019!#$%&'*+-.^_`|~";
const labelName = fc.oneof(
  fc.string({ unit: fc.constantFrom(...tokenChars.split("")), minLength: 1, maxLength: 6 }),
  fc.constantFrom("constructor", "toString", "hasOwnProperty", "0", "1", "key"),
);
/** Values with `"`, `,`, `=`, spaces and friends, within the storable grammar. */
const labelValue = fc
  .string({ unit: fc.constantFrom(..."ab Z9,=\"'[]{}:;/\\@#%&*".split("")), minLength: 1, maxLength: 10 })
  .filter((s) => s.trim() === s && !s.startsWith('"') && !(s.includes(",") && s.includes('"')));
const labelSet = fc
  .uniqueArray(fc.tuple(labelName, labelValue), { maxLength: 6, selector: ([name]) => name.toLowerCase() })
  .map((pairs) => Object.fromEntries(pairs) as Labels);

describe("labels round-trip on every path", () => {
  it("fast-check: what a write accepts reads back identical through single, v1 and v2 reads", async () => {
    const bucket = uniqueName("labels-prop");
    await createBucket(bucket);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom<WritePath>("single", "v1", "v2"), labelSet), { minLength: 1, maxLength: 4 }),
        async (writes) => {
          run += 1;
          const entry = `e${run}`;
          const expected: ReadBack[] = [];
          for (const [i, [path, labels]] of writes.entries()) {
            const ts = 1000 + i;
            const response = await write(path, bucket, entry, ts, labels);
            expect(writeFailure(response), `${path} write of ${JSON.stringify(labels)}`).toBeNull();
            // The single-record API carries names in header names, which HTTP lower-cases.
            expected.push({ ts, labels: path === "single" ? lowerNames(labels) : labels });
          }
          const read = await readAllPaths(
            bucket,
            entry,
            expected.map((record) => record.ts),
          );
          const lowered = expected.map((record) => ({ ts: record.ts, labels: lowerNames(record.labels) }));
          expect(read.get).toEqual(lowered);
          expect(read.head).toEqual(lowered);
          expect(read.singleQuery).toEqual(lowered);
          expect(read.v1).toEqual(expected);
          expect(read.v2).toEqual(expected);
        },
      ),
      { numRuns: 12, seed: 20261201 },
    );
  });

  it("the server's own v1 and v2 output, posted back, stores the same labels", async () => {
    const bucket = uniqueName("labels-echo");
    await createBucket(bucket);
    const labels: Labels = { q: 'say "hi"', c: "a,b", e: "x=y=z", s: "two words", Upper: "1", constructor: "c" };
    expect(writeFailure(await write("v1", bucket, "src", 10, labels))).toBeNull();
    const v1 = await queryId(`/b/${bucket}/src/q`, {});
    const batch = await api("GET", `/b/${bucket}/src/batch?q=${v1}`);
    await batch.arrayBuffer();
    const line = batch.headers.get("x-reduct-time-10") ?? "";
    expect(line).toBe('1,text/plain,Upper=1,c="a,b",constructor=c,e=x=y=z,q=say "hi",s=two words');
    const echoed = await api("POST", `/b/${bucket}/copy/batch`, { headers: { "x-reduct-time-10": line }, body: "x" });
    await echoed.arrayBuffer();
    expect(writeFailure(echoed)).toBeNull();
    const read = await readAllPaths(bucket, "copy", [10]);
    expect(read.v1).toEqual([{ ts: 10, labels }]);
    expect(read.v2).toEqual([{ ts: 10, labels }]);
  });
});

const TOKEN_RULE = "label names may contain only letters, digits and !#$%&'*+-.^_`|~";
const VALUE_QUOTES = (name: string) => `Label value of '${name}' must not start with '"' or contain both ',' and '"'`;

describe("labels no read path could return are refused at write", () => {
  // [label set, message]; each is sent on every path that can carry it.
  const cases: Array<[string, Labels, string, WritePath[]]> = [
    ["__proto__", { __proto__: "x" } as unknown as Labels, "Label name '__proto__' is reserved", ["single", "v1", "v2"]],
    ["a value with both comma and quote", { k: 'a,"b"' }, VALUE_QUOTES("k"), ["single"]],
    // Batch headers cannot even carry it: quoted, it ends at its own quote.
    ["a quoted value with a quote inside", { k: 'a,"b"' }, "Invalid batched header", ["v1", "v2"]],
    ["a value starting with a quote", { k: '"quoted"' }, VALUE_QUOTES("k"), ["single"]],
    ["names differing only by case", { A: "upper", a: "lower" }, "Label names 'A' and 'a' differ only by case", ["v1", "v2"]],
    ["a name with a space", { "x y": "1" }, `Label name 'x y' is invalid: ${TOKEN_RULE}`, ["v1", "v2"]],
    ["a name with a slash", { "a/b": "1" }, `Label name 'a/b' is invalid: ${TOKEN_RULE}`, ["v2"]],
    ["a name with a comma", { "a,b": "1" }, `Label name 'a,b' is invalid: ${TOKEN_RULE}`, ["v2"]],
    ["a name with '='", { "a=b": "1" }, `Label name 'a=b' is invalid: ${TOKEN_RULE}`, ["v2"]],
    ["a non-ASCII name", { é: "1" }, `Label name 'é' is invalid: ${TOKEN_RULE}`, ["v2"]],
  ];
  for (const [what, labels, message, paths] of cases) {
    for (const path of paths) {
      it(`${path}: ${what} → 422, nothing stored`, async () => {
        const bucket = uniqueName("labels-refused");
        await createBucket(bucket);
        const sent = what === "__proto__" ? Object.defineProperty({}, "__proto__", { value: "x", enumerable: true }) : labels;
        const response = await write(path, bucket, "e", 7, sent);
        expect(writeFailure(response)).toEqual({ status: 422, message: message.replace("é", "%C3%A9") });
        const read = await api("GET", `/b/${bucket}/e?ts=7`);
        await read.arrayBuffer();
        expect(read.status).toBe(404);
      });
    }
  }

  it("v1: a quoted value reads as its content; an unterminated one is refused", async () => {
    const bucket = uniqueName("labels-quotes");
    await createBucket(bucket);
    const ok = await api("POST", `/b/${bucket}/e/batch`, { headers: { "x-reduct-time-1": '1,text/plain,k="a,b"' }, body: "x" });
    await ok.arrayBuffer();
    expect(writeFailure(ok)).toBeNull();
    const bad = await api("POST", `/b/${bucket}/e/batch`, { headers: { "x-reduct-time-2": '1,text/plain,k="a,b' }, body: "x" });
    await expectError(bad, 422, "Invalid batched header");
  });
});

/**
 * Labels just inside the caps: 128 labels of 12 KiB as single-read header lines; odd seeds use
 * names full of `%` (sent as `%25` by v2 batches), the widest rendering there is.
 */
function nearCapLabels(seed: number): Labels {
  const labels: Labels = {};
  const count = seed % 2 === 0 ? MAX_LABELS_PER_RECORD : 8;
  const each = Math.floor(MAX_LABEL_TOTAL_BYTES / count) - LABEL_HEADER_OVERHEAD_BYTES;
  for (let i = 0; i < count; i++) {
    const name = seed % 2 === 0 ? `l${String(i).padStart(3, "0")}` : `${"%".repeat(250)}${String(i).padStart(3, "0")}`;
    labels[name] = `${seed}`.padEnd(each - name.length - 2 * (name.split("%").length - 1), "v");
  }
  return labels;
}

const labelBytes = (labels: Labels) =>
  Object.entries(labels).reduce(
    (sum, [name, value]) => sum + name.length + 2 * (name.split("%").length - 1) + value.length + LABEL_HEADER_OVERHEAD_BYTES,
    0,
  );

describe("label caps hold on the merged labels of an update", () => {
  /** Grows one record's labels by `step` new labels per update until refused; returns the refusal. */
  async function growUntilRefused(
    update: (bucket: string, ts: number, labels: Labels) => Promise<{ status: number; message: string } | null>,
  ): Promise<void> {
    const bucket = uniqueName("labels-merge");
    await createBucket(bucket);
    expect(writeFailure(await write("single", bucket, "e", 5, { base: "1" }))).toBeNull();
    let refusal: { status: number; message: string } | null = null;
    let before: Labels = { base: "1" };
    for (let round = 0; round < 12 && refusal === null; round++) {
      const batch: Labels = {};
      for (let i = 0; i < 48; i++) batch[`r${round}x${i}`] = "v".repeat(10);
      const get = await api("GET", `/b/${bucket}/e?ts=5`);
      await get.arrayBuffer();
      before = labelsOfHeaders(get.headers);
      refusal = await update(bucket, 5, batch);
    }
    expect(refusal).toEqual({ status: 422, message: `A record can have at most ${MAX_LABELS_PER_RECORD} labels` });
    // Refused means unchanged; and the record stays readable on every path.
    const read = await readAllPaths(bucket, "e", [5]);
    expect(read.get).toEqual([{ ts: 5, labels: before }]);
    expect(read.v1).toEqual([{ ts: 5, labels: before }]);
    expect(read.v2).toEqual([{ ts: 5, labels: before }]);
    expect(Object.keys(before).length).toBeLessThanOrEqual(MAX_LABELS_PER_RECORD);
  }

  it("single PATCH ?ts=", async () => {
    await growUntilRefused(async (bucket, ts, labels) => {
      const headers = Object.fromEntries(Object.entries(labels).map(([name, value]) => [`x-reduct-label-${name}`, value]));
      const response = await api("PATCH", `/b/${bucket}/e?ts=${ts}`, { headers });
      await response.arrayBuffer();
      return writeFailure(response);
    });
  });

  it("v1 PATCH …/batch: a per-record error", async () => {
    await growUntilRefused(async (bucket, ts, labels) => {
      const response = await api("PATCH", `/b/${bucket}/e/batch`, {
        headers: { [`x-reduct-time-${ts}`]: ["0", "", ...items(labels)].join(",") },
      });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      return writeFailure(response);
    });
  });

  it("v2 PATCH /io/:bucket/update: a per-record error", async () => {
    await growUntilRefused(async (bucket, ts, labels) => {
      const response = await api("PATCH", `/io/${bucket}/update`, {
        headers: {
          "x-reduct-entries": "e",
          "x-reduct-start-ts": String(ts),
          "x-reduct-0-0": ["0", "", ...items(labels)].join(","),
        },
      });
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      return writeFailure(response);
    });
  });

  it("total bytes, case collisions and __proto__ are checked on the merged labels too; other records of the batch apply", async () => {
    const bucket = uniqueName("labels-merge-rules");
    await createBucket(bucket);
    const big = "v".repeat(3000);
    expect(writeFailure(await write("v1", bucket, "e", 1, { A: "1", b1: big, b2: big, b3: big }))).toBeNull();
    expect(writeFailure(await write("v1", bucket, "e", 2, { x: "1" }))).toBeNull();
    const response = await api("PATCH", `/b/${bucket}/e/batch`, {
      headers: {
        "x-reduct-time-1": `0,,b4=${big},b5=${big}`,
        "x-reduct-time-2": "0,,y=2",
      },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-error-1")).toBe(
      `422,Labels of a record must be at most ${MAX_LABEL_TOTAL_BYTES} bytes in total as response headers (names, values and 19 bytes per label)`,
    );
    expect(response.headers.get("x-reduct-error-2")).toBeNull();
    const single = await api("PATCH", `/b/${bucket}/e?ts=1`, { headers: { "x-reduct-label-a": "lower" } });
    await expectError(single, 422, "Label names 'A' and 'a' differ only by case");
    const v2 = await api("PATCH", `/io/${bucket}/update`, {
      headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "0,,a=lower", "x-reduct-0-1": "0,,z=3" },
    });
    await v2.arrayBuffer();
    expect(v2.headers.get("x-reduct-error-0-0")).toBe("422,Label names 'A' and 'a' differ only by case");
    expect(v2.headers.get("x-reduct-error-0-1")).toBeNull();
    const proto = await api("PATCH", `/b/${bucket}/e?ts=2`, { headers: { "x-reduct-label-__proto__": "p" } });
    await expectError(proto, 422, "Label name '__proto__' is reserved");
    const read = await readAllPaths(bucket, "e", [1, 2]);
    expect(read.v2).toEqual([
      { ts: 1, labels: { A: "1", b1: big, b2: big, b3: big } },
      // v2 update ops accumulate per entry: the second record also gets the first one's `a=lower`.
      { ts: 2, labels: { x: "1", y: "2", a: "lower", z: "3" } },
    ]);
  });
});

describe("records with labels near the caps are readable on every path", () => {
  it("single GET/HEAD, ?q= reads, v1 and v2 batches (each batch carries at least one), with the default and a small metadata budget", async () => {
    const bucket = uniqueName("labels-near-cap");
    await createBucket(bucket);
    const timestamps = [1, 2, 3, 4, 5];
    const expected: ReadBack[] = [];
    for (const ts of timestamps) {
      const labels = nearCapLabels(ts);
      expect(labelBytes(labels)).toBeLessThanOrEqual(MAX_LABEL_TOTAL_BYTES);
      const path: WritePath = (["single", "v1", "v2"] as const)[ts % 3] ?? "v1";
      expect(writeFailure(await write(path, bucket, "e", ts, labels))).toBeNull();
      expected.push({ ts, labels });
    }
    largestResponseHeader = 0;
    const read = await readAllPaths(bucket, "e", timestamps);
    for (const path of ["get", "head", "singleQuery", "v1", "v2"]) expect(read[path], path).toEqual(expected);
    // Single reads, with room for what the runtime adds (date, connection, keep-alive).
    expect(largestResponseHeader).toBeGreaterThan(MAX_LABEL_TOTAL_BYTES);
    expect(largestResponseHeader).toBeLessThanOrEqual(NODE_MAX_HEADER_BYTES - 256);

    // A metadata budget smaller than one record: each batch carries exactly one, none is skipped.
    for (const [protocol, path, headers] of [
      ["v1", `/b/${bucket}/e/batch?q=`, {}],
      ["v2", `/io/${bucket}/read`, {}],
    ] as const) {
      const created = await api("POST", protocol === "v1" ? `/b/${bucket}/e/q` : `/io/${bucket}/q`, {
        body: JSON.stringify({ query_type: "QUERY", entries: ["e"], when: { "#batch_metadata_size": 1000 } }),
      });
      const id = String(((await created.json()) as { id: number }).id);
      const seen: number[] = [];
      for (let i = 0; i < 10; i++) {
        const url = protocol === "v1" ? `${path}${id}` : path;
        const response = await api("GET", url, {
          headers: protocol === "v2" ? { "x-reduct-query-id": id, ...headers } : headers,
        });
        await response.arrayBuffer();
        if (response.status === 204) break;
        expect(response.status).toBe(200);
        const records = [...response.headers.keys()].filter((name) => /^x-reduct-(time-|0-)\d+$/.test(name));
        expect(records, `${protocol} batch ${i}`).toHaveLength(1);
        expect(responseHeaderBytes(response), `${protocol} batch ${i}`).toBeLessThanOrEqual(NODE_MAX_HEADER_BYTES - 256);
        seen.push(...records.map((name) => Number(name.slice(name.lastIndexOf("-") + 1))));
      }
      expect(seen, protocol).toHaveLength(timestamps.length);
    }
  });
});

describe("x-reduct-error is legal header text carrying the exact message", () => {
  it("a message with non-ASCII is percent-escaped in the header, exact in the JSON detail", async () => {
    const bucket = uniqueName("labels-error");
    await createBucket(bucket);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: {
        "x-reduct-entries": "e",
        "x-reduct-start-ts": "1",
        "x-reduct-labels": "%C2%B1",
        "x-reduct-0-0": "1,text/plain,0=v",
      },
      body: "x",
    });
    expect(response.status).toBe(422);
    expect(response.headers.get("x-reduct-error")).toBe(`Label name '%C2%B1' is invalid: ${TOKEN_RULE}`);
    expect(await response.json()).toEqual({ detail: `Label name '±' is invalid: ${TOKEN_RULE}` });
  });
});

describe("a label update's op count has its own cap; the merged labels get the record caps", () => {
  const oldLabels: Labels = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`old${i}`, "v"]));
  const newLabels: Labels = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`new${i}`, "v"]));
  const removeOld: Labels = Object.fromEntries(Object.keys(oldLabels).map((name) => [name, ""]));
  const tooManyOps: Labels = Object.fromEntries(Array.from({ length: 513 }, (_, i) => [`x${i}`, ""]));

  const updates: Array<[string, (bucket: string, labels: Labels) => Promise<{ status: number; message: string } | null>]> = [
    [
      "single PATCH",
      async (bucket, labels) => {
        const headers = Object.fromEntries(Object.entries(labels).map(([name, value]) => [`x-reduct-label-${name}`, value]));
        const response = await api("PATCH", `/b/${bucket}/e?ts=1`, { headers });
        await response.arrayBuffer();
        return writeFailure(response);
      },
    ],
    [
      "v1 PATCH …/batch",
      async (bucket, labels) => {
        const response = await api("PATCH", `/b/${bucket}/e/batch`, {
          headers: { "x-reduct-time-1": ["0", "", ...items(labels)].join(",") },
        });
        await response.arrayBuffer();
        return writeFailure(response);
      },
    ],
    [
      "v2 PATCH /io update",
      async (bucket, labels) => {
        const response = await api("PATCH", `/io/${bucket}/update`, {
          headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": ["0", "", ...items(labels)].join(",") },
        });
        await response.arrayBuffer();
        return writeFailure(response);
      },
    ],
  ];

  it.each(updates)("%s: 100 removed + 100 added in one update is accepted; over 512 ops is refused", async (_, update) => {
    const bucket = uniqueName("labels-ops");
    await createBucket(bucket);
    expect(writeFailure(await write("single", bucket, "e", 1, oldLabels))).toBeNull();
    expect(await update(bucket, { ...removeOld, ...newLabels })).toBeNull();
    const read = await readAllPaths(bucket, "e", [1]);
    expect(read.get).toEqual([{ ts: 1, labels: newLabels }]);
    expect(await update(bucket, tooManyOps)).toEqual({ status: 422, message: "A label update can have at most 512 labels" });
    expect((await readAllPaths(bucket, "e", [1])).v2).toEqual([{ ts: 1, labels: newLabels }]);
  });
});

describe("content types longer than 1024 characters are refused on every write path", () => {
  const longType = `text/${"x".repeat(1020)}`;
  const writes: Array<[string, (bucket: string, contentType: string) => Promise<Response>]> = [
    ["single", (bucket, type) => api("POST", `/b/${bucket}/e?ts=1`, { headers: { "content-type": type }, body: "x" })],
    ["v1", (bucket, type) => api("POST", `/b/${bucket}/e/batch`, { headers: { "x-reduct-time-1": `1,${type}` }, body: "x" })],
    [
      "v2",
      (bucket, type) =>
        api("POST", `/io/${bucket}/write`, {
          headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": `1,${type}` },
          body: "x",
        }),
    ],
  ];
  it.each(writes)("%s", async (_, send) => {
    const bucket = uniqueName("long-type");
    await createBucket(bucket);
    expect(longType.length).toBe(1025);
    await expectError(await send(bucket, longType), 422, "Malformed content-type header: at most 1024 characters are allowed");
    const atCap = longType.slice(1);
    const ok = await send(bucket, atCap);
    await ok.arrayBuffer();
    expect(writeFailure(ok)).toBeNull();
    const read = await api("GET", `/b/${bucket}/e?ts=1`);
    await read.arrayBuffer();
    expect(read.headers.get("content-type")).toBe(atCap);
  });
});
