/**
 * Lifecycle policies follow a bucket rename. The copy brings them with their progress, but their
 * settings still name the old bucket, and so does D1. This moves each one to the new name in D1,
 * rewrites the local settings the same way (progress and schedule stay), takes D1's policies of
 * this bucket as the set to run, and hands the old name what D1 still holds for it, so a bucket
 * created under the old name runs nothing of the renamed one. It runs right after the rename and
 * from the alarm until it succeeds; every step is idempotent, so a retry after a crash is safe.
 *
 * A provisioned policy is not moved: the variables name its bucket, so it stays with the old name
 * (the renamed bucket stops running it), as provisioning would put it back on the next start.
 */
import { type LifecycleRow, lifecycleRowsOfBucket, moveLifecycleToBucket } from "../../d1/lifecycles";
import type { LifecycleSettings } from "../lifecycle-settings";
import type { BucketTables } from "../tables";

export type PolicySet = { name: string; settings: LifecycleSettings }[];

export interface LifecycleRenameDeps {
  storage: DurableObjectStorage;
  tables: BucketTables;
  db: () => D1Database;
  /** Hands the object of another bucket name D1's policies of that name. */
  handOver: (bucket: string, policies: PolicySet) => Promise<void>;
  frozen: () => boolean;
  now: () => number;
}

interface StalePolicy {
  name: string;
  settings: LifecycleSettings;
  /** The bucket name the settings still carry. */
  from: string;
}

const asPolicySet = (rows: LifecycleRow[]): PolicySet =>
  rows.map((row) => ({ name: row.name, settings: JSON.parse(row.settings) as LifecycleSettings }));

/** The settings under the new name, serialised as the API stores them (same key order). */
export function renamedSettings(settings: LifecycleSettings, bucket: string): string {
  return JSON.stringify({ ...settings, bucket });
}

export class LifecycleRenameFollow {
  constructor(private readonly deps: LifecycleRenameDeps) {}

  /** Local policies whose settings name another bucket than this one: copied by a rename. */
  private stale(): StalePolicy[] {
    const bucket = this.deps.tables.bucket.get();
    if (!bucket || this.deps.frozen()) return [];
    const found: StalePolicy[] = [];
    for (const row of this.deps.tables.lifecyclePolicies.all()) {
      const settings = JSON.parse(row.settings) as LifecycleSettings;
      if (settings.bucket !== bucket.name) found.push({ name: row.name, settings, from: settings.bucket });
    }
    return found;
  }

  /** Names a policy replacement from D1 must keep until they are moved (D1 may not have them yet). */
  staleNames(): ReadonlySet<string> {
    return new Set(this.stale().map((policy) => policy.name));
  }

  async run(): Promise<void> {
    const stale = this.stale();
    const bucket = this.deps.tables.bucket.get();
    if (stale.length === 0 || !bucket) return;
    const db = this.deps.db();
    for (const policy of stale) {
      await moveLifecycleToBucket(db, policy.name, policy.from, bucket.name, renamedSettings(policy.settings, bucket.name));
    }
    const own = await lifecycleRowsOfBucket(db, bucket.name);
    // Before the local rewrite: until it, the policies count as not moved, so a failed hand-over
    // is retried.
    for (const from of new Set(stale.map((policy) => policy.from))) {
      await this.deps.handOver(from, asPolicySet(await lifecycleRowsOfBucket(db, from)));
    }
    const { storage, tables } = this.deps;
    storage.transactionSync(() => {
      // The bucket may have been removed or frozen for another rename while D1 answered.
      if (tables.bucket.get()?.name !== bucket.name || this.deps.frozen()) return;
      const current = new Map(own.map((row) => [row.name, row.settings]));
      for (const policy of stale) {
        const moved = renamedSettings(policy.settings, bucket.name);
        if (current.get(policy.name) === moved) tables.lifecyclePolicies.rewriteSettings(policy.name, moved);
      }
      // What D1 holds is what runs: a policy it did not move (provisioned, changed or removed
      // meanwhile) leaves this bucket, a changed one restarts its schedule.
      tables.lifecyclePolicies.replaceAll(
        own.map((row) => ({ name: row.name, settings: row.settings })),
        this.deps.now(),
      );
    });
  }

  /** Due at once while a copied policy is not moved yet (a failed run retries from the alarm). */
  nextDueAt(): number | null {
    return this.stale().length > 0 ? this.deps.now() : null;
  }
}
