/**
 * Wraps the R2 binding (via src/storage/r2-binding) to count operations by Cloudflare's billing
 * classes or to inject faults. Storage stays real.
 */
import { setR2Wrapper } from "../../src/storage/r2-binding";

export interface R2Counts {
  classA: number; // put, list, multipart
  classB: number; // get, head
  deletes: number;
  puts: number;
  gets: number;
  /** Bytes that gets asked R2 for: the range length, or the whole object's size. */
  bytesRead: number;
}

export type Fault = (operation: "put" | "get" | "delete" | "list" | "head", key: string) => void | Promise<void>;

export function instrumentR2(fault?: Fault): { counts: R2Counts; stop: () => void } {
  const counts: R2Counts = { classA: 0, classB: 0, deletes: 0, puts: 0, gets: 0, bytesRead: 0 };
  setR2Wrapper(
    (bucket) =>
      new Proxy(bucket, {
        get(target, property, receiver) {
          const value = Reflect.get(target, property, receiver);
          if (typeof value !== "function") return value;
          return async (...args: unknown[]) => {
            const name = String(property) as "put" | "get" | "delete" | "list" | "head";
            const key = typeof args[0] === "string" ? args[0] : Array.isArray(args[0]) ? args[0].join(",") : "";
            if (fault) await fault(name, key);
            if (name === "put" || name === "list") counts.classA++;
            if (name === "put") counts.puts++;
            if (name === "get" || name === "head") counts.classB++;
            if (name === "get") counts.gets++;
            if (name === "delete") counts.deletes++;
            const result = await value.apply(target, args);
            if (name === "get" && result) {
              const range = (args[1] as { range?: { length?: number } } | undefined)?.range;
              counts.bytesRead += range?.length ?? (result as R2Object).size;
            }
            return result;
          };
        },
      }),
  );
  return { counts, stop: () => setR2Wrapper(undefined) };
}
