/**
 * The chunk merge engine: how new, edited and removed records change an entry's chunk rows. Logic
 * only; the rows are read and written through the `record_chunks` table module. Chunks of an
 * entry stay disjoint and ordered: a record written into the range of existing chunks (out of
 * order) is merged into them.
 */
import {
  APPEND_MAX_PAYLOAD_BYTES,
  APPEND_MAX_RECORDS,
  type Descriptor,
  decodeDescriptors,
  encodeDescriptors,
  Loc,
  type PackedRecord,
  packChunk,
  splitIntoChunks,
  stagedBytesOf,
} from "./record-chunks";
import type { ChunkContent, ChunkHead, RecordChunksTable } from "./tables/record-chunks";

interface LoadedChunk extends ChunkHead {
  records: Descriptor[];
}

/** A chunk row's content for records laid out by packChunk; null when there are none. */
function contentOf(records: readonly PackedRecord[]): ChunkContent | null {
  const image = packChunk(records);
  const first = image.records[0];
  const last = image.records[image.records.length - 1];
  if (!first || !last) return null;
  return {
    minTs: first.ts,
    maxTs: last.ts,
    recordCount: image.records.length,
    descriptors: encodeDescriptors(image.records),
    payload: image.payload,
  };
}

export class ChunkStore {
  constructor(private readonly table: RecordChunksTable) {}

  decode(chunk: ChunkHead): Descriptor[] {
    return decodeDescriptors(chunk.descriptors);
  }

  descriptorsOf(chunkId: number): Descriptor[] {
    return decodeDescriptors(this.table.descriptors(chunkId));
  }

  /** Chunks of an entry whose ranges meet [lo, hi], ascending. */
  private overlapping(entryId: number, lo: number, hi: number): LoadedChunk[] {
    const first = this.table.boundsAtOrBefore(entryId, lo);
    const from = first && first.max_ts >= lo ? first.min_ts : lo;
    return this.table.startingIn(entryId, from, hi).map((head) => ({ ...head, records: decodeDescriptors(head.descriptors) }));
  }

  private payloadOf(chunkId: number): Uint8Array | null {
    const payload = this.table.payload(chunkId);
    return payload ? new Uint8Array(payload) : null;
  }

  private insert(entryId: number, records: PackedRecord[]): void {
    const content = contentOf(records);
    if (content) this.table.insert(entryId, content);
  }

  /** Writes a chunk's new content; an emptied chunk is deleted. */
  private rewrite(chunkId: number, records: PackedRecord[], oldMinTs: number): void {
    const content = contentOf(records);
    if (content) this.table.update(chunkId, oldMinTs, content);
    else this.table.delete(chunkId);
  }

  /** A chunk's records with their staged bytes, for rewriting it. */
  private unpack(chunk: LoadedChunk): PackedRecord[] {
    const payload = chunk.records.some((d) => d.loc === Loc.Staged) ? this.payloadOf(chunk.id) : null;
    return chunk.records.map((descriptor) => ({
      descriptor,
      bytes: descriptor.loc === Loc.Staged ? stagedBytesOf(payload, descriptor) : null,
    }));
  }

