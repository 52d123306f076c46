/**
 * Bucket rename, both sides. The object of the new name (target) pulls the index from the object
 * of the old name (source) in pages, under an attempt id the source hands out. R2 payloads stay
 * where they are: their keys live under the bucket generation, which travels with the index.
 */
import { fail, type Result } from "../../errors";
import { BUCKET_TABLES, type ExportPage, exportPage, importRows, RENAME_STALE_MS } from "../rename";
import { type BucketTables, clearBucketData } from "../tables";
import type { BucketRow } from "../tables/bucket-row";
import { REPLICATIONS_COPY } from "../tables/replications";
import { STATS_FLUSH_DELAY_MS, type UsageFlush } from "./usage-flush";

type Ok = Result<Record<never, never>>;
const OK = { ok: true } as const;

const bucketNotFound = (name: string) => fail(404, `Bucket '${name}' is not found`);

/** What the target calls on the source (the source object's RPC methods). */
export interface RenameSource {
  beginRenameOut(newName: string): Promise<Result<{ bucket: BucketRow; attempt: string }>>;
  exportRenamePage(attempt: string, table: string, after: SqlStorageValue[] | null): Promise<Result<ExportPage>>;
  finishRenameOut(attempt: string): Promise<Ok>;
}

export interface RenameDeps {
  storage: DurableObjectStorage;
  tables: BucketTables;
  usage: UsageFlush;
  /** The object of another bucket name. */
  sourceOf: (name: string) => RenameSource;
  now: () => number;
  scheduleAlarm: (atMs: number) => Promise<void>;
  /** Moves the copied lifecycle policies to the new name in D1 (the alarm retries a failure). */
  followLifecycles: () => Promise<void>;
}

export class Rename {
  constructor(private readonly deps: RenameDeps) {}

  private clear(): void {
    this.deps.storage.transactionSync(() => clearBucketData(this.deps.tables));
  }

  /**
   * A rename whose copy made no progress for RENAME_STALE_MS was abandoned (the caller went away):
   * the source thaws (its attempt id is cleared, so the old copy can no longer finish) and a
   * target placeholder is dropped. Returns the row as it is afterwards.
   */
  abandonStalled(row: BucketRow | undefined): BucketRow | undefined {
    if (!row || (!row.renaming_from && !row.renaming_to)) return row;
    if (row.rename_finishing) return row; // the source may have handed over: only a retry resolves it
    if (this.deps.now() - (row.renaming_since_ms ?? 0) < RENAME_STALE_MS) return row;
    if (row.renaming_from) {
      this.clear();
      return undefined;
    }
    this.deps.tables.bucket.thawRenameOut();
    return this.deps.tables.bucket.get();
  }

  // ---- target side --------------------------------------------------------------------------

  /**
   * Phases on the target side:
   * - reserve: a placeholder row (`renaming_from`) before the first await, so creates get 409;
   * - copy: pages pulled from the source under its attempt id; a page for any other attempt is
   *   refused, and every page checks the placeholder is still this attempt's;
   * - finishing (durable flag): from here the copy is never dropped, because the source may have
   *   handed over already; the hand-over call is idempotent and is simply retried, also by a
   *   later rename request.
   */
  async into(newName: string, oldName: string): Promise<Ok> {
    const { storage, tables } = this.deps;
    const existing = this.abandonStalled(tables.bucket.get());
    if (existing && existing.renaming_from !== oldName) {
      return fail(409, existing.renaming_from ? `Bucket '${newName}' is being renamed` : `Bucket '${newName}' already exists`);
    }
    if (existing?.rename_finishing && existing.rename_attempt) return this.finishInto(oldName, existing.rename_attempt);
    if (existing) return fail(409, `Bucket '${newName}' is being renamed`); // another request is copying

    storage.transactionSync(() => {
      clearBucketData(tables);
      tables.bucket.insertRenamePlaceholder(newName, oldName, this.deps.now());
    });
    const source = this.deps.sourceOf(oldName);
    let attempt: string | null = null;
    /** Drops this request's placeholder, unless another request or the finishing phase owns it. */
    const abandon = () => {
      const row = tables.bucket.get();
      if (row?.renaming_from === oldName && row.rename_attempt === attempt && !row.rename_finishing) this.clear();
    };
    try {
      const started = await source.beginRenameOut(newName);
      if (!started.ok) {
        abandon();
        return { ok: false, error: started.error };
      }
      attempt = started.attempt;
      tables.bucket.adoptRenamedSettings(started.bucket, attempt);
      for (const spec of BUCKET_TABLES) {
        let after: SqlStorageValue[] | null = null;
        do {
          const page = await source.exportRenamePage(attempt, spec.table, after);
          if (!page.ok || tables.bucket.get()?.rename_attempt !== attempt) {
            abandon();
            return page.ok ? fail(409, `Bucket '${newName}' is being renamed`) : { ok: false, error: page.error };
          }
          storage.transactionSync(() => {
            importRows(storage.sql, spec, page.rows);
            if (spec === REPLICATIONS_COPY) tables.replications.touched(); // its cached derivations are stale
            tables.bucket.heartbeatRename(this.deps.now());
          });
          after = page.next;
        } while (after);
      }
      tables.bucket.markRenameFinishing();
    } catch (error) {
      abandon();
      throw error;
    }
    return this.finishInto(oldName, attempt);
  }

