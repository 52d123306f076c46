/**
 * Label updates and removals of ready records, and entry removal and rename, as synchronous
 * functions over the record index: each runs inside one `transactionSync` of the bucket object.
 */
import { fail } from "../errors";
import { isMetaEntry } from "../model/entry-names";
import type { ErrorInfo, ItemOutcome, LabelChanges, Labels } from "../model/records";
import { labelViolation, mergeLabels } from "../storage/label-rules";
import { recordMetaLength } from "../storage/record-meta";
import { renameKindError } from "./bucket-store";
import { entryNotFound, recordNotFound, stillBeingWritten } from "./record-errors";
import type { RecordRow } from "./record-index";
import type { OpsContext } from "./record-ops";
import type { EntryRef } from "./tables/entries";

/**
 * Checks a label update of one record and returns its new labels, or the failure. The label rules
 * hold on the merged result, so no series of updates can grow a record past what reads can return.
 */
export function planLabelUpdate(
  ctx: OpsContext,
  entryName: string,
  ts: number,
  changes: LabelChanges,
  /** Labels earlier items of the same batch gave records of this entry, by timestamp. */
  plannedInEntry?: ReadonlyMap<number, Labels>,
):
  | { ok: true; entry: EntryRef; update: { ts: number; labels: Labels; meta_len: number }; stored: Labels }
  | { ok: false; error: ErrorInfo } {
  const entry = ctx.index.entry(entryName);
  if (!entry) return entryNotFound(ctx.bucket.name, entryName);
  const row = ctx.index.record(entry.id, ts);
  if (!row) return recordNotFound(ctx.bucket.name, entryName, ts);
  if (row.state === "pending") return stillBeingWritten(ctx.bucket.name, entryName, ts);
  const before = plannedInEntry?.get(ts) ?? row.labels;
  const merged = mergeLabels(before, changes);
  const problem = labelViolation(merged);
  if (problem !== null) return fail(422, problem);
  const labels: Labels = Object.fromEntries(merged);
  // An attachment is found and replaced by its key: an update may change it, never take it away.
  if (isMetaEntry(entryName) && labels.key === undefined) {
    return fail(422, `System entry '${entryName}' records must contain label 'key'`);
  }
  if (
    isMetaEntry(entryName) &&
    labels.key !== before.key &&
    attachmentKeyTaken(ctx, entry, ts, labels.key ?? "", plannedInEntry)
  ) {
    return fail(422, `An attachment of '${entryName}' already has key '${labels.key}'`);
  }
  const begin = row.block_begin;
  const metaLen = recordMetaLength({
    ts,
    begin,
    end: begin + row.size,
    labels,
    contentType: row.content_type,
    finished: true,
  });
  return { ok: true, entry, update: { ts, labels, meta_len: metaLen }, stored: row.labels };
}

/** True when two label sets hold the same names and values. */
function sameLabels(a: Labels, b: Labels): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => b[name] === a[name]);
}

/**
 * True when a record of `entry` other than `ts` holds `key`, with the labels earlier items of the
 * same batch gave them. Attachments are replaced and removed by key, so a key names one record.
 */
function attachmentKeyTaken(
  ctx: OpsContext,
  entry: EntryRef,
  ts: number,
  key: string,
  plannedInEntry: ReadonlyMap<number, Labels> | undefined,
): boolean {
  for (const [plannedTs, labels] of plannedInEntry ?? []) if (plannedTs !== ts && labels.key === key) return true;
  return ctx.index
    .readyWhere(entry.id, (labels) => labels.key === key)
    .some((holder) => holder.ts !== ts && (plannedInEntry?.get(holder.ts)?.key ?? key) === key);
}

/** Applies label changes (empty value = delete) to a ready record; the descriptor grows by state. */
export function updateLabels(ctx: OpsContext, entryName: string, ts: number, changes: LabelChanges): ItemOutcome {
  const planned = planLabelUpdate(ctx, entryName, ts, changes);
  if (!planned.ok) return planned;
  ctx.index.updateLabels(planned.entry.id, [planned.update]);
  // An update that changes nothing is not replicated: two stores replicating into each other
  // would otherwise echo it back and forth for ever.
  if (!sameLabels(planned.update.labels, planned.stored)) ctx.journal?.logged(entryName, ts, planned.update.labels, "labels");
  return { ok: true };
}

