/**
 * Baseline workloads, each on its own tiny Worker (bench/baselines/): (a) no-op request,
 * (b) Worker → DO RPC inserting one 1 KiB row, (c) naive store writing one R2 object + one D1 row
 * per 1 KiB record, raw R2 puts of the W3 sizes (streamed, no D1 row) and, in full runs, the
 * `c-piped` diagnostic (the same puts through a JS length guard + FixedLengthStream).
 */
import type { RequestSpec } from "../../scripts/lib/http-client.ts";
import type { Scale, Unit } from "../lib/types.ts";
import { KIB, randomBytes, TS0 } from "./protocol.ts";

const body1k = randomBytes(KIB);
const chunk = randomBytes(64 * KIB);

/** Units (see index.ts) for the W3 sizes of `scale`. */
function largePutUnits(scale: Scale, idPrefix: string, route: string, title: string, fullOnly: boolean): Unit[] {
  return scale.large.map(([label, size, count], index) => {
    const put = (key: string): RequestSpec => ({
      method: "PUT",
      path: `${route}?key=${key}`,
      body: { size, chunk },
      bytes: size,
      timeoutMs: 300_000,
    });
    return {
      id: `${idPrefix}-${label}`,
      title: `${title}, ${label}`,
      server: "naive",
      fullOnly,
      spec: (ctx) => ({
        connections: 1,
        total: count,
        expectedRecords: count,
        maxSeconds: ctx.scale.largeMaxSeconds,
        rss: true,
        keepAlive: false,
        warmup: index === 0 ? { total: 1, makeRequest: () => put(`${idPrefix}-warmup`) } : undefined,
        makeRequest: (i) => put(`${label}-${i}`),
      }),
    };
  });
}

export function baselineUnits(scale: Scale): Unit[] {
  const write = (ts: number): RequestSpec => ({ method: "POST", path: `/rec?ts=${ts}`, body: body1k, bytes: KIB });
  return [
    {
      id: "a",
      title: "(a) no-op request: GET /",
      server: "noop",
      spec: (ctx) => ({
        total: ctx.scale.requests,
        expectedRecords: ctx.scale.requests,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 500, makeRequest: () => ({ path: "/" }) },
        makeRequest: () => ({ path: "/" }),
      }),
    },
    {
      id: "b",
      title: "(b) Worker → DO RPC, insert one 1 KiB SQLite row",
      server: "doRow",
      spec: (ctx) => ({
        total: ctx.scale.records,
        expectedRecords: ctx.scale.records,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 200, makeRequest: (j) => write(j + 1) },
        makeRequest: (i) => write(TS0 + i),
      }),
    },
    {
      id: "c",
      title: "(c) naive store: 1 KiB record → 1 R2 object + 1 D1 row",
      server: "naive",
      spec: (ctx) => ({
        total: ctx.scale.records,
        expectedRecords: ctx.scale.records,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 200, makeRequest: (j) => write(j + 1) },
        makeRequest: (i) => write(TS0 + i),
      }),
    },
    ...largePutUnits(scale, "c-raw", "/raw", "(c) raw R2 put of the request body", false),
    ...largePutUnits(scale, "c-piped", "/raw-piped", "(c) diagnostic: R2 put via a JS length guard + FixedLengthStream", true),
  ];
}
