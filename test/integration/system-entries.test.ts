/**
 * `$meta` attachment entries stay system entries on every path: a rename can neither turn a plain
 * entry into one nor a `$meta` entry into a plain one, attachments move and go only with their
 * parent, and a FIFO bucket counts its attachments toward the quota but evicts only plain data.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { bucketInfo, bytesOf, createBucket, putRecord } from "../helpers/records";

const rename = (bucket: string, entry: string, newName: string) =>
  api("PUT", `/b/${bucket}/${entry}/rename`, { body: JSON.stringify({ new_name: newName }) });

async function entryNames(bucket: string): Promise<string[]> {
  return (await bucketInfo(bucket)).entries.map((entry) => String(entry.name)).sort();
}

async function readBody(bucket: string, entry: string, ts: number): Promise<[number, string]> {
  const response = await api("GET", `/b/${bucket}/${entry}?ts=${ts}`);
  return [response.status, await response.text()];
}

/** A bucket with a plain entry `junk`, an entry `x` and its attachment `x/$meta`, and a bucket-level `$meta`. */
async function seeded(settings?: Record<string, unknown>): Promise<string> {
  const bucket = uniqueName();
  await createBucket(bucket, settings);
  await putRecord(bucket, "junk", 1, "junk-bytes");
  await putRecord(bucket, "x", 1, "x-bytes");
  await putRecord(bucket, "x/$meta", 1, '{"a":1}', { labels: { key: "k" } });
  await putRecord(bucket, "$meta", 1, '{"b":2}', { labels: { key: "k" } });
  return bucket;
}

describe("renames never change whether an entry is a system entry", () => {
  const cases: { name: string; from: string; to: string; status: number; message: (b: string) => string }[] = [
    {
      name: "plain entry to $meta",
      from: "junk",
      to: "$meta",
      status: 422,
      message: () => "Entry 'junk' can't be renamed to system entry '$meta'",
    },
    {
      name: "plain entry to another entry's attachments",
      from: "junk",
      to: "x2/$meta",
      status: 422,
      message: () => "Entry 'junk' can't be renamed to system entry 'x2/$meta'",
    },
    {
      name: "plain entry to an existing attachment entry",
      from: "junk",
      to: "x/$meta",
      status: 422,
      message: () => "Entry 'junk' can't be renamed to system entry 'x/$meta'",
    },
    {
      name: "attachments to a plain name",
      from: "x/$meta",
      to: "plain",
      status: 409,
      message: () => "System entry 'x/$meta' can be renamed only with its parent entry",
    },
    {
      name: "attachments to another entry's attachments",
      from: "x/$meta",
      to: "y/$meta",
      status: 409,
      message: () => "System entry 'x/$meta' can be renamed only with its parent entry",
    },
    {
      name: "bucket-level attachments to a plain name",
      from: "$meta",
      to: "plain",
      status: 409,
      message: () => "System entry '$meta' can be renamed only with its parent entry",
    },
  ];

  for (const row of cases) {
    it(`${row.name}: ${row.status}, nothing changes`, async () => {
      const bucket = await seeded();
      const before = await bucketInfo(bucket);
      await expectError(await rename(bucket, row.from, row.to), row.status, row.message(bucket));
      expect(await bucketInfo(bucket)).toEqual(before);
      expect(await readBody(bucket, "junk", 1)).toEqual([200, "junk-bytes"]);
      expect(await readBody(bucket, "x/$meta", 1)).toEqual([200, '{"a":1}']);
      expect(await readBody(bucket, "$meta", 1)).toEqual([200, '{"b":2}']);
      for (const target of ["x2/$meta", "plain", "y/$meta"]) {
        expect((await api("GET", `/b/${bucket}/${target}?ts=1`)).status, target).toBe(404);
      }
    });
  }

  it("a write-only token gets the same refusal in a bucket without attachments", async () => {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 10_000 });
    await putRecord(bucket, "junk", 1, "junk-bytes");
    const created = await api("POST", `/tokens/${uniqueName()}`, {
      body: JSON.stringify({ full_access: false, read: [], write: [bucket] }),
    });
    const { value } = (await created.json()) as { value: string };
    const response = await api("PUT", `/b/${bucket}/junk/rename`, { token: value, body: JSON.stringify({ new_name: "$meta" }) });
    await expectError(response, 422, "Entry 'junk' can't be renamed to system entry '$meta'");
    expect(await entryNames(bucket)).toEqual(["junk"]);
    expect((await api("DELETE", `/b/${bucket}/junk`, { token: value })).status).toBe(200);
    expect(await entryNames(bucket)).toEqual([]);
  });

  it("renaming the parent moves its attachments along, still hidden and still removed with it", async () => {
    const bucket = await seeded();
    expect((await rename(bucket, "x", "y")).status).toBe(200);
    expect(await entryNames(bucket)).toEqual(["junk", "y"]);
    expect(await readBody(bucket, "y/$meta", 1)).toEqual([200, '{"a":1}']);
    expect((await api("GET", `/b/${bucket}/x/$meta?ts=1`)).status).toBe(404);
    expect((await api("DELETE", `/b/${bucket}/y`)).status).toBe(200);
    expect((await api("GET", `/b/${bucket}/y/$meta?ts=1`)).status).toBe(404);
    expect(await entryNames(bucket)).toEqual(["junk"]);
  });
});

