import { ApiError } from "../api";
import { type App, messageOf } from "../app";
import { h } from "../dom";
import { bytes, duration, time } from "../format";

const SVG = "http://www.w3.org/2000/svg";

/** A line chart of one usage field, drawn with SVG elements (no inline styles, CSP-safe). */
function sparkline(label: string, points: Array<[number, number]>): Element {
  const width = 600;
  const height = 120;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "chart");
  const title = document.createElementNS(SVG, "title");
  const last = points[points.length - 1];
  title.textContent = `${label}: ${points.length} samples, latest ${last ? bytes(last[1]) : "none"}`;
  svg.appendChild(title);
  if (points.length > 1) {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const path = document.createElementNS(SVG, "polyline");
    path.setAttribute(
      "points",
      points
        .map(
          ([x, y]) =>
            `${(((x - x0) / (x1 - x0 || 1)) * (width - 8) + 4).toFixed(1)},${(height - 4 - ((y - y0) / (y1 - y0 || 1)) * (height - 8)).toFixed(1)}`,
        )
        .join(" "),
    );
    path.setAttribute("class", "line");
    svg.appendChild(path);
  }
  return svg;
}

async function usageSection(app: App, instance: string, hasSystemBucket: boolean): Promise<Node> {
  const section = h(
    "section",
    { "aria-labelledby": "usage-title" },
    h("h2", { id: "usage-title" }, "Usage over the last 24 hours"),
  );
  const unavailable = "Usage history is not available on this server (no $system usage records).";
  // /list shows $system to the tokens that may read it: no request that can only fail.
  if (!hasSystemBucket) {
    section.append(h("p", { class: "muted" }, unavailable));
    return section;
  }
  try {
    // Query only an entry that exists: a query of a missing one is a 404 the browser logs.
    const { entries } = await app.api.bucket("$system");
    if (!entries.some((entry) => entry.name === `usage/${instance}/total`)) {
      section.append(h("p", {}, "No usage records yet."));
      return section;
    }
    const since = (Date.now() - 24 * 3600 * 1000) * 1000;
    const samples = await app.api.usageSeries(instance, since, 1440);
    if (samples.length === 0) section.append(h("p", {}, "No usage records yet."));
    else {
      const storage = samples.map((s): [number, number] => [s.timestamp ?? 0, s.storage_bytes ?? 0]);
      section.append(sparkline("Storage", storage));
    }
  } catch (error) {
    const text = error instanceof ApiError && (error.status === 404 || error.status === 403) ? unavailable : messageOf(error);
    section.append(h("p", { class: "muted" }, text));
  }
  return section;
}

export async function dashboardView(app: App): Promise<Node> {
  const [info, buckets] = await Promise.all([app.api.info(), app.api.listBuckets()]);
  const stats: Array<[string, string]> = [
    ["Instance", info.instance_name ?? "—"],
    ["Version", info.version],
    ["Uptime", duration(info.uptime)],
    ["Usage", bytes(info.usage)],
    ["Buckets", String(buckets.length)],
    ["Oldest record", time(info.oldest_record)],
    ["Latest record", time(info.latest_record)],
  ];
  return h(
    "div",
    {},
    h("h1", {}, "Dashboard"),
    h("dl", { class: "stats" }, ...stats.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value)))),
    await usageSection(
      app,
      info.instance_name ?? "",
      buckets.some((bucket) => bucket.name === "$system"),
    ),
  );
}
