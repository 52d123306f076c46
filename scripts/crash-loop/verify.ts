// The crash loop's verifier: everything the server shows (v1 listings, one-by-one reads, entry and
// bucket stats, the v2 /io listing) against the model replayed from the journal, and the dead
// server's state directory (R2 objects vs the index) between a kill and the restart.
import { messageOf } from "../lib/errors.ts";
import type { HttpClient, HttpResponse } from "../lib/http-client.ts";
import { errorOf } from "../lib/http-client.ts";
import { Rng, sha256Hex } from "../lib/prng.ts";
import { descriptorBounds, entryPath, listBucketV2, listEntryV1 } from "../lib/reduct.ts";
import { sleep } from "../lib/server.ts";
import { classifyObjects, type GarbageItem, inspectState, type ObjectClasses } from "../lib/state-inspect.ts";
import { type RunContext, violation } from "./context.ts";
import type { Journal } from "./journal.ts";
import { type Labels, type ModelRecord, recordKey, sameLabels } from "./model.ts";
import {
  ENTRIES,
  FIFO_ALLOWANCE,
  FIFO_BUCKET,
  FIFO_ENTRIES,
  FIFO_QUOTA,
  MAX_BLOCK_SIZE,
  NONE_BUCKETS,
  PENDING_LIMIT_MS,
  READBACK_SAMPLE,
  STATS_RETRY_MS,
} from "./settings.ts";

/** What GET /b/:bucket answers, as far as the verifier reads it. */
interface EntryInfo {
  name: string;
  size: number;
  record_count: number;
  oldest_record: number;
  latest_record: number;
}
interface BucketInfo {
  info: { size: number; entry_count: number; oldest_record: number; latest_record: number };
  entries: EntryInfo[];
}

/** A record as a v1 listing showed it. */
export type ListedRecord = Awaited<ReturnType<typeof listEntryV1>>["records"][number];

/** bucket → entry → its listed records, in timestamp order. */
export type Listings = Map<string, Map<string, ListedRecord[]>>;

/** GET /b/:bucket with a few retries on 503 / socket errors right after a restart. */
export async function getBucket(client: HttpClient, b: string): Promise<BucketInfo> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    let response: HttpResponse | undefined;
    try {
      response = await client.request("GET", `/api/v1/b/${b}`, { timeoutMs: 15_000 });
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    if (response?.status === 200) return JSON.parse(response.body.toString("utf8")) as BucketInfo;
    if (response && response.status !== 503) throw new Error(`GET /b/${b} answered ${response.status} ${errorOf(response)}`);
    if (Date.now() > deadline) throw new Error(`GET /b/${b} kept answering ${response?.status}`);
    await sleep(250);
  }
}

/** A GET of one record that answered 200: everything it showed. */
type ReadBack = { status: 200 } & Required<Observation>;

/** A GET of one record: what it showed, or its status (0: no answer) and error. */
type ReadAnswer = ReadBack | { status: number; error: string };

const readBack = (answer: ReadAnswer): answer is ReadBack => answer.status === 200;

/** Reads one record by timestamp and compares it with the model. Returns the observation. */
async function readRecord(client: HttpClient, rec: ModelRecord): Promise<ReadAnswer> {
  let response: HttpResponse;
  try {
    response = await client.request("GET", `${entryPath(rec.b, rec.e)}?ts=${rec.ts}`, { timeoutMs: 30_000 });
  } catch (error) {
    return { status: 0, error: messageOf(error) };
  }
  if (response.status !== 200) return { status: response.status, error: errorOf(response) };
  const labels: Labels = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (name.startsWith("x-reduct-label-")) labels[name.slice("x-reduct-label-".length)] = String(value);
  }
  return {
    status: 200,
    ts: Number(response.headers["x-reduct-time"]),
    contentType: String(response.headers["content-type"] ?? ""),
    contentLength: Number(response.headers["content-length"]),
    size: response.body.length,
    sha256: sha256Hex(response.body),
    labels,
  };
}

/** What a listing or a GET showed of a record (a GET adds its x-reduct-time and content-length). */
interface Observation {
  size: number;
  sha256: string;
  contentType: string;
  labels: Labels;
  ts?: number;
  contentLength?: number;
}

