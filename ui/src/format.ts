/** Display formats: sizes in binary units, µs timestamps as UTC ISO text. */

export function bytes(n: number): string {
  if (!Number.isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** µs since the epoch as `YYYY-MM-DD HH:MM:SS.ffffff` UTC; "—" for 0 (no record). */
export function time(us: number): string {
  if (!us) return "—";
  const date = new Date(Math.floor(us / 1000));
  const micros = String(us % 1_000_000).padStart(6, "0");
  return `${date.toISOString().slice(0, 19).replace("T", " ")}.${micros}`;
}

export function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s}s`].filter(Boolean).join(" ");
}

/**
 * A time given as µs, as an ISO date (`2024-01-02T03:04:05Z`, UTC when no zone is given) or empty
 * (undefined). Anything else is an error naming the field.
 */
export function parseTime(text: string, fieldName: string): number | undefined {
  const value = text.trim();
  if (value === "") return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const withZone = /[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`;
  const ms = Date.parse(withZone);
  if (Number.isNaN(ms)) throw new Error(`${fieldName}: expected µs or an ISO date, got '${value}'`);
  return ms * 1000;
}