describe("a FIFO bucket bounds its whole size, attachments included, evicting only plain data", () => {
  /** Attachments of 7 KB in a 10 KB FIFO bucket: only plain records of up to ~2.7 KB fit beside them. */
  async function fifoWithAttachments(): Promise<string> {
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: 10_000, max_block_records: 2 });
    for (let i = 0; i < 7; i++) {
      await putRecord(bucket, "cam/$meta", 100 + i, bytesOf(1000, i + 1), { labels: { key: `k${i}` } });
    }
    return bucket;
  }

  type Write = (
    bucket: string,
    entry: string,
    ts: number,
    body: Uint8Array,
    labels?: Record<string, string>,
  ) => Promise<Response>;
  const labelList = (labels: Record<string, string>) =>
    Object.entries(labels)
      .map(([name, value]) => `${name}=${value}`)
      .join(",");
  const writePaths: { path: string; write: Write }[] = [
    {
      path: "single record",
      write: (bucket, entry, ts, body, labels = {}) =>
        api("POST", `/b/${bucket}/${entry}?ts=${ts}`, {
          headers: Object.fromEntries(Object.entries(labels).map(([name, value]) => [`x-reduct-label-${name}`, value])),
          body,
        }),
    },
    {
      path: "v1 batch",
      write: (bucket, entry, ts, body, labels = {}) =>
        api("POST", `/b/${bucket}/${entry}/batch`, {
          headers: {
            "content-type": "application/octet-stream",
            [`x-reduct-time-${ts}`]: `${body.byteLength},application/octet-stream,${labelList(labels)}`,
          },
          body,
        }),
    },
    {
      path: "v2 batch",
      write: (bucket, entry, ts, body, labels = {}) => {
        const names = Object.keys(labels);
        return api("POST", `/io/${bucket}/write`, {
          headers: {
            "content-type": "application/octet-stream",
            "x-reduct-entries": encodeURIComponent(entry).replaceAll("%24", "$"),
            "x-reduct-start-ts": String(ts),
            ...(names.length > 0 ? { "x-reduct-labels": names.join(",") } : {}),
            "x-reduct-0-0": `${body.byteLength},application/octet-stream${names.length > 0 ? `,${names.map((name, i) => `${i}=${labels[name]}`).join(",")}` : ""}`,
          },
          body,
        });
      },
    },
  ];

  /** The single outcome of a one-record write on any path: status and error message. */
  async function outcome(response: Response): Promise<{ status: number; error: string | null }> {
    await response.arrayBuffer();
    const perRecord = [...response.headers].filter(([name]) => name.startsWith("x-reduct-error-"));
    if (perRecord.length === 0) return { status: response.status, error: response.headers.get("x-reduct-error") };
    const [[, only = ""] = [], ...more] = perRecord;
    expect(more).toEqual([]);
    const [status, ...message] = only.split(",");
    return { status: Number(status), error: message.join(",") };
  }

  const sizeOf = async (bucket: string) => ((await bucketInfo(bucket)).info as { size: number }).size;

  for (const { path, write } of writePaths) {
    it(`${path}: plain writes keep being accepted beside the attachments, size never over the quota`, async () => {
      const bucket = await fifoWithAttachments();
      for (let i = 0; i < 12; i++) {
        expect(await outcome(await write(bucket, "cam", 1000 + i, bytesOf(2000, i + 50))), `write ${i}`).toEqual({
          status: 200,
          error: null,
        });
        expect(await sizeOf(bucket), `size after write ${i}`).toBeLessThanOrEqual(10_000);
      }
      for (let i = 0; i < 7; i++) expect((await api("GET", `/b/${bucket}/cam/$meta?ts=${100 + i}`)).status).toBe(200);
      expect((await api("GET", `/b/${bucket}/cam?ts=1011`)).status).toBe(200);
    });

    it(`${path}: a plain record that fits only without the attachments is refused, evicting nothing`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket, { quota_type: "FIFO", quota_size: 100_000 });
      await putRecord(bucket, "e/$meta", 1, bytesOf(90_000), { labels: { key: "k" } });
      await putRecord(bucket, "e", 2, bytesOf(5_000));
      const before = await bucketInfo(bucket);
      expect(await outcome(await write(bucket, "p", 3, bytesOf(90_000)))).toEqual({
        status: 400,
        error: `Failed to keep quota of '${bucket}'`,
      });
      expect(await bucketInfo(bucket)).toEqual(before);
      expect(await sizeOf(bucket)).toBeLessThanOrEqual(100_000);
    });

    it(`${path}: an attachment write evicts the oldest plain data to fit`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket, { quota_type: "FIFO", quota_size: 10_000, max_block_records: 1 });
      for (let i = 0; i < 3; i++) await putRecord(bucket, "cam", 10 + i, bytesOf(3000, i + 1));
      expect(await outcome(await write(bucket, "cam/$meta", 20, bytesOf(5000), { key: "calibration" }))).toEqual({
        status: 200,
        error: null,
      });
      expect(await sizeOf(bucket)).toBeLessThanOrEqual(10_000);
      expect((await api("GET", `/b/${bucket}/cam/$meta?ts=20`)).status).toBe(200);
      expect((await api("GET", `/b/${bucket}/cam?ts=10`)).status).toBe(404);
      expect((await api("GET", `/b/${bucket}/cam?ts=12`)).status).toBe(200);
    });

    it(`${path}: an attachment that cannot fit even without any plain data is refused, evicting nothing`, async () => {
      const bucket = await fifoWithAttachments();
      await putRecord(bucket, "cam", 1, bytesOf(2000));
      const before = await bucketInfo(bucket);
      expect(await outcome(await write(bucket, "cam/$meta", 200, bytesOf(3500), { key: "big" }))).toEqual({
        status: 400,
        error: `Failed to keep quota of '${bucket}'`,
      });
      expect(await bucketInfo(bucket)).toEqual(before);
    });
  }

  it("size stays within the quota after every step of a seeded mix of plain and attachment writes", async () => {
    const quota = 20_000;
    const bucket = uniqueName();
    await createBucket(bucket, { quota_type: "FIFO", quota_size: quota, max_block_records: 3 });
    let state = 20261202;
    const next = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return (state >>> 16) % n;
    };
    let accepted = 0;
    for (let step = 0; step < 60; step++) {
      const { write } = writePaths.at(next(writePaths.length)) ?? writePaths[0]!;
      const attachment = next(2) === 0;
      const size = 200 + next(attachment ? 3000 : 6000);
      const result = await outcome(
        attachment
          ? await write(bucket, "cam/$meta", 1000 + step, bytesOf(size, step + 1), { key: `k${next(8)}` })
          : await write(bucket, `e${next(3)}`, 1000 + step, bytesOf(size, step + 1)),
      );
      if (result.status === 200) accepted++;
      else expect(result, `step ${step}`).toEqual({ status: 400, error: `Failed to keep quota of '${bucket}'` });
      expect(await sizeOf(bucket), `size after step ${step}`).toBeLessThanOrEqual(quota);
    }
    expect(accepted).toBeGreaterThan(30);
  });
});

