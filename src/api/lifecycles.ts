/**
 * Lifecycle API: list, get, create, update, delete and mode. Full access only. The registry is
 * D1's `lifecycles` table (it spans buckets); after every change the bucket's object gets the
 * policies of its bucket, which its alarm runs.
 */
import { Hono } from "hono";
import { z } from "zod";
import { requireFullAccess } from "../auth/policy";
import { type LifecycleSettings, lifecycleMode, parseLifecycleSettings } from "../bucket/lifecycle-settings";
import {
  deleteLifecycleRow,
  getLifecycleRow,
  insertLifecycleRow,
  type LifecycleRow,
  listLifecycleRows,
  updateLifecycleSettings,
} from "../d1/lifecycles";
import { conflict, notFound, unprocessable } from "../errors";
import { readJsonBody } from "./body";
import { bucketStub } from "./bucket-stub";
import type { AppContext, AppEnv, Bindings } from "./context";
import { provisionLifecycles, syncBucketLifecycles } from "./lifecycle-provisioning";
import { parseOr422 } from "./schemas";

export const lifecycleRoutes = new Hono<AppEnv>();

async function authorize(c: AppContext): Promise<void> {
  requireFullAccess(c.get("caller"));
  await provisionLifecycles(c.env);
}

function runFlag(row: LifecycleRow): boolean {
  return row.last_run !== null && (JSON.parse(row.last_run) as { running?: unknown }).running === true;
}

/**
 * The policies among `rows` whose run is in progress. D1's flag is only a hint (it outlives a run
 * whose bucket was deleted or renamed away): the bucket's object, which runs the policy, decides.
 */
async function runningOf(env: Bindings, rows: LifecycleRow[]): Promise<Set<string>> {
  const byBucket = new Map<string, string[]>();
  for (const row of rows) if (runFlag(row)) byBucket.set(row.bucket, [...(byBucket.get(row.bucket) ?? []), row.name]);
  const running = new Set<string>();
  for (const [bucket, names] of byBucket) {
    try {
      for (const name of await bucketStub(env, bucket).runningLifecycles(names)) running.add(name);
    } catch (error) {
      // Unknown is shown as not running rather than failing the listing.
      console.error(JSON.stringify({ level: "ERROR", msg: `is_running of bucket '${bucket}' unknown: ${String(error)}` }));
    }
  }
  return running;
}

/**
 * `last_run` is the time of the last run, as ReductStore's clients parse it (reduct-js makes a
 * Date of it and throws on an object); what that run did is `last_run_result`, ours.
 */
function info(row: LifecycleRow, running: Set<string>) {
  const settings = JSON.parse(row.settings) as LifecycleSettings;
  const { running: _flag, ...lastRun } = row.last_run === null ? {} : (JSON.parse(row.last_run) as Record<string, unknown>);
  const ran = typeof lastRun.time === "string";
  return {
    name: row.name,
    is_provisioned: row.is_provisioned === 1,
    is_running: running.has(row.name),
    type: settings.type,
    mode: settings.mode,
    last_run: ran ? lastRun.time : null,
    last_run_result: ran ? lastRun : null,
  };
}

async function existingRow(c: AppContext, name: string): Promise<LifecycleRow> {
  const row = await getLifecycleRow(c.env.DB, name);
  if (!row) throw notFound(`Lifecycle '${name}' does not exist`);
  return row;
}

async function assertBucketExists(env: Bindings, bucket: string, name: string): Promise<void> {
  const found = await bucketStub(env, bucket).headBucket();
  if (!found.ok) throw notFound(`Bucket '${bucket}' for lifecycle '${name}' does not exist`);
}

// GET /api/v1/lifecycles
lifecycleRoutes.get("/", async (c) => {
  await authorize(c);
  const rows = await listLifecycleRows(c.env.DB);
  const running = await runningOf(c.env, rows);
  return c.json({ lifecycles: rows.map((row) => info(row, running)) });
});

// GET /api/v1/lifecycles/:name
lifecycleRoutes.get("/:name", async (c) => {
  await authorize(c);
  const row = await existingRow(c, c.req.param("name"));
  return c.json({ info: info(row, await runningOf(c.env, [row])), settings: JSON.parse(row.settings) });
});

// POST /api/v1/lifecycles/:name
lifecycleRoutes.post("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const settings = parseLifecycleSettings(await readJsonBody(c.req.raw));
  if (await getLifecycleRow(c.env.DB, name)) throw conflict(`Lifecycle '${name}' already exists`);
  await assertBucketExists(c.env, settings.bucket, name);
  const inserted = await insertLifecycleRow(c.env.DB, {
    name,
    bucket: settings.bucket,
    settings: JSON.stringify(settings),
    is_provisioned: 0,
  });
  if (!inserted) throw conflict(`Lifecycle '${name}' already exists`);
  await syncBucketLifecycles(c.env, settings.bucket);
  return c.body(null, 200);
});

// PUT /api/v1/lifecycles/:name
lifecycleRoutes.put("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const settings = parseLifecycleSettings(await readJsonBody(c.req.raw));
  const row = await existingRow(c, name);
  if (row.is_provisioned === 1) throw conflict(`Can't update provisioned lifecycle '${name}'`);
  await assertBucketExists(c.env, settings.bucket, name);
  if (!(await updateLifecycleSettings(c.env.DB, name, settings.bucket, JSON.stringify(settings)))) {
    throw notFound(`Lifecycle '${name}' does not exist`);
  }
  await syncBucketLifecycles(c.env, settings.bucket);
  if (row.bucket !== settings.bucket) await syncBucketLifecycles(c.env, row.bucket);
  return c.body(null, 200);
});

// DELETE /api/v1/lifecycles/:name
lifecycleRoutes.delete("/:name", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const row = await existingRow(c, name);
  if (row.is_provisioned === 1) throw conflict(`Can't remove provisioned lifecycle '${name}'`);
  if (!(await deleteLifecycleRow(c.env.DB, name))) throw notFound(`Lifecycle '${name}' does not exist`);
  await syncBucketLifecycles(c.env, row.bucket);
  return c.body(null, 200);
});

const modeBody = z.object({ mode: lifecycleMode });

// PATCH /api/v1/lifecycles/:name/mode
lifecycleRoutes.patch("/:name/mode", async (c) => {
  await authorize(c);
  const name = c.req.param("name");
  const { mode } = parseOr422(modeBody, await readJsonBody(c.req.raw));
  const row = await existingRow(c, name);
  const settings = { ...(JSON.parse(row.settings) as LifecycleSettings), mode };
  if (row.is_provisioned === 1) throw conflict(`Can't update provisioned lifecycle '${name}'`);
  if (!(await updateLifecycleSettings(c.env.DB, name, row.bucket, JSON.stringify(settings)))) {
    throw unprocessable(`Lifecycle '${name}' changed meanwhile; try again`);
  }
  await syncBucketLifecycles(c.env, row.bucket);
  return c.body(null, 200);
});
