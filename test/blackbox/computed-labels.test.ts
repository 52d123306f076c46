/**
 * Computed `@labels` through reduct-js: no extension computes them, so a query on one yields no
 * record, a strict one fails with 404 `Reference '@size' not found` (as ReductStore without
 * extensions), and a query naming an extension gets 422.
 */

import assert from "node:assert/strict";
import { after, beforeEach, describe, it } from "node:test";
import { all, assertApiError, cleanStorage, createFixtureBucket, makeClient } from "./helpers.ts";

describe("Computed labels", () => {
  const client = makeClient();

  beforeEach(async () => {
    await cleanStorage(client);
    await createFixtureBucket(client);
  });

  after(async () => {
    await cleanStorage(client);
  });

  for (const entries of ["entry-2", ["entry-1", "entry-2"]]) {
    it(`a query on @size selects nothing, strict fails with 404 (entries ${entries})`, async () => {
      const bucket = await client.getBucket("bucket");
      const when = { "@size": { $gt: 1 } };
      assert.deepEqual(await all(bucket.query(entries, undefined, undefined, { when })), []);
      await assertApiError(
        all(bucket.query(entries, undefined, undefined, { when, strict: true })),
        404,
        "Reference '@size' not found",
      );
      // The records are all still there for a query without it.
      assert.ok((await all(bucket.query(entries))).length >= 3);
    });
  }

  it("a query naming an extension gets 422", async () => {
    const bucket = await client.getBucket("bucket");
    await assertApiError(
      all(bucket.query("entry-2", undefined, undefined, { ext: { select: {} } })),
      422,
      "Unknown extension 'select': no extensions are installed",
    );
  });
});