/** Differences between an observation (listing or GET) and the model's record; [] when identical. */
function differences(rec: ModelRecord, seen: Observation, { single }: { single: boolean }): string[] {
  const out: string[] = [];
  if (seen.size !== rec.size) out.push(`size ${seen.size} != ${rec.size}`);
  if (seen.sha256 !== rec.sha) out.push(`sha256 ${seen.sha256.slice(0, 12)}… != ${rec.sha.slice(0, 12)}…`);
  if (seen.contentType !== rec.ct) out.push(`content-type '${seen.contentType}' != '${rec.ct}'`);
  if (!rec.labelOptions.some((labels) => sameLabels(labels, seen.labels))) {
    out.push(`labels ${JSON.stringify(seen.labels)} not in ${JSON.stringify(rec.labelOptions)}`);
  }
  if (single) {
    if (seen.ts !== rec.ts) out.push(`x-reduct-time ${seen.ts} != ${rec.ts}`);
    if (seen.contentLength !== rec.size) out.push(`content-length ${seen.contentLength} != ${rec.size}`);
  }
  return out;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  });
  await Promise.all(workers);
}

/**
 * Verifies the running server against the journal. `final`: read back every record by GET and
 * cross-check the listing with a v2 /io query. Returns the listings (bucket → entry → records).
 */
