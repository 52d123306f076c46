/**
 * RFC 3339 timestamps of the Token API. Parsed strictly (date, `T`, time, optional fraction of
 * up to 9 digits, `Z` or `±hh:mm`) and stored canonically in UTC with `Z`, keeping sub-millisecond
 * digits (grouped by 3, as chrono prints them) so a client gets back the instant it sent.
 */

export interface Rfc3339 {
  /** Milliseconds since the epoch (sub-millisecond digits truncated). */
  ms: number;
  /** `YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z` */
  canonical: string;
}

const PATTERN = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

export function parseRfc3339(text: string): Rfc3339 | undefined {
  const match = PATTERN.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (match[8] === undefined) {
    const offsetHours = Number(match[10]);
    const offsetMins = Number(match[11]);
    if (offsetHours > 23 || offsetMins > 59) return undefined;
    offsetMinutes = (match[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  const wholeSecondsMs = date.getTime() - offsetMinutes * 60_000;
  const utc = new Date(wholeSecondsMs).toISOString();
  if (!/^\d{4}-/.test(utc)) return undefined; // the offset moved it outside years 0000-9999
  const digits = (match[7] ?? "").replace(/0+$/, "");
  const fraction = digits === "" ? "" : `.${digits.padEnd(Math.ceil(digits.length / 3) * 3, "0")}`;
  return {
    ms: wholeSecondsMs + Number(`${digits}000`.slice(0, 3)),
    canonical: `${utc.slice(0, 19)}${fraction}Z`,
  };
}

/** Milliseconds of a timestamp we stored ourselves (always canonical). */
export function rfc3339Ms(text: string): number {
  return parseRfc3339(text)?.ms ?? Number.NaN;
}

/** Now (or `ms`) as RFC 3339 UTC with millisecond precision. */
export function rfc3339Now(ms = Date.now()): string {
  return new Date(ms).toISOString();
}
