/**
 * Writes of a bucket object into its own bucket: the `$system` object's usage report and events.
 * The bucket is created with `$system`'s settings first when it is missing.
 */
import type { ErrorInfo, ItemOutcome, StagedItem } from "../model/records";

export interface OwnBucket {
  name: string;
  write: (items: StagedItem[]) => Promise<{ ok: true; outcomes: ItemOutcome[] } | { ok: false; error: ErrorInfo }>;
  create: () => Promise<unknown>;
}

export async function writeOwnRecords(own: OwnBucket, items: StagedItem[]): Promise<ItemOutcome[]> {
  let written = await own.write(items);
  if (!written.ok && written.error.status === 404) {
    await own.create();
    written = await own.write(items);
  }
  if (!written.ok) throw new Error(`writing into ${own.name} failed: ${written.error.message}`);
  return written.outcomes;
}
