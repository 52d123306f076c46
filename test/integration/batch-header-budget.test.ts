/**
 * No batched read sends more response headers than Node's default parser accepts (16 KiB for the
 * whole header section; reduct-js on Node fails beyond), whatever `#batch_metadata_size` asks
 * for: records with many labels, label names full of `%` (sent as `%25` in v2's
 * `x-reduct-labels`), on v1 `…/batch?q=` and v2 `/io/:bucket/read`, GET and HEAD. Every record
 * still arrives exactly once.
 */
import { describe, expect, it } from "vitest";
import { encodeName, HEADER_LINE_OVERHEAD_BYTES, headerBytes } from "../../src/api/headers";
import { api, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

/** Node's default `--max-http-header-size`. */
const NODE_MAX_HEADER_BYTES = 16 * 1024;
/** The header section as sent: status line, header lines, the blank line. */
const headerSectionBytes = (response: Response) => 17 + headerBytes(response.headers) + HEADER_LINE_OVERHEAD_BYTES / 2;

type Labels = Record<string, string>;

/** 24 records, each with its own label names (no delta compression across records). */
function recordLabels(i: number, style: "plain" | "percent"): Labels {
  const labels: Labels = {};
  for (let j = 0; j < 24; j++) {
    const name = style === "plain" ? `r${i}l${j}` : `${"%".repeat(40)}${i}x${j}`;
    labels[name] = "v".repeat(style === "plain" ? 300 : 60);
  }
  return labels;
}

async function writeRecords(bucket: string, style: "plain" | "percent"): Promise<number> {
  const count = 24;
  for (let i = 0; i < count; i++) {
    const labels = recordLabels(i, style);
    const names = Object.keys(labels);
    const response = await api("POST", `/io/${bucket}/write`, {
      headers: {
        "x-reduct-entries": "e",
        "x-reduct-start-ts": String(1000 + i),
        "x-reduct-labels": names.map(encodeName).join(","),
        "x-reduct-0-0": ["1", "text/plain", ...names.map((name, k) => `${k}=${labels[name]}`)].join(","),
      },
      body: "x",
    });
    await response.arrayBuffer();
    expect(response.status, response.headers.get("x-reduct-error") ?? "").toBe(200);
    expect([...response.headers.keys()].filter((name) => name.startsWith("x-reduct-error-"))).toEqual([]);
  }
  return count;
}

async function queryId(path: string, body: Record<string, unknown>): Promise<string> {
  const response = await api("POST", path, { body: JSON.stringify({ query_type: "QUERY", ...body }) });
  expect(response.status).toBe(200);
  return String(((await response.json()) as { id: number }).id);
}

/** Reads a query to its end; returns the records' timestamps and the largest header section. */
async function readAll(read: () => Promise<Response>, timestamps: (response: Response) => number[]) {
  const seen: number[] = [];
  let largest = 0;
  for (let round = 0; round < 100; round++) {
    const response = await read();
    await response.arrayBuffer();
    if (response.status === 204) return { seen, largest };
    expect(response.status).toBe(200);
    largest = Math.max(largest, headerSectionBytes(response));
    seen.push(...timestamps(response));
  }
  throw new Error("query did not end");
}

const v1Times = (response: Response) =>
  [...response.headers.keys()].filter((name) => name.startsWith("x-reduct-time-")).map((name) => Number(name.slice(14)));
const v2Times = (response: Response) => {
  const start = Number(response.headers.get("x-reduct-start-ts"));
  return [...response.headers.keys()]
    .filter((name) => /^x-reduct-\d+-\d+$/.test(name))
    .map((name) => start + Number(name.split("-")[3]));
};

describe("batched reads keep their headers within Node's default limit", () => {
  const directives: Array<[string, Record<string, unknown> | undefined]> = [
    ["#batch_metadata_size: 64KB", { "#batch_metadata_size": "64KB" }],
    ["#batch_metadata_size: 1000000", { "#batch_metadata_size": 1_000_000 }],
    ["the default budget", undefined],
  ];
  for (const style of ["plain", "percent"] as const) {
    for (const [what, when] of directives) {
      for (const method of ["GET", "HEAD"] as const) {
        it(`${style} label names, ${what}, ${method}: v1 and v2`, async () => {
          const bucket = uniqueName("header-budget");
          await createBucket(bucket);
          const count = await writeRecords(bucket, style);
          const expected = Array.from({ length: count }, (_, i) => 1000 + i);

          const v1 = await queryId(`/b/${bucket}/e/q`, when ? { when } : {});
          const readV1 = await readAll(() => api(method, `/b/${bucket}/e/batch?q=${v1}`), v1Times);
          expect(readV1.seen.sort((a, b) => a - b)).toEqual(expected);
          expect(readV1.largest).toBeLessThanOrEqual(NODE_MAX_HEADER_BYTES);

          const v2 = await queryId(`/io/${bucket}/q`, { entries: ["e"], ...(when ? { when } : {}) });
          const readV2 = await readAll(
            () => api(method, `/io/${bucket}/read`, { headers: { "x-reduct-query-id": v2 } }),
            v2Times,
          );
          expect(readV2.seen.sort((a, b) => a - b)).toEqual(expected);
          expect(readV2.largest).toBeLessThanOrEqual(NODE_MAX_HEADER_BYTES);
        });
      }
    }
  }
});
