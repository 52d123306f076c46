// The append-only client journal of a crash-loop run. Every operation is written down before it is
// sent and when its answer is in, so what must be stored can be rebuilt from this file alone.
// Journal lines: `INTENT <id> <op> <json>`, `ACK <id> <status> <json>`, `FAIL <id> <message>`,
// `RESOLVE <id> <json>` (what the verifier observed about an indeterminate record), `CYCLE`/`KILL`
// markers.

import { appendFileSync, readFileSync } from "node:fs";
import { messageOf } from "../lib/errors.ts";
import type { HttpResponse } from "../lib/http-client.ts";
import { Model } from "./model.ts";

export class Journal {
  readonly file: string;
  nextId: number;
  /** The model kept up to date as lines are appended (the verifier replays the file instead). */
  readonly live: Model;

  constructor(file: string) {
    this.file = file;
    this.nextId = 1;
    this.live = new Model();
  }

  append(line: string): void {
    appendFileSync(this.file, `${line}\n`);
    this.live.apply(line);
  }

  intent(op: string, data: object): number {
    const id = this.nextId++;
    this.append(`INTENT ${id} ${op} ${JSON.stringify(data)}`);
    return id;
  }

  ack(
    id: number,
    status: number,
    extra: { response?: HttpResponse; body?: string; error?: string; errors?: Record<string, string> } = {},
  ): void {
    if (extra.response) {
      const { response } = extra;
      extra = { ...extra, response: undefined };
      if (response.status !== 200) extra.body = response.body.toString("utf8").slice(0, 200);
    }
    this.append(`ACK ${id} ${status} ${JSON.stringify(extra)}`);
  }

  fail(id: number, error: unknown): void {
    this.append(`FAIL ${id} ${messageOf(error).replace(/\s+/g, " ")}`);
  }

  resolve(data: { key: string; exists: boolean; labels?: Record<string, string>; evicted?: boolean }): void {
    this.append(`RESOLVE 0 ${JSON.stringify(data)}`);
  }

  marker(text: string): void {
    appendFileSync(this.file, `${text}\n`);
  }

  /** The model of the journal file, replayed from disk. */
  replay(): Model {
    const model = new Model();
    for (const line of readFileSync(this.file, "utf8").split("\n")) {
      if (/^(INTENT|ACK|FAIL|RESOLVE) /.test(line)) model.apply(line);
    }
    return model;
  }

  /** Journal lines of the given operation ids (for violation reports). */
  linesOf(ids: number[]): string[] {
    const wanted = new Set(ids.map(String));
    return readFileSync(this.file, "utf8")
      .split("\n")
      .filter((line) => {
        const [kind = "", id = ""] = line.split(" ", 2);
        return ["INTENT", "ACK", "FAIL"].includes(kind) && wanted.has(id);
      });
  }
}