  /** Asks the source to hand over (idempotent, retried) and then makes the copy the live bucket. */
  private async finishInto(oldName: string, attempt: string): Promise<Ok> {
    const { tables } = this.deps;
    const source = this.deps.sourceOf(oldName);
    let handedOver: Ok | undefined;
    let lastError: unknown;
    for (let tries = 0; tries < 3 && handedOver === undefined; tries++) {
      try {
        handedOver = await source.finishRenameOut(attempt);
      } catch (error) {
        lastError = error; // the reply was lost or the source restarted: ask again
      }
    }
    if (handedOver === undefined) {
      return fail(503, `Rename of bucket '${oldName}' is not confirmed yet, please repeat it: ${String(lastError)}`);
    }
    const row = tables.bucket.get();
    if (!row || row.rename_attempt !== attempt) return OK; // a concurrent retry completed it
    if (!handedOver.ok) {
      // The source never handed this attempt over (it was abandoned): the source still has the data.
      this.clear();
      return handedOver;
    }
    tables.bucket.completeRenameInto();
    await this.deps.scheduleAlarm(this.deps.now() + STATS_FLUSH_DELAY_MS);
    try {
      await this.deps.usage.syncRegistry();
    } catch (error) {
      console.error(`registering renamed bucket ${row.name} failed; the alarm retries:`, error);
    }
    try {
      // Before the answer, so the lifecycle API shows the new name once the rename returns.
      await this.deps.followLifecycles();
    } catch (error) {
      console.error(`moving lifecycles to renamed bucket ${row.name} failed; the alarm retries:`, error);
    }
    return OK;
  }

  // ---- source side --------------------------------------------------------------------------

  /** Freezes the bucket and hands over its settings with an attempt id. */
  beginOut(name: string, newName: string, registering: boolean): Result<{ bucket: BucketRow; attempt: string }> {
    const row = this.abandonStalled(this.deps.tables.bucket.get());
    if (!row || row.renaming_from || registering) return bucketNotFound(name);
    if (row.renaming_to && row.renaming_to !== newName) return fail(409, `Bucket '${name}' is being renamed`);
    if (row.is_provisioned) return fail(409, `Can't rename provisioned bucket '${name}'`);
    const attempt = crypto.randomUUID();
    this.deps.tables.bucket.beginRenameOut(newName, attempt, this.deps.now());
    return { ok: true, bucket: row, attempt };
  }

  exportPage(name: string, attempt: string, table: string, after: SqlStorageValue[] | null): Result<ExportPage> {
    const row = this.deps.tables.bucket.get();
    if (!row || row.rename_attempt !== attempt) return fail(409, `Rename of bucket '${name}' was abandoned; try again`);
    const spec = BUCKET_TABLES.find((candidate) => candidate.table === table);
    if (!spec) throw new Error(`unknown table ${table}`);
    this.deps.tables.bucket.heartbeatRename(this.deps.now());
    return { ok: true, ...exportPage(this.deps.storage.sql, spec, after) };
  }

  /**
   * The index now lives under the new name: forget it here without purging R2. Idempotent per
   * attempt, and cannot fail once committed (the D1 registry row is removed by the alarm).
   */
  async finishOut(name: string, attempt: string): Promise<Ok> {
    const { tables } = this.deps;
    if (tables.renamedOut.has(attempt)) return OK;
    const row = tables.bucket.get();
    if (!row || row.rename_attempt !== attempt) return fail(409, `Rename of bucket '${name}' was abandoned; try again`);
    const now = this.deps.now();
    this.deps.storage.transactionSync(() => {
      clearBucketData(tables);
      tables.purges.queue(name, row.generation, now, false);
      tables.renamedOut.insert(attempt, row.renaming_to ?? "", now);
    });
    await this.deps.scheduleAlarm(now);
    try {
      await this.deps.usage.deleteRegistryRow(name, row.generation);
    } catch (error) {
      console.error(`removing renamed bucket ${name} from D1 failed; the alarm retries:`, error);
    }
    return OK;
  }
}
