// Node runs this harness's TypeScript with the pinned tsx loader (Node 20 has no type stripping).
// Resolved here once, so a child started from another working directory finds the same tsx.
const TSX_LOADER = import.meta.resolve("tsx");

/** The Node flags that load tsx, for children that run TypeScript (e.g. `node --test`). */
export const TSX_FLAGS: readonly string[] = ["--import", TSX_LOADER];

/** Node arguments that run the TypeScript file `script` with tsx. */
export function tsNodeArgs(script: string, ...args: string[]): string[] {
  return [...TSX_FLAGS, script, ...args];
}