describe("a label update never takes the key label from an attachment", () => {
  const keyRequired = "System entry 'x/$meta' records must contain label 'key'";
  /** How each path reports the outcome of the update of record 1, and whether record 2 got `other=new`. */
  const paths: {
    name: string;
    update: (bucket: string, keyOp: string) => Promise<Response>;
    errorOf: (r: Response) => string | null;
  }[] = [
    {
      name: "single record",
      update: (bucket, keyOp) =>
        api("PATCH", `/b/${bucket}/x/$meta?ts=1`, {
          headers: { "x-reduct-label-key": keyOp.slice("key=".length), "x-reduct-label-other": "new" },
        }),
      errorOf: (response) => (response.status === 200 ? null : `${response.status},${response.headers.get("x-reduct-error")}`),
    },
    {
      name: "v1 batch",
      update: (bucket, keyOp) =>
        api("PATCH", `/b/${bucket}/x/$meta/batch`, {
          headers: { "x-reduct-time-1": `0,,${keyOp},other=new`, "x-reduct-time-2": "0,,other=new" },
        }),
      errorOf: (response) => response.headers.get("x-reduct-error-1"),
    },
    {
      name: "v2 batch",
      update: (bucket, keyOp) =>
        api("PATCH", `/io/${bucket}/update`, {
          headers: {
            "x-reduct-entries": "x%2F$meta",
            "x-reduct-start-ts": "1",
            "x-reduct-labels": "key,other",
            "x-reduct-0-0": `0,,${keyOp.replace("key=", "0=")},1=new`,
            // Ops accumulate per entry: the second record inherits the first one's, so it sets its key again.
            "x-reduct-0-1": "0,,0=k2,1=new",
          },
        }),
      errorOf: (response) => response.headers.get("x-reduct-error-0-0"),
    },
  ];

  const labelsAt = async (bucket: string, ts: number) => {
    const response = await api("GET", `/b/${bucket}/x/$meta?ts=${ts}`);
    await response.arrayBuffer();
    return Object.fromEntries(
      [...response.headers]
        .filter(([name]) => name.startsWith("x-reduct-label-"))
        .map(([name, value]) => [name.slice(15), value]),
    );
  };

  for (const { name, update, errorOf } of paths) {
    {
      const keyOp = "key=";
      it(`${name}: '${keyOp}' is refused with 422 for that record, the key stays`, async () => {
        const bucket = uniqueName();
        await createBucket(bucket);
        await putRecord(bucket, "x", 1, "x-bytes");
        await putRecord(bucket, "x/$meta", 1, '{"a":1}', { labels: { key: "k", other: "old" } });
        await putRecord(bucket, "x/$meta", 2, '{"b":2}', { labels: { key: "k2", other: "old" } });
        const response = await update(bucket, keyOp);
        await response.arrayBuffer();
        expect(errorOf(response)).toBe(`422,${keyRequired}`);
        expect(await labelsAt(bucket, 1)).toEqual({ key: "k", other: "old" });
        if (name !== "single record") {
          expect(response.status).toBe(200);
          expect(await labelsAt(bucket, 2)).toEqual({ key: "k2", other: "new" });
        }
      });
    }

    it(`${name}: a new non-empty key is accepted`, async () => {
      const bucket = uniqueName();
      await createBucket(bucket);
      await putRecord(bucket, "x/$meta", 1, '{"a":1}', { labels: { key: "k", other: "old" } });
      await putRecord(bucket, "x/$meta", 2, '{"b":2}', { labels: { key: "k2", other: "old" } });
      const response = await update(bucket, "key=renamed");
      await response.arrayBuffer();
      expect(errorOf(response)).toBeNull();
      expect(await labelsAt(bucket, 1)).toEqual({ key: "renamed", other: "new" });
    });
  }
});

