import { describe, expect, it } from "vitest";
import {
  CHUNK_MAX_DESCRIPTOR_BYTES,
  CHUNK_MAX_PAYLOAD_BYTES,
  CHUNK_MAX_RECORDS,
  type Descriptor,
  decodeDescriptors,
  descriptorBytes,
  encodeDescriptors,
  findTs,
  Loc,
  lowerBound,
  type PackedRecord,
  packChunk,
  splitIntoChunks,
  stagedBytesOf,
} from "../../src/bucket/record-chunks";

function descriptor(ts: number, overrides: Partial<Descriptor> = {}): Descriptor {
  return {
    ts,
    block_id: 1,
    size: 3,
    content_type: "application/octet-stream",
    labels: {},
    meta_len: 20,
    block_begin: 0,
    loc: Loc.Staged,
    key: null,
    offset: 0,
    ...overrides,
  };
}

function staged(ts: number, size: number): PackedRecord {
  return { descriptor: descriptor(ts, { size }), bytes: new Uint8Array(size).fill(ts % 251) };
}

describe("descriptor encoding", () => {
  it("round-trips every field, labels included", () => {
    const records = [
      descriptor(1, { labels: { a: "1", "b-c": "x y" }, content_type: "image/jpeg", meta_len: 41, block_begin: 7 }),
      descriptor(2, { loc: Loc.Object, key: "gen/1/2-attempt", offset: 0, size: 1_048_576 }),
      descriptor(Number.MAX_SAFE_INTEGER, { loc: Loc.Block, offset: 99 }),
    ];
    expect(decodeDescriptors(encodeDescriptors(records))).toEqual(records);
  });

  it("estimates at least the real JSON length of a descriptor", () => {
    const d = descriptor(1_700_000_000_000_000, { labels: { sensor: "lidar-front", quality: "0.97" }, key: "k" });
    expect(descriptorBytes(d)).toBeGreaterThanOrEqual(encodeDescriptors([d]).length - 2);
  });
});

describe("binary search over a chunk", () => {
  const records = [2, 4, 6, 8].map((ts) => descriptor(ts));
  it.each([
    [2, 0],
    [8, 3],
    [5, -1],
    [1, -1],
    [9, -1],
  ])("findTs(%i) = %i", (ts, index) => {
    expect(findTs(records, ts)).toBe(index);
  });
  it.each([
    [0, 0],
    [2, 0],
    [3, 1],
    [8, 3],
    [9, 4],
  ])("lowerBound(%i) = %i", (ts, index) => {
    expect(lowerBound(records, ts)).toBe(index);
  });
});

describe("packing a chunk", () => {
  it("concatenates staged bytes and points each record at its own", () => {
    const records = [
      staged(1, 3),
      { descriptor: descriptor(2, { loc: Loc.Object, key: "own", size: 10 }), bytes: null },
      staged(3, 0),
      staged(4, 5),
    ];
    const image = packChunk(records);
    expect(image.payload?.byteLength).toBe(8);
    expect(image.records.map((d) => d.offset)).toEqual([0, 0, 3, 3]);
    for (const [i, record] of records.entries()) {
      if (record.descriptor.loc !== Loc.Staged) continue;
      expect(stagedBytesOf(image.payload, image.records[i]!)).toEqual(record.bytes);
    }
  });

  it("stores no payload when nothing is staged", () => {
    expect(packChunk([{ descriptor: descriptor(1, { loc: Loc.Block, offset: 40 }), bytes: null }]).payload).toBeNull();
  });
});

describe("splitting records into chunk rows", () => {
  const sizes = (parts: PackedRecord[][]) => parts.map((part) => part.length);

  it("keeps a batch of 80 small records in one row", () => {
    expect(sizes(splitIntoChunks(Array.from({ length: 80 }, (_, i) => staged(i, 1024))))).toEqual([80]);
  });

  it("cuts at CHUNK_MAX_RECORDS", () => {
    const parts = splitIntoChunks(Array.from({ length: CHUNK_MAX_RECORDS * 2 + 1 }, (_, i) => staged(i, 1)));
    expect(sizes(parts)).toEqual([CHUNK_MAX_RECORDS, CHUNK_MAX_RECORDS, 1]);
  });

  it("cuts before the staged bytes pass CHUNK_MAX_PAYLOAD_BYTES (a row holds at most 2 MB)", () => {
    const size = 100 * 1024;
    const parts = splitIntoChunks(Array.from({ length: 25 }, (_, i) => staged(i, size)));
    for (const part of parts) expect(part.length * size).toBeLessThanOrEqual(CHUNK_MAX_PAYLOAD_BYTES);
    expect(parts.flat().map((record) => record.descriptor.ts)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it("cuts before the descriptors pass CHUNK_MAX_DESCRIPTOR_BYTES (big labels)", () => {
    const labels = { big: "x".repeat(8 * 1024) };
    const records = Array.from({ length: 200 }, (_, i) => ({ descriptor: descriptor(i, { labels }), bytes: new Uint8Array(3) }));
    const parts = splitIntoChunks(records);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(encodeDescriptors(part.map((record) => record.descriptor)).length).toBeLessThanOrEqual(CHUNK_MAX_DESCRIPTOR_BYTES);
    }
  });

  it("never makes an empty chunk, even for a single record above the limits", () => {
    expect(sizes(splitIntoChunks([staged(1, CHUNK_MAX_PAYLOAD_BYTES + 1)]))).toEqual([1]);
    expect(splitIntoChunks([])).toEqual([]);
  });
});
