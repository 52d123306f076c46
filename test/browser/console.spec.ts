/**
 * The web console end to end: `npm start` on a port of CONSOLE_TEST_PORTS, Debian's chromium driven
 * by playwright-core. Signs in, creates a bucket, writes records through the API, browses and
 * pages them, previews an image and a JSON record, runs a `when` query the server refuses and sees
 * its message, counts and removes by query, creates and deletes a token, shows "not available"
 * for the APIs this server lacks, and does the same at 375 px. Screenshots (desktop and phone) go
 * to test/browser/artifacts/. No browser console error, no unhandled error in the server's log.
 */
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { unhandledErrorLines } from "../../scripts/lib/server.ts";
import { chromiumPath } from "./chromium";
import { type Server, startServer } from "./server";

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), "artifacts");
const BUCKET = "console-e2e";
const ENTRY = "camera/front";
const RECORDS = 30;
const SECOND = 1_000_000;
const T0 = 1_700_000_000 * SECOND;

/** A width × height PNG of one colour (RGB, no filter), valid for any decoder. */
function png(width: number, height: number, rgb: [number, number, number]): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (data: Buffer) => {
    let c = 0xffffffff;
    for (const byte of data) c = (crcTable[(c ^ byte) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: width }, () => rgb).flat())]);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** The records written through the API: a PNG first, a JSON record, the rest text. */
function recordAt(index: number): { ts: number; type: string; body: Buffer; labels: Record<string, string> } {
  const ts = T0 + index * SECOND;
  if (index === 0) return { ts, type: "image/png", body: png(16, 12, [200, 30, 30]), labels: { kind: "image" } };
  if (index === 1)
    return { ts, type: "application/json", body: Buffer.from('{"speed":12.5,"ok":true}'), labels: { kind: "json" } };
  return { ts, type: "text/plain", body: Buffer.from(`line ${index}`), labels: { kind: "text", n: String(index) } };
}

let server: Server;
let browser: Browser;
const consoleErrors: string[] = [];

/**
 * Chromium logs every HTTP error answer to a fetch as a console error ("Failed to load resource").
 * These are the answers the tests cause on purpose, and only these are let through: the refused
 * `when` query, and the refused replication
 * create (the example's source bucket does not exist).
 */
const EXPECTED_HTTP_ERRORS: Array<[number, RegExp]> = [
  [422, /\/api\/v1\/b\/console-e2e\/camera\/front\/q$/],
  [404, /\/api\/v1\/replications\/console-replication$/],
  [401, /\/api\/v1\/b\/console-e2e\/camera\/front\?ts=\d+$/],
];

function isExpectedHttpError(text: string, url: string): boolean {
  const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text)?.[1];
  return status !== undefined && EXPECTED_HTTP_ERRORS.some(([code, pattern]) => code === Number(status) && pattern.test(url));
}

async function api(method: string, apiPath: string, init: { headers?: Record<string, string>; body?: BodyInit } = {}) {
  return fetch(`${server.url}/api/v1${apiPath}`, {
    method,
    headers: { authorization: `Bearer ${server.token}`, ...(init.headers ?? {}) },
    body: init.body,
  });
}

/**
 * Follows a navigation link and waits until its page has loaded: until then the previous page
 * (which may have the same heading) stays on screen, and input into it would be lost.
 */
async function openSection(page: Page, link: string, exact = false): Promise<void> {
  await page.getByRole("link", { name: link, exact }).click();
  await page.locator("#main:not([aria-busy])").waitFor();
}