export async function verify(ctx: RunContext, client: HttpClient, journal: Journal, { final }: { final: boolean }) {
  const model = journal.replay();
  model.closeOpen();
  const live = journal.live;
  if (model.records.size !== live.records.size) {
    violation(ctx, "listing", `journal replay has ${model.records.size} records, the live model ${live.records.size}`);
  }
  const listings: Listings = new Map();
  const toRead: { rec: ModelRecord; listed: boolean; evicted?: boolean }[] = [];
  const deadline = Date.now() + 300_000;
  const resolutions: { key: string; exists: boolean; labels?: Labels; evicted?: boolean }[] = [];

  // List every entry (4 at a time), then compare bucket by bucket.
  const entriesOf = (b: string): readonly string[] => (b === FIFO_BUCKET ? FIFO_ENTRIES : ENTRIES);
  const parentsOf = (b: string): Set<string> =>
    new Set(
      entriesOf(b)
        .filter((e) => e.includes("/"))
        .map((e) => e.slice(0, e.lastIndexOf("/"))),
    );
  const jobs: [string, string][] = [];
  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) for (const e of [...entriesOf(b), ...parentsOf(b)]) jobs.push([b, e]);
  const prefetched = new Map<string, Awaited<ReturnType<typeof listEntryV1>>>();
  await pool(jobs, 4, async ([b, e]) => {
    prefetched.set(`${b}/${e}`, await listEntryV1(client, b, e, { deadline }));
  });

  for (const b of [...NONE_BUCKETS, FIFO_BUCKET]) {
    const entries = entriesOf(b);
    const info = await getBucket(client, b);
    const serverEntries = info.entries.map((entry) => entry.name);
    const parents = parentsOf(b);
    for (const name of serverEntries) {
      if (!entries.includes(name) && !parents.has(name)) violation(ctx, "phantom", `${b}: entry '${name}' was never written`);
    }
    const byEntry = new Map<string, ListedRecord[]>();
    listings.set(b, byEntry);
    for (const e of [...entries, ...parents]) {
      const listing = prefetched.get(`${b}/${e}`);
      if (!listing) throw new Error(`no listing of ${b}/${e}`);
      for (const problem of listing.problems) violation(ctx, "listing", problem);
      byEntry.set(e, listing.records);
      if (parents.has(e)) {
        for (const seen of listing.records)
          violation(ctx, "phantom", `${b}/${e}@${seen.ts}: a record in an entry never written to`);
        continue;
      }
      const expected = model.entryRecords(b, e);
      const listed = new Map<number, ListedRecord>();
      for (const seen of listing.records) {
        if (listed.has(seen.ts)) violation(ctx, "listing", `${b}/${e}@${seen.ts} listed twice`);
        listed.set(seen.ts, seen);
      }
      // Listed records: known, meant to exist (or maybe), identical.
      for (const seen of listing.records) {
        const rec = model.records.get(recordKey(b, e, seen.ts));
        if (!rec) {
          ctx.totals.phantoms++;
          violation(ctx, "phantom", `${b}/${e}@${seen.ts} (${seen.size} B) was never sent`);
          continue;
        }
        if (rec.exists === "no") {
          const why = rec.deleted
            ? "an ACKed delete"
            : rec.rejected
              ? `a refused write (${rec.rejected})`
              : "being absent earlier";
          violation(ctx, rec.rejected ? "rejected-trace" : "resurrected", `${b}/${e}@${seen.ts} is listed after ${why}`, rec.key);
          continue;
        }
        const diff = differences(rec, seen, { single: false });
        if (diff.length) {
          if (rec.exists === "yes") {
            ctx.totals.altered++;
            violation(ctx, "altered", `${b}/${e}@${seen.ts} (listing): ${diff.join("; ")}`, rec.key);
          } else
            violation(ctx, "indeterminate-bad", `${b}/${e}@${seen.ts} (listing, indeterminate): ${diff.join("; ")}`, rec.key);
          continue;
        }
        if (rec.exists === "maybe" || rec.labelOptions.length > 1) {
          if (rec.exists === "maybe") ctx.totals.indeterminatePresent++;
          resolutions.push({ key: rec.key, exists: true, labels: seen.labels });
        }
        if (final || rec.touched === ctx.cycle || rec.exists === "maybe") toRead.push({ rec, listed: true });
      }
      // Expected records that are not listed.
      const fifoMissing: ModelRecord[] = [];
      for (const rec of expected) {
        if (listed.has(rec.ts)) continue;
        if (rec.exists === "yes") {
          if (rec.fifo) fifoMissing.push(rec);
          else toRead.push({ rec, listed: false });
        } else if (rec.exists === "maybe") toRead.push({ rec, listed: false });
        else if (rec.deleted && (final || rec.touched === ctx.cycle)) toRead.push({ rec, listed: false });
      }
      if (fifoMissing.length) {
        // FIFO eviction removes the oldest blocks: every evicted record is older than every
        // ACKed record still stored.
        const presentAcked = expected.filter((rec) => rec.exists === "yes" && listed.has(rec.ts));
        const oldestPresent = presentAcked[0]?.ts ?? Number.POSITIVE_INFINITY;
        for (const rec of fifoMissing) {
          if (rec.ts > oldestPresent) {
            ctx.totals.lost++;
            violation(
              ctx,
              "fifo-order",
              `${b}/${e}@${rec.ts} ACKed and missing while the older ${oldestPresent} is stored`,
              rec.key,
            );
          } else {
            ctx.totals.evicted++;
            resolutions.push({ key: rec.key, exists: false, evicted: true });
            toRead.push({ rec, listed: false, evicted: true });
          }
        }
      }
    }
    // Random sample of older stored records, read one by one.
    if (!final) {
      const rng = new Rng(ctx.settings.seed, "sample", ctx.cycle, b);
      const stored = [...model.records.values()].filter(
        (rec) =>
          rec.b === b &&
          rec.exists === "yes" &&
          rec.touched !== ctx.cycle &&
          byEntry.get(rec.e)?.some((seen) => seen.ts === rec.ts),
      );
      for (let i = 0; i < READBACK_SAMPLE && stored.length; i++) {
        const rec = stored[rng.int(0, stored.length - 1)];
        if (rec) toRead.push({ rec, listed: true });
      }
    }
  }

  // One-by-one reads.
  const pending: ModelRecord[] = [];
  await pool(toRead, 8, async ({ rec, listed, evicted }) => {
    ctx.totals.readbacks++;
    const seen = await readRecord(client, rec);
    const where = `${rec.b}/${rec.e}@${rec.ts}`;
    if (readBack(seen)) {
      if (!listed) {
        if (rec.exists === "yes" && !evicted) violation(ctx, "listing", `${where} reads back 200 but is not listed`, rec.key);
        else if (rec.exists === "no" || evicted) {
          violation(
            ctx,
            evicted ? "listing" : rec.deleted ? "resurrected" : "rejected-trace",
            `${where} reads back 200 (${rec.deleted ? "ACKed delete" : evicted ? "evicted" : "absent"})`,
            rec.key,
          );
        } else violation(ctx, "listing", `${where} (indeterminate) reads back 200 but is not listed`, rec.key);
        return;
      }
      const diff = differences(rec, seen, { single: true });
      if (diff.length) {
        if (rec.exists === "yes") {
          ctx.totals.altered++;
          violation(ctx, "altered", `${where} (GET): ${diff.join("; ")}`, rec.key);
        } else violation(ctx, "indeterminate-bad", `${where} (GET, indeterminate): ${diff.join("; ")}`, rec.key);
      }
      return;
    }
    if (seen.status === 404) {
      if (listed) violation(ctx, "listing", `${where} is listed but GET answers 404`, rec.key);
      else if (rec.exists === "yes" && !evicted) {
        ctx.totals.lost++;
        violation(ctx, "lost", `${where} (${rec.size} B, op ${rec.writeOp}) was ACKed and is gone: ${seen.error}`, rec.key);
      } else if (rec.exists === "maybe") {
        ctx.totals.indeterminateAbsent++;
        resolutions.push({ key: rec.key, exists: false });
      }
      return;
    }
    if (seen.status === 425 && rec.exists !== "yes" && !listed) {
      const age = Date.now() - (rec.intentAt ?? 0);
      if (age > PENDING_LIMIT_MS) {
        violation(
          ctx,
          "stuck-425",
          `${where} still 425 ${(age / 1000).toFixed(0)} s after its write was sent: ${seen.error}`,
          rec.key,
        );
      } else pending.push(rec);
      return;
    }
    if (seen.status >= 500) violation(ctx, "server-5xx", `${where}: GET answered ${seen.status} ${seen.error}`, rec.key);
    else if (rec.exists === "yes" && !evicted) {
      ctx.totals.lost++;
      violation(ctx, "lost", `${where} (ACKed): GET answered ${seen.status} ${seen.error}`, rec.key);
    } else violation(ctx, "unexpected-status", `${where}: GET answered ${seen.status} ${seen.error}`, rec.key);
  });
  for (const resolution of resolutions) journal.resolve(resolution);

  // Stats: entry and bucket figures equal the listed records (retried briefly: stats may lag).
  await checkStats(ctx, client, listings);

  if (final) await crossCheckV2(ctx, client, listings);
  return { listings, pending, model };
}

