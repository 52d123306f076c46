/**
 * Baseline workloads, each on its own tiny Worker (bench/baselines/): (a) no-op request,
 * (b) Worker → DO RPC inserting one 1 KiB row, (c) naive store writing one R2 object + one D1 row
 * per 1 KiB record, and (c) raw R2 puts of the W3 sizes (streamed, no D1 row).
 */
import { KIB, randomBytes, TS0 } from "./protocol.mjs";

const body1k = randomBytes(KIB);
const chunk = randomBytes(64 * KIB);

export const baselineWorkloads = [
  {
    id: "a",
    title: "(a) no-op request: GET /",
    server: "noop",
    run: async (ctx) => [
      await ctx.measure({
        id: "a",
        title: "(a) no-op request: GET /",
        total: ctx.scale.requests,
        expectedRecords: ctx.scale.requests,
        maxSeconds: ctx.scale.maxSeconds,
        warmup: { total: 500, makeRequest: () => ({ path: "/" }) },
        makeRequest: () => ({ path: "/" }),
      }),
    ],
  },
  {
    id: "b",
    title: "(b) Worker → DO RPC, insert one 1 KiB SQLite row",
    server: "doRow",
    run: async (ctx) => {
      const write = (ts) => ({ method: "POST", path: `/rec?ts=${ts}`, body: body1k, bytes: KIB });
      return [
        await ctx.measure({
          id: "b",
          title: "(b) Worker → DO RPC, insert one 1 KiB SQLite row",
          total: ctx.scale.records,
          expectedRecords: ctx.scale.records,
          maxSeconds: ctx.scale.maxSeconds,
          warmup: { total: 200, makeRequest: (j) => write(j + 1) },
          makeRequest: (i) => write(TS0 + i),
        }),
      ];
    },
  },
  {
    id: "c",
    title: "(c) naive store: 1 KiB record → 1 R2 object + 1 D1 row",
    server: "naive",
    run: async (ctx) => {
      const write = (ts) => ({ method: "POST", path: `/rec?ts=${ts}`, body: body1k, bytes: KIB });
      return [
        await ctx.measure({
          id: "c",
          title: "(c) naive store: 1 KiB record → 1 R2 object + 1 D1 row",
          total: ctx.scale.records,
          expectedRecords: ctx.scale.records,
          maxSeconds: ctx.scale.maxSeconds,
          warmup: { total: 200, makeRequest: (j) => write(j + 1) },
          makeRequest: (i) => write(TS0 + i),
        }),
      ];
    },
  },
  largePuts("c-raw", "/raw", "(c) raw R2 put of the request body"),
  largePuts("c-piped", "/raw-piped", "(c) diagnostic: R2 put via a JS length guard + FixedLengthStream", true),
];

/** Streamed puts of the W3 sizes, one connection, peak RSS measured. */
function largePuts(idPrefix, route, title, fullOnly = false) {
  return {
    id: idPrefix,
    title: `${title} (W3 sizes), 1 connection`,
    server: "naive",
    fullOnly,
    run: async (ctx) => {
      const results = [];
      for (const [label, size, count] of ctx.scale.large) {
        const put = (key) => ({
          method: "PUT",
          path: `${route}?key=${key}`,
          body: { size, chunk },
          bytes: size,
          timeoutMs: 300_000,
        });
        results.push(
          await ctx.measure({
            id: `${idPrefix}-${label}`,
            title: `${title}, ${label}`,
            connections: 1,
            total: count,
            expectedRecords: count,
            maxSeconds: ctx.scale.largeMaxSeconds,
            rss: true,
            keepAlive: false,
            warmup: results.length === 0 ? { total: 1, makeRequest: () => put("warmup") } : undefined,
            makeRequest: (i) => put(`${label}-${i}`),
          }),
        );
      }
      return results;
    },
  };
}
