/** Rules on entry names shared by the edge, the bucket object and queries. A leaf module. */

/** `$meta` entries hold attachments: hidden from lists and counts, but their bytes count in size. */
export function isMetaEntry(name: string): boolean {
  return name === "$meta" || name.endsWith("/$meta");
}

/** The parent entries `a` and `a/b` of `a/b/c`, which ReductStore creates implicitly. */
export function parentEntries(name: string): string[] {
  const parts = name.split("/");
  return parts.slice(1).map((_, index) => parts.slice(0, index + 1).join("/"));
}
