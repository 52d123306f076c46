/**
 * Which entries a multi-entry query or remove touches (§6.1 `entries`): exact names, `*` for every
 * user entry, legacy prefixes without `/` (`cam-*` also matches `cam-1/sub`), path globs with `/`
 * (`*` within one segment, `**` across segments), a leading `/` ignored, and `!pattern` exclusions.
 * `$meta` entries are only ever selected by their exact name.
 */
import { isMetaEntry } from "../bucket/bucket-store";

function escapeRegex(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/** Compiles one pattern (without `!`) to a predicate. */
export function compileEntryPattern(raw: string): (name: string) => boolean {
  const pattern = raw.startsWith("/") ? raw.slice(1) : raw;
  if (!pattern.includes("*")) return (name) => name === pattern;
  if (!pattern.includes("/")) {
    // Legacy form: `*` matches anything, across segments too.
    const regex = new RegExp(`^${pattern.split("*").map(escapeRegex).join(".*")}$`);
    return (name) => !isMetaEntry(name) && regex.test(name);
  }
  const source = pattern
    .split("/")
    .map((segment) => (segment === "**" ? "(?:[^/]+(?:/[^/]+)*)?" : segment.split("*").map(escapeRegex).join("[^/]*")))
    .join("/")
    .replace(/\(\?:\[\^\/\]\+\(\?:\/\[\^\/\]\+\)\*\)\?\//g, "(?:[^/]+/)*");
  const regex = new RegExp(`^${source}$`);
  return (name) => !isMetaEntry(name) && regex.test(name);
}

/** Selects entry names by the patterns of a query; an empty list (or only exclusions) means all. */
export function selectEntries(names: readonly string[], patterns: readonly string[]): string[] {
  const includes = patterns.filter((pattern) => !pattern.startsWith("!")).map(compileEntryPattern);
  const excludes = patterns.filter((pattern) => pattern.startsWith("!")).map((pattern) => compileEntryPattern(pattern.slice(1)));
  return names.filter((name) => {
    const included = includes.length === 0 ? !isMetaEntry(name) : includes.some((matches) => matches(name));
    return included && !excludes.some((matches) => matches(name));
  });
}