/** Checks that a record may be removed and returns its row, or the failure. */
export function planRemoval(
  ctx: OpsContext,
  entryName: string,
  ts: number,
): { ok: true; row: RecordRow } | { ok: false; error: ErrorInfo } {
  if (isMetaEntry(entryName)) {
    return fail(422, `Can't delete records from system entry '${entryName}'; use label update with remove=true`);
  }
  const entry = ctx.index.entry(entryName);
  if (!entry) return entryNotFound(ctx.bucket.name, entryName);
  const row = ctx.index.record(entry.id, ts);
  if (!row || row.state === "pending") return recordNotFound(ctx.bucket.name, entryName, ts);
  return { ok: true, row };
}

export function removeRecord(ctx: OpsContext, entryName: string, ts: number): ItemOutcome {
  const planned = planRemoval(ctx, entryName, ts);
  if (!planned.ok) return planned;
  ctx.index.removeRecords([planned.row], ctx.nowMs);
  return { ok: true };
}

/** Batch label updates: one outcome per item, in order; each touched chunk is rewritten once. An item sees earlier items' labels. */
export function updateLabelsBatch(ctx: OpsContext, items: { entry: string; ts: number; changes: LabelChanges }[]): ItemOutcome[] {
  const planned = new Map<
    string,
    { entry: string; entryId: number; update: { ts: number; labels: Labels; meta_len: number }; stored: Labels }
  >();
  const plannedLabels = new Map<string, Map<number, Labels>>();
  const results = items.map((item): ItemOutcome => {
    const key = `${item.entry}\u0000${item.ts}`;
    const inEntry = plannedLabels.get(item.entry) ?? new Map<number, Labels>();
    const plan = planLabelUpdate(ctx, item.entry, item.ts, item.changes, inEntry);
    if (!plan.ok) return plan;
    planned.set(key, { entry: item.entry, entryId: plan.entry.id, update: plan.update, stored: plan.stored });
    inEntry.set(item.ts, plan.update.labels);
    plannedLabels.set(item.entry, inEntry);
    return { ok: true };
  });
  const byEntry = new Map<number, { ts: number; labels: Labels; meta_len: number }[]>();
  for (const { entryId, update } of planned.values()) {
    const list = byEntry.get(entryId);
    if (list) list.push(update);
    else byEntry.set(entryId, [update]);
  }
  for (const [entryId, updates] of byEntry) ctx.index.updateLabels(entryId, updates);
  for (const { entry, update, stored } of planned.values())
    if (!sameLabels(update.labels, stored)) ctx.journal?.logged(entry, update.ts, update.labels, "labels");
  return results;
}

/** Batch removals: one outcome per item, in order; each touched chunk, block and entry is rewritten once. */
export function removeBatch(ctx: OpsContext, items: { entry: string; ts: number }[]): ItemOutcome[] {
  const removed = new Map<string, RecordRow>();
  const results = items.map((item): ItemOutcome => {
    const key = `${item.entry}\u0000${item.ts}`;
    if (removed.has(key)) return recordNotFound(ctx.bucket.name, item.entry, item.ts);
    const plan = planRemoval(ctx, item.entry, item.ts);
    if (!plan.ok) return plan;
    removed.set(key, plan.row);
    return { ok: true };
  });
  ctx.index.removeRecords([...removed.values()], ctx.nowMs);
  return results;
}

/** Removes an entry with all its descendants (`a` removes `a/b`, `a/$meta`, …). */
export function removeEntryTree(ctx: OpsContext, entryName: string): ItemOutcome {
  if (isMetaEntry(entryName)) return fail(409, `System entry '${entryName}' can be removed only with its parent entry`);
  const subtree = ctx.index.subtree(entryName);
  if (subtree.length === 0) return entryNotFound(ctx.bucket.name, entryName);
  ctx.index.dropEntries(subtree, ctx.nowMs);
  return { ok: true };
}

/** Renames an entry; descendants move along and missing parents of the target appear. */
export function renameEntryTree(ctx: OpsContext, entryName: string, newName: string): ItemOutcome {
  const kindError = renameKindError(entryName, newName);
  if (kindError) return { ok: false, error: kindError };
  const subtree = ctx.index.subtree(entryName);
  if (subtree.length === 0) return entryNotFound(ctx.bucket.name, entryName);
  const inside = newName === entryName || newName.startsWith(`${entryName}/`);
  if (inside || ctx.index.entry(newName)) return fail(409, `Entry '${newName}' already exists in bucket '${ctx.bucket.name}'`);
  for (const entry of subtree) ctx.index.renameEntry(entry.id, newName + entry.name.slice(entryName.length));
  ctx.index.ensureEntry(newName);
  return { ok: true };
}
