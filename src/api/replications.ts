/**
 * Replication API: list, get, create, update, delete and mode, as ReductStore 1.21 answers them.
 * Full access only. The registry is D1's `replications` table (it spans buckets); after every change
 * the source bucket's object gets the replications of its bucket, which it logs and sends. What
 * only the sender knows (pending records, whether the target answers, the hour's counts) comes
 * from that object.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireFullAccess } from "../auth/policy";
import {
  deleteReplicationRow,
  getReplicationRow,
  insertReplicationRow,
  listReplicationRows,
  type ReplicationRow,
  setReplicationMode,
  updateReplicationSettings,
} from "../d1/replications";
import { conflict, notFound } from "../errors";
import type { ReplicationSettings, ReplicationStatus } from "../model/replications";
import { readJsonBody } from "./body";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv, Bindings } from "./context";
import { provisionReplications, syncBucketReplications } from "./replication-provisioning";
import { parseReplicationBody, replicationMode, shownSettings, validateReplication } from "./replication-settings";
import { MAX_NAME_LENGTH, parseOr422 } from "./schemas";

export const replicationRoutes = new Hono<AppEnv>();

async function authorize(c: AppContext): Promise<void> {
  requireFullAccess(c.get("caller"));
  await provisionReplications(c.env, selfUrl(c));
}

function selfUrl(c: AppContext): URL | undefined {
  try {
    return new URL(c.req.url);
  } catch {
    return undefined;
  }
}

const settingsOf = (row: ReplicationRow) => JSON.parse(row.settings) as ReplicationSettings;

const unknownStatus = (name: string): ReplicationStatus => ({
  name,
  pending_records: 0,
  is_active: false,
  diagnostics: { hourly: { ok: 0, errored: 0, errors: {} } },
});

/** Each replication's status from its source bucket's object; unknown ones show as idle. */
async function statusOf(env: Bindings, rows: ReplicationRow[]): Promise<Map<string, ReplicationStatus>> {
  const byBucket = new Map<string, string[]>();
  for (const row of rows) byBucket.set(row.src_bucket, [...(byBucket.get(row.src_bucket) ?? []), row.name]);
  const statuses = new Map<string, ReplicationStatus>();
  await Promise.all(
    [...byBucket].map(async ([bucket, names]) => {
      if (bucket.length > MAX_NAME_LENGTH) return;
      try {
        for (const status of await bucketStub(env, bucket).replicationStatus(names)) statuses.set(status.name, status);
      } catch (error) {
        // Unknown is shown as idle rather than failing the listing.
        console.error(
          JSON.stringify({ level: "ERROR", msg: `status of replications of bucket '${bucket}' unknown: ${String(error)}` }),
        );
      }
    }),
  );
  return statuses;
}

function info(row: ReplicationRow, status: ReplicationStatus) {
  const { mode } = settingsOf(row);
  return {
    name: row.name,
    mode,
    // As ReductStore: a disabled replication is never active, whatever the target last said.
    is_active: mode !== "disabled" && status.is_active,
    is_provisioned: row.is_provisioned === 1,
    pending_records: status.pending_records,
  };
}

async function existingRow(c: AppContext, name: string): Promise<ReplicationRow> {
  const row = await getReplicationRow(c.env.DB, name);
  if (!row) throw notFound(`Replication '${name}' does not exist`);
  return row;
}

/** Hands over to the new source bucket and, when it changed, the old one. */
async function handOver(env: Bindings, srcBucket: string, previous?: string): Promise<void> {
  await syncBucketReplications(env, srcBucket);
  if (previous !== undefined && previous !== srcBucket) await syncBucketReplications(env, previous);
}

// GET /api/v1/replications
replicationRoutes.get("/", async (c) => {
  await authorize(c);
  const rows = await listReplicationRows(c.env.DB);
  const statuses = await statusOf(c.env, rows);
  return c.json({ replications: rows.map((row) => info(row, statuses.get(row.name) ?? unknownStatus(row.name))) });
});

// GET /api/v1/replications/:name
replicationRoutes.get("/:name", async (c) => {
  await authorize(c);
  const row = await existingRow(c, c.req.param("name"));
  const status = (await statusOf(c.env, [row])).get(row.name) ?? unknownStatus(row.name);
  return c.json({
    info: info(row, status),
    settings: shownSettings(settingsOf(row)),
    diagnostics: status.diagnostics,
  });
});

// POST /api/v1/replications/:name
replicationRoutes.post("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const settings = parseReplicationBody(await readJsonBody(c.req.raw));
  if (await getReplicationRow(c.env.DB, name)) throw conflict(`Replication '${name}' already exists`);
  await validateReplication(c.env, name, settings, selfUrl(c));
  const inserted = await insertReplicationRow(c.env.DB, {
    name,
    src_bucket: settings.src_bucket,
    settings: JSON.stringify(settings),
  });
  if (!inserted) throw conflict(`Replication '${name}' already exists`);
  await handOver(c.env, settings.src_bucket);
  return c.body(null, 200);
});

// PUT /api/v1/replications/:name
replicationRoutes.put("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const settings = parseReplicationBody(await readJsonBody(c.req.raw));
  const row = await existingRow(c, name);
  if (row.is_provisioned === 1) throw conflict(`Can't update provisioned replication '${name}'`);
  await validateReplication(c.env, name, settings, selfUrl(c));
  // As ReductStore: an update without a token keeps the one the replication has.
  const previous = settingsOf(row);
  if (settings.dst_token === undefined && previous.dst_token !== undefined) settings.dst_token = previous.dst_token;
  if (!(await updateReplicationSettings(c.env.DB, name, settings.src_bucket, JSON.stringify(settings)))) {
    // Deleted or provisioned meanwhile: answer as if that had come first.
    const now = await existingRow(c, name);
    throw conflict(`Can't update provisioned replication '${now.name}'`);
  }
  await handOver(c.env, settings.src_bucket, row.src_bucket);
  return c.body(null, 200);
});

// DELETE /api/v1/replications/:name
replicationRoutes.delete("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const row = await existingRow(c, name);
  if (row.is_provisioned === 1) throw conflict(`Can't remove provisioned replication '${name}'`);
  if (!(await deleteReplicationRow(c.env.DB, name))) {
    const now = await existingRow(c, name);
    throw conflict(`Can't remove provisioned replication '${now.name}'`);
  }
  await handOver(c.env, row.src_bucket);
  return c.body(null, 200);
});

const modeBody = z.object({ mode: replicationMode });

// PATCH /api/v1/replications/:name/mode — provisioned replications too, as in ReductStore.
replicationRoutes.patch("/:name/mode", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const { mode } = parseOr422(modeBody, await readJsonBody(c.req.raw));
  const row = await existingRow(c, name);
  if (!(await setReplicationMode(c.env.DB, name, mode))) throw notFound(`Replication '${name}' does not exist`);
  await handOver(c.env, row.src_bucket);
  return c.body(null, 200);
});
