/** The failures record operations answer with, as the API words them. */
import { fail } from "../errors";

export const recordNotFound = (bucket: string, entry: string, ts: number) =>
  fail(404, `Record ${ts} not found in entry ${bucket}/${entry}`);
export const entryNotFound = (bucket: string, entry: string) => fail(404, `Entry '${entry}' not found in bucket '${bucket}'`);
export const stillBeingWritten = (bucket: string, entry: string, ts: number) =>
  fail(425, `Record with timestamp ${ts} in ${bucket}/${entry} is still being written`);
