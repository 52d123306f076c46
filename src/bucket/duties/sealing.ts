/**
 * Sealing: writes a block's staged records to one R2 object and points the records at it. Writes
 * start seals of full blocks off the request path; the alarm seals the rest and idle blocks.
 */
import { SEAL_IDLE_MS, SEAL_LEASE_MS } from "../../storage/blocks";
import { putBlockObject, type RecordsBinding } from "../../storage/bucket-objects";
import { blockObjectKey } from "../../storage/r2";
import type { RecordIndex } from "../record-index";
import type { BucketTables } from "../tables";

/** Seals started by writes that may run at once in one object (the alarm does the rest). */
export const MAX_CONCURRENT_SEALS = 2;
/** While a rename freezes the bucket, the alarm looks again this often. */
export const RENAME_FROZEN_RECHECK_MS = 5_000;

export interface SealingDeps {
  storage: DurableObjectStorage;
  tables: BucketTables;
  index: RecordIndex;
  /** Read on every use: tests wrap the binding to inject R2 faults. */
  records: () => RecordsBinding;
  now: () => number;
  /** A bucket being renamed is frozen: its index is being copied, so nothing may change it. */
  frozen: () => boolean;
}

export class Sealing {
  /** Seals running in this instance, by block id: a block is never sealed twice at once. */
  private readonly running = new Map<number, Promise<void>>();

  constructor(private readonly deps: SealingDeps) {}

  /**
   * Starts sealing a block off the request path. At most MAX_CONCURRENT_SEALS run at once (each
   * holds up to 8 MiB twice); the rest, and whatever fails, is sealed by the alarm.
   */
  kick(blockId: number): void {
    if (this.running.has(blockId) || this.running.size >= MAX_CONCURRENT_SEALS) return;
    void this.sealOnce(blockId).catch((error) => console.error(`sealing block ${blockId} failed; the alarm retries:`, error));
  }

  /** The alarm's part: seal closed and idle blocks until the deadline. */
  async run(deadline: number): Promise<void> {
    if (this.deps.frozen()) return;
    for (const block of this.deps.index.blocksToSeal(this.deps.now() - SEAL_IDLE_MS, 100)) {
      if (this.deps.now() >= deadline) return;
      await this.sealOnce(block.id); // joins a seal a write started, instead of skipping it
    }
  }

  nextDueAt(): number | null {
    if (this.deps.frozen()) return this.deps.now() + RENAME_FROZEN_RECHECK_MS; // sealing waits until the rename is over
    return this.deps.index.nextIdleSealAt(SEAL_IDLE_MS);
  }

  /** Seals a block, or joins the seal of it already running. */
  private sealOnce(blockId: number): Promise<void> {
    const running = this.running.get(blockId);
    if (running) return running;
    const sealing = this.seal(blockId).finally(() => this.running.delete(blockId));
    this.running.set(blockId, sealing);
    return sealing;
  }

  /**
   * The key is unique per attempt and registered as garbage first (intent), so a crash mid-put
   * leaves nothing behind after the lease; the commit removes the intent.
   */
  private async seal(blockId: number): Promise<void> {
    const { storage, tables, index } = this.deps;
    const bucket = tables.bucket.get();
    let block = index.block(blockId);
    if (!bucket || !block || block.state === "sealed") return;
    if (block.state === "open") {
      const open = block;
      storage.transactionSync(() => index.closeBlock(open));
    }
    const staged = index.stagedRecordsOf(block);
    if (staged.length === 0) {
      index.sealEmpty(blockId);
      return;
    }
    const total = staged.reduce((sum, record) => sum + record.size, 0);
    const bytes = new Uint8Array(total);
    const offsets = new Map<number, number>();
    let offset = 0;
    for (const record of staged) {
      offsets.set(record.ts, offset);
      bytes.set(record.bytes, offset);
      offset += record.size;
    }
    const key = `${blockObjectKey(bucket.generation, block.entry_id, blockId)}-${crypto.randomUUID().slice(0, 8)}`;
    index.collectGarbage(key, this.deps.now() + SEAL_LEASE_MS);
    await putBlockObject(this.deps.records(), key, bytes);
    storage.transactionSync(() => {
      block = index.block(blockId);
      if (!block || block.state === "sealed") return; // the object stays garbage
      if (this.deps.frozen() || !tables.bucket.get()) return; // frozen for a rename: retried later
      index.commitSeal(block, key, total, offsets);
      index.forgetGarbage(key);
    });
  }
}