async function checkStats(ctx: RunContext, client: HttpClient, listings: Listings): Promise<void> {
  const started = Date.now();
  for (;;) {
    const problems: string[] = [];
    for (const [b, byEntry] of listings) {
      const info = await getBucket(client, b);
      const serverEntries = new Map(info.entries.map((entry) => [entry.name, entry]));
      let total = 0;
      let oldest = 0;
      let latest = 0;
      for (const [e, records] of byEntry) {
        const entry = serverEntries.get(e);
        if (!entry) {
          if (records.length) problems.push(`${b}/${e}: ${records.length} records listed, entry absent from GET /b`);
          continue;
        }
        total += entry.size;
        const count = records.length;
        if (entry.record_count !== count) problems.push(`${b}/${e}: record_count ${entry.record_count}, listed ${count}`);
        const first = records[0]?.ts ?? 0;
        const last = records[count - 1]?.ts ?? 0;
        if (entry.oldest_record !== first || entry.latest_record !== last) {
          problems.push(`${b}/${e}: oldest/latest ${entry.oldest_record}/${entry.latest_record}, listed ${first}/${last}`);
        }
        if (count) {
          oldest = oldest ? Math.min(oldest, first) : first;
          latest = Math.max(latest, last);
        }
        // size = Σ content + Σ descriptor; only each descriptor's block offset is unknown here.
        let low = 0;
        let high = 0;
        const maxBegin = MAX_BLOCK_SIZE[b] ?? 0;
        for (const seen of records) {
          const bounds = descriptorBounds({
            ts: seen.ts,
            size: seen.size,
            labels: seen.labels,
            contentType: seen.contentType,
            updated: "u" in seen.labels,
            maxBegin,
          });
          low += seen.size + bounds.low;
          high += seen.size + bounds.high;
        }
        if (entry.size < low || entry.size > high)
          problems.push(`${b}/${e}: size ${entry.size} outside [${low}, ${high}] of the listed records`);
      }
      for (const name of serverEntries.keys()) if (!byEntry.has(name)) problems.push(`${b}: unexpected entry ${name}`);
      if (info.info.size !== total) problems.push(`${b}: bucket size ${info.info.size} != Σ entry sizes ${total}`);
      if (info.info.entry_count !== info.entries.length)
        problems.push(`${b}: entry_count ${info.info.entry_count} != ${info.entries.length}`);
      if (info.info.oldest_record !== oldest || info.info.latest_record !== latest) {
        problems.push(`${b}: oldest/latest ${info.info.oldest_record}/${info.info.latest_record}, listed ${oldest}/${latest}`);
      }
      if (b === FIFO_BUCKET) {
        ctx.fifoMaxOver = Math.max(ctx.fifoMaxOver, info.info.size - FIFO_QUOTA);
        if (info.info.size > FIFO_QUOTA + FIFO_ALLOWANCE) problems.push(`${b}: size ${info.info.size} above quota ${FIFO_QUOTA}`);
      }
    }
    if (problems.length === 0) return;
    if (Date.now() - started > STATS_RETRY_MS) {
      for (const problem of problems) violation(ctx, problem.includes("quota") ? "fifo-quota" : "stats", problem);
      return;
    }
    await sleep(250);
  }
}

