/**
 * The object's side of a large-record upload: the edge reserves a timestamp and quota, streams the
 * bytes to their own R2 object, then commits (the record becomes visible) or aborts (the
 * timestamp is released and the object left to the alarm's garbage collection).
 */

import type { Result } from "../errors";
import type { ErrorInfo, ItemOutcome, RecordMeta, UploadTicket } from "../model/records";
import type { UsageTraffic } from "./duties/usage-traffic";
import { newEffects, type WriteEffects } from "./duties/write-effects";
import type { RecordIndex } from "./record-index";
import { commitRecord, type OpsContext, abortUpload as releaseUpload, reserveRecord } from "./record-ops";
import type { BucketRow } from "./tables/bucket-row";

type Ok = Result<Record<never, never>>;

/** What the protocol needs of its object: its storage, index, duties and transactions. */
export interface UploadHost {
  storage: DurableObjectStorage;
  index: RecordIndex;
  effects: WriteEffects;
  traffic: UsageTraffic;
  scheduleAlarm: (atMs: number) => Promise<void>;
  opsContext: (bucket: BucketRow, nowMs?: number) => OpsContext;
  transact: (bucket: BucketRow, operation: (ops: OpsContext) => ItemOutcome) => ItemOutcome;
}

/** Reserves timestamp and quota for a record the edge streams straight to R2. */
export async function reserveUpload(host: UploadHost, row: BucketRow, meta: RecordMeta): Promise<Result<UploadTicket>> {
  const effects = newEffects();
  let ticket: UploadTicket | undefined;
  const outcome = host.transact(row, (ops) => {
    const reserved = reserveRecord(ops, effects, meta);
    if (reserved.ok) ticket = { objectKey: reserved.objectKey, leaseMs: reserved.leaseMs };
    return reserved.ok ? { ok: true } : reserved;
  });
  await host.effects.afterWrite(effects);
  await host.scheduleAlarm(Date.now() + (ticket?.leaseMs ?? 0));
  return outcome.ok && ticket ? { ok: true, ...ticket } : (outcome as { ok: false; error: ErrorInfo });
}

/** The streamed object is durable in R2: make the record visible (or collect it if the bucket is not live). */
export async function commitUpload(
  host: UploadHost,
  row: BucketRow | { ok: false; error: ErrorInfo },
  entry: string,
  ts: number,
  objectKey: string,
): Promise<Ok> {
  if ("error" in row) {
    host.storage.transactionSync(() => host.index.collectGarbage(objectKey, Date.now()));
    await host.scheduleAlarm(Date.now());
    return row;
  }
  const effects = newEffects();
  const outcome = host.transact(row, (ops) => {
    const committed = commitRecord(ops, effects, entry, ts, objectKey);
    if (committed.ok) host.traffic.countWrites(row.name, effects.written, ops.nowMs);
    return committed;
  });
  await host.effects.afterWrite(effects);
  return outcome.ok ? { ok: true } : outcome;
}

/** The upload failed or was cut short: release the timestamp; the object is deleted by the alarm. */
export async function abortUpload(host: UploadHost, row: BucketRow | undefined, objectKey: string): Promise<void> {
  const nowMs = Date.now();
  host.storage.transactionSync(() => {
    if (row) releaseUpload(host.opsContext(row, nowMs), objectKey);
    else host.index.collectGarbage(objectKey, nowMs);
  });
  await host.scheduleAlarm(nowMs);
}
