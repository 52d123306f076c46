#!/usr/bin/env node
// Copies a bucket out to a directory and back, with the official reduct-js client, so it works
// against reduct-edge and ReductStore alike:
//
//   RS_API_TOKEN=… npx tsx scripts/export.ts export <server url> <bucket> <dir>
//   RS_API_TOKEN=… npx tsx scripts/export.ts import <server url> <bucket> <dir>
//
// The directory holds bucket.json (the bucket's settings), records.jsonl (one line per record:
// entry, timestamp, content type, labels, size, file) and records/<n>.bin (the bytes). Import
// creates the bucket when it is missing and writes every record with its timestamp, labels (name
// case kept) and content type, `$meta` attachments included; a record that already exists at that
// timestamp is reported and skipped.
// Each record is held in memory while it is copied.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type Bucket, type BucketSettings, Client, QuotaType } from "reduct-js";
import { z } from "zod";
import { fieldOf, stackOf, statusOf } from "./lib/errors.ts";

/** A bigint setting as bucket.json holds it (text; a number from a hand-written file works too). */
const bigintText = z.union([z.string(), z.number()]);

/** bucket.json: BucketSettings with the bigints as text. Read back from disk, so checked. */
const BucketJson = z.object({
  maxBlockSize: bigintText.optional(),
  maxBlockRecords: bigintText.optional(),
  quotaType: z.enum(QuotaType).optional(),
  quotaSize: bigintText.optional(),
});

/** One line of records.jsonl. */
const RecordLine = z.object({
  entry: z.string(),
  ts: z.string(),
  contentType: z.string().optional(),
  labels: z.record(z.string(), z.string()),
  size: z.number(),
  file: z.string(),
});

const settingsToJson = (settings: BucketSettings): Record<string, unknown> =>
  Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, typeof value === "bigint" ? String(value) : value]));

const settingsFromJson = (json: z.infer<typeof BucketJson>): BucketSettings => ({
  maxBlockSize: json.maxBlockSize === undefined ? undefined : BigInt(json.maxBlockSize),
  maxBlockRecords: json.maxBlockRecords === undefined ? undefined : BigInt(json.maxBlockRecords),
  quotaType: json.quotaType,
  quotaSize: json.quotaSize === undefined ? undefined : BigInt(json.quotaSize),
});

/**
 * The bucket's entries, each followed by its `<entry>/$meta` attachments entry when there is one
 * (the entry list does not show those). Records are read by query, which keeps label-name case.
 */
async function entriesWithAttachments(bucket: Bucket): Promise<string[]> {
  const names: string[] = [];
  for (const { name } of await bucket.getEntryList()) {
    names.push(name);
    const meta = `${name}/$meta`;
    try {
      await bucket.beginRead(meta, undefined, true);
      names.push(meta);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
  }
  return names;
}

/** Writes every record of `bucketName` into `dir`, attachments included; returns the number of records. */
export async function exportBucket(client: Client, bucketName: string, dir: string): Promise<number> {
  const bucket = await client.getBucket(bucketName);
  mkdirSync(path.join(dir, "records"), { recursive: true });
  writeFileSync(path.join(dir, "bucket.json"), `${JSON.stringify(settingsToJson(await bucket.getSettings()), null, 2)}\n`);
  const lines: string[] = [];
  for (const entry of await entriesWithAttachments(bucket)) {
    for await (const record of bucket.query(entry)) {
      const bytes = await record.read();
      const file = path.join("records", `${lines.length}.bin`);
      writeFileSync(path.join(dir, file), bytes);
      lines.push(
        JSON.stringify({
          entry,
          ts: String(record.time),
          contentType: record.contentType,
          labels: Object.fromEntries(Object.entries(record.labels).map(([key, value]) => [key, String(value)])),
          size: bytes.length,
          file,
        }),
      );
    }
  }
  writeFileSync(path.join(dir, "records.jsonl"), lines.length ? `${lines.join("\n")}\n` : "");
  return lines.length;
}

/** Writes the records of `dir` into `bucketName` (created if missing); returns written and skipped counts. */
export async function importBucket(
  client: Client,
  bucketName: string,
  dir: string,
): Promise<{ written: number; skipped: number }> {
  const settings = settingsFromJson(BucketJson.parse(JSON.parse(readFileSync(path.join(dir, "bucket.json"), "utf8"))));
  const bucket = await client.getOrCreateBucket(bucketName, settings);
  let written = 0;
  let skipped = 0;
  const text = readFileSync(path.join(dir, "records.jsonl"), "utf8");
  for (const line of text.split("\n").filter(Boolean)) {
    const { entry, ts, contentType, labels, size, file } = RecordLine.parse(JSON.parse(line));
    const bytes = readFileSync(path.join(dir, file));
    if (bytes.length !== size) throw new Error(`${file} has ${bytes.length} bytes, records.jsonl says ${size}`);
    // A batch write, not beginWrite: single-record writes carry label names in HTTP header names,
    // which lower-cases them.
    const batch = await bucket.beginWriteBatch(entry);
    batch.add(BigInt(ts), bytes, contentType, labels);
    const error = (await batch.write()).get(BigInt(ts));
    if (error === undefined) {
      written++;
    } else {
      if (error.status !== 409) throw error;
      console.error(`skipped ${entry}@${ts}: ${error.message}`);
      skipped++;
    }
  }
  return { written, skipped };
}

async function main() {
  const [command, url, bucketName, dir] = process.argv.slice(2);
  if ((command !== "export" && command !== "import") || !url || !bucketName || !dir) {
    console.error("usage: RS_API_TOKEN=… npx tsx scripts/export.ts export|import <server url> <bucket> <dir>");
    process.exit(2);
  }
  const client = new Client(url, { apiToken: process.env.RS_API_TOKEN || undefined });
  if (command === "export") {
    console.log(`exported ${await exportBucket(client, bucketName, dir)} records of ${bucketName} to ${dir}`);
  } else {
    const { written, skipped } = await importBucket(client, bucketName, dir);
    console.log(`imported ${written} records into ${bucketName} from ${dir} (${skipped} already there)`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    const status = statusOf(error);
    console.error(stackOf(error) ?? (status ? `APIError ${status}: ${fieldOf(error, "message")}` : error));
    process.exit(1);
  });
}