  /**
   * Adds new records (ascending, none of their timestamps taken) to an entry's chunks: appended to
   * the last chunk while it is small, as new chunks, or merged into chunks whose range they fall in.
   */
  insertRecords(entryId: number, incoming: PackedRecord[]): void {
    const first = incoming[0];
    const last = incoming[incoming.length - 1];
    if (!first || !last) return;
    const incomingBytes = incoming.reduce((sum, record) => sum + (record.bytes?.byteLength ?? 0), 0);
    // The common case in one query: the records come after the entry's last chunk. Its descriptors
    // and bytes are loaded only when the records will be appended to it.
    const tail = this.table.tail(entryId, incoming.length, APPEND_MAX_RECORDS, incomingBytes, APPEND_MAX_PAYLOAD_BYTES);
    if (!tail || tail.max_ts < first.descriptor.ts) {
      if (tail && tail.descriptors !== null) {
        const payload = tail.payload ? new Uint8Array(tail.payload) : null;
        const existing = decodeDescriptors(tail.descriptors).map((descriptor) => ({
          descriptor,
          bytes: descriptor.loc === Loc.Staged ? stagedBytesOf(payload, descriptor) : null,
        }));
        this.rewrite(tail.id, [...existing, ...incoming], tail.min_ts);
      } else {
        for (const part of splitIntoChunks(incoming)) this.insert(entryId, part);
      }
      return;
    }
    const before = this.table.boundsAtOrBefore(entryId, first.descriptor.ts);
    const nextStart = this.table.nextStartAfter(entryId, first.descriptor.ts);
    const inOrder =
      (!before || before.max_ts < first.descriptor.ts) && (nextStart === undefined || nextStart > last.descriptor.ts);
    if (inOrder) {
      // The records fit in a gap between two chunks (or before the first).
      if (
        before &&
        before.record_count + incoming.length <= APPEND_MAX_RECORDS &&
        before.payload_bytes + incomingBytes <= APPEND_MAX_PAYLOAD_BYTES
      ) {
        const loaded = { ...before, descriptors: "", records: this.descriptorsOf(before.id) };
        this.rewrite(before.id, [...this.unpack(loaded), ...incoming], before.min_ts);
        return;
      }
      for (const part of splitIntoChunks(incoming)) this.insert(entryId, part);
      return;
    }
    const overlapping = this.overlapping(entryId, first.descriptor.ts, last.descriptor.ts);
    // Out of order: merge with the chunks whose range the new records fall into.
    const merged = [...overlapping.flatMap((chunk) => this.unpack(chunk)), ...incoming].sort(
      (a, b) => a.descriptor.ts - b.descriptor.ts,
    );
    // Callers check timestamps first; a duplicate here is a bug, and a 500 beats a corrupt index.
    merged.forEach((record, i) => {
      if (i > 0 && merged[i - 1]!.descriptor.ts === record.descriptor.ts) {
        throw new Error(`index merge met timestamp ${record.descriptor.ts} twice in entry ${entryId}`);
      }
    });
    const parts = splitIntoChunks(merged);
    overlapping.forEach((chunk, i) => {
      const part = parts[i];
      if (part) this.rewrite(chunk.id, part, chunk.min_ts);
      else this.table.delete(chunk.id);
    });
    for (const part of parts.slice(overlapping.length)) this.insert(entryId, part);
  }

  /**
   * Rewrites the chunks meeting [lo, hi]: `edit` returns a record's new descriptor, or null to drop
   * it (its staged bytes go too). Returns the dropped descriptors.
   */
  editRange(entryId: number, lo: number, hi: number, edit: (d: Descriptor) => Descriptor | null | undefined): Descriptor[] {
    const dropped: Descriptor[] = [];
    for (const chunk of this.overlapping(entryId, lo, hi)) {
      let changed = false;
      let bytesChanged = false;
      const kept: Descriptor[] = [];
      for (const descriptor of chunk.records) {
        const next = edit(descriptor);
        if (next === undefined || next === descriptor) {
          kept.push(descriptor);
          continue;
        }
        changed = true;
        if (next === null) {
          dropped.push(descriptor);
          if (descriptor.loc === Loc.Staged) bytesChanged = true;
        } else {
          if (next.loc !== descriptor.loc) bytesChanged = true;
          kept.push(next);
        }
      }
      if (!changed) continue;
      if (bytesChanged || kept.length === 0) {
        const payload = this.payloadOf(chunk.id);
        const oldByTs = new Map(chunk.records.map((d) => [d.ts, d]));
        this.rewrite(
          chunk.id,
          kept.map((descriptor) => {
            const old = oldByTs.get(descriptor.ts);
            const staged = descriptor.loc === Loc.Staged && old ? stagedBytesOf(payload, old) : null;
            return { descriptor, bytes: staged };
          }),
          chunk.min_ts,
        );
      } else {
        // The staged bytes stay as they are: only descriptors changed (labels, or records that are
        // not staged were dropped, which may move the chunk's bounds).
        this.table.update(chunk.id, chunk.min_ts, {
          minTs: kept[0]!.ts,
          maxTs: kept[kept.length - 1]!.ts,
          recordCount: kept.length,
          descriptors: encodeDescriptors(kept),
        });
      }
    }
    return dropped;
  }

  /** The staged records of a block, ascending by timestamp, with their bytes (for sealing). */
  stagedOfBlock(
    entryId: number,
    blockId: number,
    minTs: number,
    maxTs: number,
  ): { ts: number; size: number; bytes: Uint8Array }[] {
    const staged: { ts: number; size: number; bytes: Uint8Array }[] = [];
    for (const chunk of this.overlapping(entryId, minTs, maxTs)) {
      const mine = chunk.records.filter((d) => d.block_id === blockId && d.loc === Loc.Staged);
      if (mine.length === 0) continue;
      const payload = this.payloadOf(chunk.id);
      for (const d of mine) staged.push({ ts: d.ts, size: d.size, bytes: stagedBytesOf(payload, d) });
    }
    return staged;
  }
}