/** Browser console errors and page errors are collected for the final check. */
function watch(page: Page, name: string): void {
  page.on("console", (message) => {
    if (message.type() !== "error" || isExpectedHttpError(message.text(), message.location().url)) return;
    consoleErrors.push(`${name}: ${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`${name}: page error: ${error.message}`));
  page.on("dialog", (dialog) => dialog.accept());
}

async function newPage(options: Parameters<Browser["newContext"]>[0], name: string): Promise<[BrowserContext, Page]> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  watch(page, name);
  return [context, page];
}

/** Signs in from the keyboard only: the token field has the focus, Enter submits. */
async function signIn(page: Page): Promise<void> {
  await page.goto(`${server.url}/ui/`);
  await page.getByLabel("API token").waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "token");
  await page.keyboard.type(server.token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  const executablePath = chromiumPath();
  server = await startServer();
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe("web console", () => {
  let page: Page;

  it("signs in with a token; the token stays out of the URL", async () => {
    [, page] = await newPage({ viewport: { width: 1280, height: 900 } }, "desktop");
    await signIn(page);
    assert.ok(!page.url().includes(server.token));
    const stats = await page.locator("dl.stats").innerText();
    assert.match(stats, /Version\s+1\.\d+\.\d+/);
    assert.match(stats, /Buckets\s+\d+/);
    await page.getByText("No usage records yet.").waitFor();
  });

  it("creates a bucket", async () => {
    await openSection(page, "Buckets", true);
    await page.getByRole("heading", { name: "Buckets" }).waitFor();
    await page.getByLabel("Name").fill(BUCKET);
    await page.getByText("Settings", { exact: true }).click();
    await page.getByLabel("Quota type").selectOption("FIFO");
    await page.getByLabel("Quota size (bytes)").fill("100000000");
    await page.getByRole("button", { name: "Create bucket" }).click();
    await page.getByRole("link", { name: BUCKET }).waitFor();
    const settings = (await (await api("GET", `/b/${BUCKET}`)).json()) as {
      settings: { quota_type: string; quota_size: number };
    };
    assert.deepEqual([settings.settings.quota_type, settings.settings.quota_size], ["FIFO", 100000000]);
  });

  it("lists records written through the API, a page at a time", async () => {
    for (let index = 0; index < RECORDS; index++) {
      const record = recordAt(index);
      const labels = Object.fromEntries(Object.entries(record.labels).map(([k, v]) => [`x-reduct-label-${k}`, v]));
      const response = await api("POST", `/b/${BUCKET}/${ENTRY}?ts=${record.ts}`, {
        headers: { "content-type": record.type, ...labels },
        body: new Uint8Array(record.body),
      });
      assert.equal(response.status, 200, await response.text());
    }
    await page.getByRole("link", { name: BUCKET }).click();
    await page.getByRole("heading", { name: `Bucket ${BUCKET}` }).waitFor();
    const entryRow = page.getByRole("row").filter({ hasText: ENTRY });
    assert.match(await entryRow.innerText(), new RegExp(`${ENTRY}\\s+${RECORDS}\\s`));
    await page.getByRole("link", { name: ENTRY }).click();
    await page.getByRole("heading", { name: `Entry ${ENTRY}` }).waitFor();
    const rows = page.locator(".results tbody tr");
    await page.getByRole("table", { name: "Records 1–25" }).waitFor();
    assert.equal(await rows.count(), 25);
    assert.match(await rows.first().innerText(), /image\/png/);
    assert.match(await rows.first().innerText(), /kind=image/);
    await page.getByRole("button", { name: "Next page" }).click();
    await page.getByRole("table", { name: "Records 26–30" }).waitFor();
    assert.equal(await rows.count(), 5);
    assert.equal(await page.getByRole("button", { name: "Next page" }).isDisabled(), true);
    await page.getByRole("button", { name: "Previous page" }).click();
    await page.getByRole("table", { name: "Records 1–25" }).waitFor();
  });

  it("previews an image record and a JSON record", async () => {
    const image = recordAt(0);
    await page.getByRole("button", { name: `Preview record ${image.ts}` }).click();
    const img = page.getByRole("img", { name: `Image record ${image.ts} (image/png)` });
    await img.waitFor();
    await page.waitForFunction((ts) => {
      const element = document.querySelector<HTMLImageElement>(`img[alt^="Image record ${ts}"]`);
      return element?.complete && element.naturalWidth > 0;
    }, image.ts);
    assert.deepEqual(await img.evaluate((element: HTMLImageElement) => [element.naturalWidth, element.naturalHeight]), [16, 12]);
    await page.screenshot({ path: path.join(artifacts, "console-desktop-preview.png"), fullPage: false });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: path.join(artifacts, "console-desktop.png"), fullPage: false });

    const json = recordAt(1);
    await page.getByRole("button", { name: `Preview record ${json.ts}` }).click();
    await page.locator("pre.preview-text").waitFor();
    assert.equal(await page.locator("pre.preview-text").innerText(), JSON.stringify({ speed: 12.5, ok: true }, null, 2));
  });

  it("runs a when query: the server's validation error inline, then a valid filter", async () => {
    const badWhen = '{"&kind": {"$no_such_op": 1}}';
    const direct = await api("POST", `/b/${BUCKET}/${ENTRY}/q`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query_type: "QUERY", when: JSON.parse(badWhen) }),
    });
    assert.equal(direct.status, 422);
    const serverMessage = direct.headers.get("x-reduct-error") ?? "";
    assert.ok(serverMessage.length > 0);

    await page.getByLabel("When (conditional query, JSON)").fill(badWhen);
    await page.getByRole("button", { name: "Show records" }).click();
    const alert = page.locator("form .message.error");
    await alert.waitFor();
    assert.equal(await alert.innerText(), `${serverMessage} (HTTP 422)`);
    assert.equal(await page.locator(".results tbody tr").count(), 0);

    await page.getByLabel("When (conditional query, JSON)").fill("not json");
    await page.getByRole("button", { name: "Show records" }).click();
    await page.getByText("When: not valid JSON").waitFor();

    // The page's own $limit would silently replace the user's: refused inline, before any query.
    await page.getByLabel("When (conditional query, JSON)").fill('{"&kind": {"$eq": "text"}, "$limit": 2}');
    await page.getByRole("button", { name: "Show records" }).click();
    await page.getByText("When: $limit is not supported here; the console pages the records itself").waitFor();
    assert.equal(await page.locator(".results tbody tr").count(), 0);

    await page.getByLabel("When (conditional query, JSON)").fill('{"&kind": {"$eq": "json"}}');
    await page.getByRole("button", { name: "Show records" }).click();
    await page.getByRole("table", { name: "Records 1–1" }).waitFor();
    assert.match(await page.locator(".results tbody tr").innerText(), /application\/json/);
  });

  it("edits a record's labels", async () => {
    const json = recordAt(1);
    await page.getByRole("button", { name: `Edit labels of record ${json.ts}` }).click();
    const editor = page.getByLabel(`Labels of record ${json.ts} (one name=value a line)`);
    // A name no HTTP header can carry: a clear message, not fetch's "Failed to construct 'Headers'".
    await editor.fill("kind=json\nbad name=1");
    await page.getByRole("button", { name: "Save labels" }).click();
    await page.getByText("Label name 'bad name' can contain only letters, digits and").waitFor();
    await editor.fill("kind=json\nreviewed=yes");
    await page.getByRole("button", { name: "Save labels" }).click();
    await page.locator(".results tbody tr").filter({ hasText: "reviewed=yes" }).waitFor();
    const read = await api("HEAD", `/b/${BUCKET}/${ENTRY}?ts=${json.ts}`);
    assert.equal(read.headers.get("x-reduct-label-reviewed"), "yes");
    assert.equal(read.headers.get("x-reduct-label-kind"), "json");
  });

  it("removes by query after a dry-run count", async () => {
    await page.getByLabel("When (conditional query, JSON)").fill('{"&n": {"$gte": 28}}');
    await page.getByRole("button", { name: "Count records to remove" }).click();
    await page.getByText("Dry run: 2 records would be removed.").waitFor();
    const recordCount = async () => {
      const { entries } = (await (await api("GET", `/b/${BUCKET}`)).json()) as {
        entries: Array<{ name: string; record_count: number }>;
      };
      return entries.find((entry) => entry.name === ENTRY)?.record_count;
    };
    assert.equal(await recordCount(), RECORDS, "the dry run removed nothing");
    await page.getByRole("button", { name: "Remove 2 records" }).click();
    await page.getByText("Removed 2 records.").waitFor();
    assert.equal(await recordCount(), RECORDS - 2);
  });

  it("creates a token (value shown once) and deletes it", async () => {
    await openSection(page, "Tokens");
    await page.getByRole("heading", { name: "Tokens" }).waitFor();
    await page.getByLabel("Name").fill("console-made");
    await page.getByLabel("Read access (buckets, comma-separated)").fill(`${BUCKET}, other-*`);
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = page.getByLabel("Value of token console-made");
    await secret.waitFor();
    const value = await secret.inputValue();
    assert.match(value, /^console-made-[0-9a-f]{32}$/);
    const me = (await (await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${value}` } })).json()) as {
      permissions: { read: string[] };
    };
    assert.deepEqual(me.permissions.read, [BUCKET, "other-*"]);
    await page.getByRole("row").filter({ hasText: "console-made" }).waitFor();

    await page.getByRole("button", { name: "Delete token console-made" }).click();
    await page.getByRole("row").filter({ hasText: "console-made" }).waitFor({ state: "detached" });
    assert.equal((await api("GET", "/tokens/console-made")).status, 404);
  });

  it("lists the server's lifecycles and replications, and shows why a replication cannot be created", async () => {
    for (const link of ["Lifecycles", "Replications"]) {
      await openSection(page, link);
      await page.getByRole("heading", { name: link }).waitFor();
      assert.equal(await page.getByText(`${link} are not available on this server.`).count(), 0);
    }
    await page.getByLabel("Name", { exact: true }).fill("console-replication");
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "POST" && response.status() === 404),
      page.getByRole("button", { name: "Create" }).click(),
    ]);
    await page.getByText("Source bucket 'my-bucket' for replication 'console-replication' does not exist").waitFor();
    assert.deepEqual(await (await api("GET", "/replications")).json(), { replications: [] });
  });

  it("creates a replication in the browser, shows its status, switches its mode and deletes it", async () => {
    await openSection(page, "Dashboard");
    await openSection(page, "Replications");
    await page.getByRole("heading", { name: "Replications" }).waitFor();
    // Paused: it logs the bucket's writes and sends nothing, so no other test sees a second bucket.
    const settings = {
      src_bucket: BUCKET,
      dst_bucket: "console-replica",
      dst_host: server.url,
      entries: ["nothing-*"],
      mode: "paused",
      compression: "gzip",
    };
    await page.getByLabel("Name", { exact: true }).fill("console-replication");
    await page.getByLabel("Settings (JSON)").fill(JSON.stringify(settings));
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "POST" && response.ok()),
      page.getByRole("button", { name: "Create" }).click(),
    ]);
    const row = page.getByRole("row").filter({ hasText: "console-replication" });
    await row.filter({ hasText: "inactive, 0 pending" }).waitFor();
    const stored = async () =>
      ((await (await api("GET", "/replications/console-replication")).json()) as { settings: Record<string, unknown> }).settings;
    assert.deepEqual(
      (({ src_bucket, dst_bucket, mode, compression, dst_token }) => ({ src_bucket, dst_bucket, mode, compression, dst_token }))(
        await stored(),
      ),
      { src_bucket: BUCKET, dst_bucket: "console-replica", mode: "paused", compression: "gzip", dst_token: null },
    );
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "PATCH" && response.ok()),
      page.getByLabel("Mode of console-replication").selectOption("disabled"),
    ]);
    assert.equal((await stored()).mode, "disabled");
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "DELETE" && response.ok()),
      page.getByRole("button", { name: "Delete console-replication" }).click(),
    ]);
    await row.waitFor({ state: "detached" });
    assert.equal((await api("GET", "/replications/console-replication")).status, 404);
  });

  it("drives the server's lifecycle API: mode and settings edited in the browser reach the server", async () => {
    // Disabled and for entries the bucket does not have: the policy must never remove the records
    // the later tests read (a policy runs as soon as it is handed to the bucket's object).
    const settings = {
      type: "delete",
      bucket: BUCKET,
      entries: ["nothing-*"],
      older_than: "30d",
      interval: "3600s",
      mode: "disabled",
    };
    const created = await api("POST", "/lifecycles/old-data", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify(settings),
    });
    assert.equal(created.status, 200, await created.text());
    const stored = async () =>
      ((await (await api("GET", "/lifecycles/old-data")).json()) as { settings: Record<string, unknown> }).settings;
    await openSection(page, "Dashboard");
    await openSection(page, "Lifecycles");
    await page.getByRole("row").filter({ hasText: "old-data" }).waitFor();
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "PATCH" && response.ok()),
      page.getByLabel("Mode of old-data").selectOption("dry_run"),
    ]);
    assert.equal((await stored()).mode, "dry_run");
    await page.getByRole("button", { name: "Edit old-data" }).click();
    // The form holds an example until the stored settings arrive: wait for the policy's own bucket.
    await page.waitForFunction(
      (bucket) => document.querySelector<HTMLTextAreaElement>("textarea")?.value.includes(JSON.stringify(bucket)),
      BUCKET,
    );
    const edited = await page.evaluate(() => {
      const area = document.querySelector<HTMLTextAreaElement>("textarea");
      if (!area) throw new Error("no settings box");
      const value = JSON.parse(area.value) as Record<string, unknown>;
      value.older_than = "60d";
      area.value = JSON.stringify(value);
      return value;
    });
    await Promise.all([
      page.waitForResponse((response) => response.request().method() === "PUT" && response.ok()),
      page.getByRole("button", { name: "Save" }).click(),
    ]);
    const after = await stored();
    assert.equal(after.older_than, edited.older_than);
    assert.equal(after.mode, "dry_run");
    const removed = await api("DELETE", "/lifecycles/old-data");
    assert.equal(removed.status, 200, await removed.text());
  });

  it("takes no input into the page on screen while the next one loads", async () => {
    await openSection(page, "Tokens");
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route("**/api/v1/replications", async (route) => {
      await held;
      await route.continue();
    });
    await page.getByRole("link", { name: "Replications" }).click();
    const main = page.locator("#main");
    await page.locator("#main[aria-busy=true]").waitFor();
    assert.equal(await main.evaluate((element) => (element as HTMLElement).inert), true);
    assert.equal(await page.getByRole("heading", { name: "Tokens" }).count(), 1); // still the old page
    release();
    await page.locator("#main:not([aria-busy])").waitFor();
    await page.unroute("**/api/v1/replications");
    assert.equal(await main.evaluate((element) => (element as HTMLElement).inert), false);
    await page.getByRole("heading", { name: "Replications" }).waitFor();
  });

  it("shows 'No such page' for a hash with a broken escape, without a page error", async () => {
    await page.goto(`${server.url}/ui/#/buckets/%E0%A4%A`);
    await page.getByText("No such page.").waitFor();
    await page.goto(`${server.url}/ui/#/buckets/${encodeURIComponent(BUCKET)}`);
    await page.getByRole("heading", { name: `Bucket ${BUCKET}` }).waitFor();
  });

  it("signs out when its token is deleted elsewhere mid-session, on the next action", async () => {
    const created = await api("POST", "/tokens/console-mid-session", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ full_access: true }),
    });
    const text = await created.text();
    assert.equal(created.status, 200, text);
    const { value } = JSON.parse(text) as { value: string };
    const [context, other] = await newPage({ viewport: { width: 1280, height: 900 } }, "mid-session");
    await other.goto(`${server.url}/ui/`);
    await other.getByLabel("API token").fill(value);
    await other.keyboard.press("Enter");
    await other.getByRole("heading", { name: "Dashboard" }).waitFor();
    await other.goto(`${server.url}/ui/#/buckets/${encodeURIComponent(BUCKET)}/${encodeURIComponent(ENTRY)}`);
    await other.getByRole("table", { name: "Records 1–25" }).waitFor();
    assert.equal((await api("DELETE", "/tokens/console-mid-session")).status, 200);
    await other.getByRole("button", { name: `Preview record ${recordAt(0).ts}` }).click();
    await other.getByRole("heading", { name: "Sign in" }).waitFor();
    assert.equal(await other.evaluate(() => sessionStorage.length), 0);
    await context.close();
  });

  it("works at 375 px: no horizontal scrolling, records and preview usable", async () => {
    const [context, phone] = await newPage(
      { viewport: { width: 375, height: 760 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
      "phone",
    );
    await signIn(phone);
    const widths = async () => phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    let [scrollWidth, innerWidth] = await widths();
    assert.ok(scrollWidth! <= innerWidth!, `dashboard scrolls sideways: ${scrollWidth} > ${innerWidth}`);
    await phone.goto(`${server.url}/ui/#/buckets/${encodeURIComponent(BUCKET)}/${encodeURIComponent(ENTRY)}`);
    await phone.getByRole("heading", { name: `Entry ${ENTRY}` }).waitFor();
    await phone.getByRole("table", { name: "Records 1–25" }).waitFor();
    [scrollWidth, innerWidth] = await widths();
    assert.ok(scrollWidth! <= innerWidth!, `records page scrolls sideways: ${scrollWidth} > ${innerWidth}`);
    const image = recordAt(0);
    await phone.getByRole("button", { name: `Preview record ${image.ts}` }).tap();
    await phone.getByRole("img", { name: `Image record ${image.ts} (image/png)` }).waitFor();
    await phone.screenshot({ path: path.join(artifacts, "console-phone.png"), fullPage: false });
    await phone.getByRole("link", { name: "Tokens" }).tap();
    await phone.getByRole("heading", { name: "Tokens" }).waitFor();
    [scrollWidth, innerWidth] = await widths();
    assert.ok(scrollWidth! <= innerWidth!, `tokens page scrolls sideways: ${scrollWidth} > ${innerWidth}`);
    await context.close();
  });

  it("left no browser console error and no unhandled error in the server's log", () => {
    assert.deepEqual(consoleErrors, []);
    assert.deepEqual(unhandledErrorLines(server.output()), []);
  });
});
