/**
 * W7buckets: 64 buckets (64 Durable Objects) written at once, one connection per bucket, each
 * sending v1 batches of 80 × 1 KiB back to back until a common deadline. Besides the aggregate
 * rate it reports per-bucket fairness: the records each bucket had acknowledged when the window
 * closed, as min/median/max rate and Jain's index ((Σx)² / (n·Σx²): 1 = all equal, 1/n = one
 * bucket got everything).
 */
import { percentile } from "../../scripts/lib/stats.ts";
import { createClient, send } from "../lib/http-load.ts";
import { type BucketsSummary, type Session, serverOf, type Unit } from "../lib/types.ts";
import { batchRecords, batchV1Write, json, KIB, okWithoutRecordErrors, randomBytes, TS0 } from "./protocol.ts";

const BUCKETS = 64;
const PER_BATCH = 80;
const ENTRY = "w7";
const bucketName = (i: number): string => `bench-w7-${String(i).padStart(2, "0")}`;
const body1k = randomBytes(KIB);

/** Jain's fairness index of `values` (1 when all are equal). */
export function jainIndex(values: number[]): number {
  const sum = values.reduce((a, b) => a + b, 0);
  const squares = values.reduce((a, b) => a + b * b, 0);
  return squares > 0 ? (sum * sum) / (values.length * squares) : Number.NaN;
}

export function bucketsUnit(): Unit {
  const summary: BucketsSummary = { buckets: BUCKETS, windowSeconds: 0, minRate: 0, medianRate: 0, maxRate: 0, jain: 0 };
  return {
    id: "W7buckets",
    title: `W7 ${BUCKETS} buckets written at once: batch v1, ${PER_BATCH} × 1 KiB per request, one connection per bucket`,
    server: "reductEdge",
    requires: (features) => (features.batchV1?.ok ? undefined : `batchV1: ${features.batchV1?.reason ?? "not probed"}`),
    prepare: async (ctx) => {
      const client = createClient(serverOf(ctx, "reductEdge").port, 8);
      try {
        // Created and written once each before the load, so object creation is not measured.
        await Promise.all(
          Array.from({ length: BUCKETS }, async (_, i) => {
            const created = await send(client, { method: "POST", path: `/api/v1/b/${bucketName(i)}`, ...json({}) });
            if (created.status !== 200) throw new Error(`cannot create ${bucketName(i)}: HTTP ${created.status} ${created.body}`);
            const first = await send(client, batchV1Write(bucketName(i), "warmup", batchRecords(TS0, 0, PER_BATCH, body1k)));
            const problem = okWithoutRecordErrors(first);
            if (problem) throw new Error(`warm-up write to ${bucketName(i)}: ${problem}`);
          }),
        );
      } finally {
        client.close();
      }
    },
    spec: (ctx) => {
      const windowSeconds = ctx.quick ? 8 : 20;
      const maxBatches = ctx.quick ? 40 : 200;
      const acknowledged = new Array<number>(BUCKETS).fill(0);
      let deadline = Number.POSITIVE_INFINITY;
      const session: Session = async (lane, call, timeLeft) => {
        // Lanes start in order and synchronously up to their first request: lane 0 sets the deadline.
        if (lane === 0) deadline = performance.now() + windowSeconds * 1000;
        for (let batch = 0; batch < maxBatches && timeLeft() > 0 && performance.now() < deadline; batch++) {
          const response = await call(batchV1Write(bucketName(lane), ENTRY, batchRecords(TS0, batch, PER_BATCH, body1k)), {
            check: okWithoutRecordErrors,
          });
          if (response && performance.now() <= deadline) acknowledged[lane] = (acknowledged[lane] ?? 0) + PER_BATCH;
        }
      };
      return {
        connections: BUCKETS,
        session,
        maxSeconds: windowSeconds + 30,
        objects: Array.from({ length: BUCKETS }, (_, i) => `BUCKETS:${bucketName(i)}`),
        settle: { minMs: 0, quietMs: 1_000, maxMs: 10_000 },
        compareTo: ["W2v1"],
        afterLoad: () => {
          const rates = acknowledged.map((records) => records / windowSeconds);
          const sorted = [...rates].sort((a, b) => a - b);
          Object.assign(summary, {
            windowSeconds,
            perBucketRecords: acknowledged,
            minRate: sorted[0] ?? 0,
            medianRate: percentile(sorted, 50),
            maxRate: sorted[sorted.length - 1] ?? 0,
            jain: jainIndex(rates),
          });
        },
        notes: [
          `each bucket loads until a common ${windowSeconds} s deadline (at most ${maxBatches} batches); per-bucket rates count records acknowledged by then`,
        ],
        extra: { buckets: summary },
      };
    },
    finish: (ctx, result) => {
      const b = result.buckets;
      if (!b) return;
      ctx.log(
        `W7buckets: per-bucket rec/s min ${b.minRate.toFixed(0)}, median ${b.medianRate.toFixed(0)}, max ${b.maxRate.toFixed(0)}, Jain's index ${b.jain.toFixed(3)} over ${b.buckets} buckets`,
      );
    },
  };
}
