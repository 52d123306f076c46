// The harness's batch codec against itself: what renderV1Batch/renderV2Batch write, the readers
// parse back to the same records (entries, timestamps, content types, labels, bytes). The crash
// loop, the soak and the bench all frame their batches with it, so a codec slip would make them
// test the wrong thing. Needs no server.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  decodeEntryName,
  encodeEntryName,
  type OutgoingV2Record,
  parseLabelList,
  parseV1Read,
  parseV2Read,
  renderV1Batch,
  renderV2Batch,
  v1BatchErrors,
  v2BatchErrors,
} from "../../scripts/lib/batch-codec.ts";

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

const RECORDS: OutgoingV2Record[] = [
  { entry: "cam/front", ts: 1_000_010, contentType: "image/jpeg", labels: { a: "1", list: "x,y" }, data: Buffer.from("one") },
  { entry: "cam/front", ts: 1_000_000, contentType: "image/jpeg", labels: { a: "1" }, data: Buffer.from("zero") },
  { entry: "cam/front", ts: 1_000_020, contentType: "text/plain", labels: {}, data: Buffer.alloc(0) },
  { entry: "log ü", ts: 1_000_005, contentType: "application/json", labels: { level: "info" }, data: Buffer.from("{}") },
];

describe("batch codec", () => {
  it("a v1 batch parses back as written, in timestamp order", () => {
    const own = RECORDS.filter((record) => record.entry === "cam/front");
    const { headers, body } = renderV1Batch(own);
    const parsed = parseV1Read(headers, body);
    assert.equal(parsed.extraBytes, 0);
    const expected = [...own].sort((a, b) => a.ts - b.ts);
    assert.deepEqual(
      parsed.records.map(({ ts, size, contentType, labels, sha256: digest }) => ({ ts, size, contentType, labels, digest })),
      expected.map(({ ts, data, contentType, labels }) => ({ ts, size: data.length, contentType, labels, digest: sha256(data) })),
    );
  });

  for (const labelIndexes of [false, true]) {
    it(`a v2 batch over two entries parses back as written (label indexes: ${labelIndexes})`, () => {
      const { headers, body, entries } = renderV2Batch(RECORDS, { labelIndexes });
      assert.deepEqual(entries, ["cam/front", "log ü"]);
      const parsed = parseV2Read(headers, body);
      assert.equal(parsed.extraBytes, 0);
      for (const entry of entries) {
        const expected = RECORDS.filter((record) => record.entry === entry).sort((a, b) => a.ts - b.ts);
        assert.deepEqual(
          parsed.records
            .get(entry)
            ?.map(({ ts, size, contentType, labels, sha256: digest }) => ({ ts, size, contentType, labels, digest })),
          expected.map(({ ts, data, contentType, labels }) => ({
            ts,
            size: data.length,
            contentType,
            labels,
            digest: sha256(data),
          })),
        );
      }
    });
  }

  it("a v1 read whose body is short of the announced sizes says so", () => {
    const { headers, body } = renderV1Batch(RECORDS.slice(0, 2));
    const parsed = parseV1Read(headers, body.subarray(0, body.length - 1));
    assert.equal(parsed.extraBytes, -1);
    assert.equal(parsed.records.at(-1)?.truncated, true);
  });

  it("per-record errors map back to timestamps (v1) and to entry and timestamp (v2)", () => {
    assert.deepEqual(
      [...v1BatchErrors({ "x-reduct-error-1000": "409,exists", "x-reduct-time-5": "1,text/plain" })],
      [[1000, "409,exists"]],
    );
    assert.deepEqual(
      [...v2BatchErrors({ "x-reduct-error-1-5": "409,exists" }, ["a", "b"], 1_000)],
      [["b\u00001005", "409,exists"]],
    );
  });

  it("entry names and label lists survive their encodings", () => {
    for (const name of ["plain", "with space", "ü/ß", "a,b", "%41"]) assert.equal(decodeEntryName(encodeEntryName(name)), name);
    assert.deepEqual(parseLabelList('a=1, b="x,y",c=,fragment'), { a: "1", b: "x,y", c: "" });
  });
});
