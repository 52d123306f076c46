/**
 * Group commit of record writes: `writeRecords` calls that reach the object while one group is
 * being gathered (within one macrotask) are written in one transaction, so concurrent single-record
 * writes share the chunk, block, entry and usage rows a transaction updates instead of each paying
 * for them. Every caller still gets its own outcome per record, as if its call had run alone after
 * the ones before it in the group; a caller is answered only after the transaction holding its
 * records committed (and after the write's effects, as before).
 */
import type { Result } from "../errors";
import type { ItemOutcome, StagedItem } from "../model/records";

export type Written = Result<{ outcomes: ItemOutcome[] }>;

/** Payload bytes one transaction takes from the queue (a larger single call still gets its own). */
export const GROUP_MAX_BYTES = 4 * 1024 * 1024;
/** How long a group waits at most for calls it expects (see WriteGroups.gathered). */
export const GATHER_MS = 1;

export interface GroupHost {
  /**
   * Writes the calls in one transaction: one result per call, in order, and the effects to run
   * once it committed. Throws (writing nothing) on an unexpected failure.
   */
  commit(calls: StagedItem[][]): { written: Written[]; after: () => Promise<void> };
}

interface Waiting {
  items: StagedItem[];
  bytes: number;
  resolve: (written: Written) => void;
  reject: (error: unknown) => void;
}

const bytesOf = (items: StagedItem[]) => items.reduce((sum, item) => sum + item.payload.byteLength, 0);

export class WriteGroups {
  private waiting: Waiting[] = [];
  private scheduled = false;
  /** Calls in the last group: concurrent writers answered together tend to come back together. */
  private lastGroupCalls = 1;

  constructor(private readonly host: GroupHost) {}

  write(items: StagedItem[]): Promise<Written> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ items, bytes: bytesOf(items), resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // One macrotask: calls already delivered to the object join this group.
      setTimeout(() => this.gathered(false), 0);
    });
  }

  /**
   * Fewer calls than last time: the others are likely on their way, so the group waits once for
   * GATHER_MS more. A lone writer never waits (its group had one call).
   */
  private gathered(waited: boolean): void {
    if (!waited && this.waiting.length < this.lastGroupCalls) {
      setTimeout(() => this.gathered(true), GATHER_MS);
      return;
    }
    void this.flush();
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.lastGroupCalls = this.waiting.length;
    const waiting = this.waiting;
    this.waiting = [];
    // Every transaction commits before any effect is awaited, so commits keep the calls' order.
    const committed: { group: Waiting[]; written: Written[]; after: () => Promise<void> }[] = [];
    for (const group of split(waiting)) {
      try {
        committed.push({ group, ...this.host.commit(group.map((call) => call.items)) });
      } catch (error) {
        if (group.length === 1) {
          group[0]?.reject(error);
          continue;
        }
        // One call's unexpected failure must not fail the others: each is retried on its own.
        for (const call of group) {
          try {
            committed.push({ group: [call], ...this.host.commit([call.items]) });
          } catch (alone) {
            call.reject(alone);
          }
        }
      }
    }
    for (const { group, written, after } of committed) {
      try {
        await after();
        group.forEach((call, i) => {
          const result = written[i];
          if (result) call.resolve(result);
          else call.reject(new Error("write group lost a result"));
        });
      } catch (error) {
        for (const call of group) call.reject(error);
      }
    }
  }
}

/** Consecutive calls, each group within GROUP_MAX_BYTES (a larger call alone). */
function split(waiting: Waiting[]): Waiting[][] {
  const groups: Waiting[][] = [];
  let current: Waiting[] = [];
  let bytes = 0;
  for (const call of waiting) {
    if (current.length > 0 && bytes + call.bytes > GROUP_MAX_BYTES) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(call);
    bytes += call.bytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
