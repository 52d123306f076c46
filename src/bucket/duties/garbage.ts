/**
 * Garbage and purges: deletes R2 objects no record points to any more, and removes deleted
 * bucket generations (their D1 registry row, and their R2 prefix unless a rename moved it).
 */
import { deleteObjects, OBJECT_DELETE_BATCH, purgeGenerationPage, type RecordsBinding } from "../../storage/bucket-objects";
import type { BucketTables } from "../tables";
import type { UsageFlush } from "./usage-flush";

export interface GarbageDeps {
  tables: BucketTables;
  /** Read on every use: tests wrap the binding to inject R2 faults. */
  records: () => RecordsBinding;
  usage: UsageFlush;
  now: () => number;
}

export class Garbage {
  constructor(private readonly deps: GarbageDeps) {}

  /** Deletes due garbage objects in batches until none is due or the deadline passed. */
  async deleteDue(deadline: number): Promise<void> {
    const { garbage } = this.deps.tables;
    while (this.deps.now() < deadline) {
      const keys = garbage.due(this.deps.now(), OBJECT_DELETE_BATCH);
      if (keys.length === 0) return;
      await deleteObjects(this.deps.records(), keys);
      for (const key of keys) garbage.forget(key);
    }
  }

  /** Removes each queued generation's registry row, then its objects page by page. */
  async purgeDeletedGenerations(deadline: number): Promise<void> {
    const { purges } = this.deps.tables;
    for (const { generation, name, purgeObjects } of purges.list()) {
      await this.deps.usage.deleteRegistryRow(name, generation);
      let done = !purgeObjects; // a renamed bucket's objects live on under the new name
      while (!done && this.deps.now() < deadline) done = await purgeGenerationPage(this.deps.records(), generation);
      if (done) purges.finish(generation);
    }
  }

  nextGarbageAt(): number | null {
    return this.deps.tables.garbage.nextAt();
  }

  nextPurgeAt(): number | null {
    return this.deps.tables.purges.list().length > 0 ? this.deps.now() : null;
  }
}
