/**
 * Record metadata of a v1 batch response: one `x-reduct-time-<ts>: <len>,<content-type>[,k=v...]`
 * header per record; a label value containing a comma comes quoted (`k="a,b"`).
 */
export interface RecordMeta {
  ts: number;
  size: number;
  contentType: string;
  labels: Record<string, string>;
}

const PREFIX = "x-reduct-time-";

export function parseRecordHeader(ts: number, value: string): RecordMeta {
  const firstComma = value.indexOf(",");
  const size = Number(value.slice(0, firstComma < 0 ? undefined : firstComma).trim());
  let rest = firstComma < 0 ? "" : value.slice(firstComma + 1);
  const secondComma = rest.indexOf(",");
  const contentType = (secondComma < 0 ? rest : rest.slice(0, secondComma)).trim() || "application/octet-stream";
  rest = secondComma < 0 ? "" : rest.slice(secondComma + 1);
  const labels: Record<string, string> = {};
  while (rest.length > 0) {
    const eq = rest.indexOf("=");
    if (eq < 0) break;
    const key = rest.slice(0, eq).trim();
    rest = rest.slice(eq + 1).trimStart();
    let labelValue: string;
    if (rest.startsWith('"')) {
      const close = rest.indexOf('"', 1);
      labelValue = close < 0 ? rest.slice(1) : rest.slice(1, close);
      rest = close < 0 ? "" : rest.slice(close + 1);
      const next = rest.indexOf(",");
      rest = next < 0 ? "" : rest.slice(next + 1);
    } else {
      const next = rest.indexOf(",");
      labelValue = (next < 0 ? rest : rest.slice(0, next)).trim();
      rest = next < 0 ? "" : rest.slice(next + 1);
    }
    if (key) labels[key] = labelValue;
  }
  return { ts, size, contentType, labels };
}

/** The records of a batch response, in ascending timestamp order. */
export function parseBatchHeaders(headers: Headers): RecordMeta[] {
  const records: RecordMeta[] = [];
  headers.forEach((value, name) => {
    if (!name.startsWith(PREFIX)) return;
    const ts = Number(name.slice(PREFIX.length));
    if (Number.isSafeInteger(ts)) records.push(parseRecordHeader(ts, value));
  });
  return records.sort((a, b) => a.ts - b.ts);
}