describe("attachments are removed only with their parent, on every removal path", () => {
  const systemRemovals: { name: string; request: (b: string) => Promise<Response> }[] = [
    { name: "single record", request: (b) => api("DELETE", `/b/${b}/x/$meta?ts=1`) },
    { name: "entry", request: (b) => api("DELETE", `/b/${b}/x/$meta`) },
    { name: "bucket-level entry", request: (b) => api("DELETE", `/b/${b}/$meta`) },
    {
      name: "v1 batch",
      request: (b) => api("DELETE", `/b/${b}/x/$meta/batch`, { headers: { "x-reduct-time-1": "" } }),
    },
    {
      name: "v2 batch",
      request: (b) =>
        api("DELETE", `/io/${b}/remove`, {
          headers: { "x-reduct-entries": "x%2F$meta", "x-reduct-start-ts": "1", "x-reduct-0-0": "" },
        }),
    },
    { name: "legacy query", request: (b) => api("DELETE", `/b/${b}/x/$meta/q?start=0`) },
    {
      name: "entry query",
      request: (b) => api("POST", `/b/${b}/x/$meta/q`, { body: JSON.stringify({ query_type: "REMOVE", start: 0 }) }),
    },
    {
      name: "v2 query",
      request: (b) =>
        api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "REMOVE", entries: ["x/$meta"], start: 0 }) }),
    },
    {
      name: "v2 query by pattern",
      request: (b) => api("POST", `/io/${b}/q`, { body: JSON.stringify({ query_type: "REMOVE", entries: ["*"], start: 0 }) }),
    },
  ];

  for (const row of systemRemovals) {
    it(`${row.name}: refused or skipped, the attachment stays`, async () => {
      const bucket = await seeded();
      const response = await row.request(bucket);
      const text = await response.text();
      const status = response.status;
      const perRecord = [...response.headers].filter(([name]) => name.startsWith("x-reduct-error-"));
      const removedAttachment = status === 200 && perRecord.length === 0 && !text.includes('"removed_records"');
      expect(removedAttachment, `${status} ${response.headers.get("x-reduct-error")} ${text}`).toBe(false);
      expect(await readBody(bucket, "x/$meta", 1)).toEqual([200, '{"a":1}']);
      expect(await readBody(bucket, "$meta", 1)).toEqual([200, '{"b":2}']);
    });
  }

  it("removing an entry directly answers 409 as the reference does", async () => {
    const bucket = await seeded();
    await expectError(
      await api("DELETE", `/b/${bucket}/x/$meta`),
      409,
      "System entry 'x/$meta' can be removed only with its parent entry",
    );
    await expectError(
      await api("DELETE", `/b/${bucket}/$meta`),
      409,
      "System entry '$meta' can be removed only with its parent entry",
    );
  });
});