/** The v2 /io listing of each bucket must show exactly what the v1 listing showed. */
async function crossCheckV2(ctx: RunContext, client: HttpClient, listings: Listings): Promise<void> {
  for (const [b, byEntry] of listings) {
    let v2: Awaited<ReturnType<typeof listBucketV2>>;
    try {
      v2 = await listBucketV2(client, b, { deadline: Date.now() + 300_000 });
    } catch (error) {
      violation(ctx, "listing", `v2 listing of ${b}: ${messageOf(error)}`);
      continue;
    }
    for (const problem of v2.problems) violation(ctx, "listing", problem);
    for (const [e, records] of byEntry) {
      const other = new Map((v2.byEntry.get(e) ?? []).map((record) => [record.ts, record]));
      for (const record of records) {
        const seen = other.get(record.ts);
        if (!seen) {
          violation(ctx, "listing", `${b}/${e}@${record.ts} in the v1 listing but not in /io`);
          continue;
        }
        other.delete(record.ts);
        if (seen.sha256 !== record.sha256 || seen.contentType !== record.contentType || !sameLabels(seen.labels, record.labels)) {
          violation(
            ctx,
            "listing",
            `${b}/${e}@${record.ts}: /io shows ${seen.size} B ${seen.contentType} ${JSON.stringify(seen.labels)}`,
          );
        }
      }
      for (const ts of other.keys()) violation(ctx, "listing", `${b}/${e}@${ts} in /io but not in the v1 listing`);
    }
  }
}

// State inspection (server stopped)

/** What inspectDead found: the R2 objects by class and the garbage queue, or why it could not look. */
export type DeadInspection =
  | { checked: false; reason: string }
  | { checked: true; objects: ObjectClasses; garbage: GarbageItem[]; pendingRecords: number };

export function inspectDead(
  ctx: RunContext,
  dataPath: string,
  scratch: string,
  {
    indeterminateSoFar,
    label,
    listings = undefined,
    exact = false,
  }: { indeterminateSoFar: number; label: string; listings?: Listings; exact?: boolean },
): DeadInspection {
  let state: ReturnType<typeof inspectState>;
  try {
    state = inspectState(dataPath, scratch);
  } catch (error) {
    return { checked: false, reason: `state inspection failed: ${messageOf(error)}` };
  }
  if (!state.ok) return { checked: false, reason: state.reason };
  const objects = classifyObjects(state);
  ctx.maxUntracked = Math.max(ctx.maxUntracked, objects.untracked.length);
  if (objects.untracked.length > indeterminateSoFar) {
    violation(
      ctx,
      "orphans",
      `${label}: ${objects.untracked.length} R2 objects no index row or garbage queue knows (> ${indeterminateSoFar} indeterminate writes): ${objects.untracked.slice(0, 3).join(", ")}`,
    );
  }
  if (objects.missing.length) {
    violation(
      ctx,
      "index",
      `${label}: ${objects.missing.length} index keys without an R2 object: ${objects.missing.slice(0, 3).join(", ")}`,
    );
  }
  if (exact && listings) {
    // The index itself: entry sizes are exactly Σ(size + descriptor) of its ready records, and
    // its ready records are exactly the listed ones.
    for (const [b, byEntry] of listings) {
      const bucket = state.buckets.get(b);
      if (!bucket) {
        violation(ctx, "index", `${label}: no bucket object for ${b}`);
        continue;
      }
      for (const entry of bucket.entries) {
        const rows = bucket.records.get(entry.name) ?? [];
        const ready = rows.filter((row) => row.state === "ready");
        const sum = ready.reduce((acc, row) => acc + row.size + row.meta_len, 0);
        if (sum !== entry.size)
          violation(
            ctx,
            "index",
            `${label}: ${b}/${entry.name} size ${entry.size} != Σ(size+meta_len) ${sum} of ${ready.length} ready rows`,
          );
        if (ready.length !== entry.record_count)
          violation(
            ctx,
            "index",
            `${label}: ${b}/${entry.name} record_count ${entry.record_count} != ${ready.length} ready rows`,
          );
        const listed = byEntry.get(entry.name);
        if (listed) {
          const a = ready.map((row) => row.ts).join(",");
          const c = listed.map((record) => record.ts).join(",");
          if (a !== c)
            violation(
              ctx,
              "index",
              `${label}: ${b}/${entry.name} index rows differ from the listing (${ready.length} vs ${listed.length})`,
            );
        }
      }
    }
  }
  return { checked: true, objects, garbage: state.garbage, pendingRecords: state.pendingRecords };
}
