/**
 * Which entries a multi-entry query or remove touches (`entries`): exact names, `*` for every
 * user entry, legacy prefixes without `/` (`cam-*` also matches `cam-1/sub`), path globs with `/`
 * (`*` within one segment, `**` across segments), a leading `/` ignored, and `!pattern` exclusions.
 * `$meta` entries are only ever selected by their exact name.
 *
 * Matching is done without regular expressions, in O(pattern × name) time: a backtracking regex
 * built from user input (`a*a*a*a*c`) could freeze a bucket's object for hours.
 */
import { isMetaEntry } from "../model/entry-names";

/** `*` matches any run of characters (the caller decides whether `/` is allowed inside). */
export function wildcardMatch(pattern: string, text: string, starCrossesSlash: boolean): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = -1;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      p++;
      t++;
    } else if (p < pattern.length && pattern[p] === "*") {
      starP = p++;
      starT = t;
    } else if (starP >= 0 && (starCrossesSlash || text[starT] !== "/")) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/** Segment-wise glob: `**` is any number of whole segments, `*` stays within one. */
function pathGlobMatch(patternSegments: readonly string[], nameSegments: readonly string[]): boolean {
  // reachable[j]: the pattern prefix processed so far can match the first j name segments.
  let reachable = new Array<boolean>(nameSegments.length + 1).fill(false);
  reachable[0] = true;
  for (const segment of patternSegments) {
    const next = new Array<boolean>(nameSegments.length + 1).fill(false);
    for (let j = 0; j <= nameSegments.length; j++) {
      if (!reachable[j]) continue;
      if (segment === "**") {
        for (let k = j; k <= nameSegments.length; k++) next[k] = true;
      } else if (j < nameSegments.length && wildcardMatch(segment, nameSegments[j] ?? "", false)) {
        next[j + 1] = true;
      }
    }
    reachable = next;
  }
  return reachable[nameSegments.length] === true;
}

/** Compiles one pattern (without `!`) to a predicate. */
export function compileEntryPattern(raw: string): (name: string) => boolean {
  const pattern = raw.startsWith("/") ? raw.slice(1) : raw;
  if (!pattern.includes("*")) return (name) => name === pattern;
  if (!pattern.includes("/")) return (name) => !isMetaEntry(name) && wildcardMatch(pattern, name, true);
  const segments = pattern.split("/");
  return (name) => !isMetaEntry(name) && pathGlobMatch(segments, name.split("/"));
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
