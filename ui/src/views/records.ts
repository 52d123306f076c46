import type { RecordFilter } from "../api";
import { type App, hashOf, messageOf } from "../app";
import type { RecordMeta } from "../batch-headers";
import { field, h, messageBox, replaceChildren, showMessage, table } from "../dom";
import { bytes, parseTime, time } from "../format";

const PREVIEW_LIMIT = 10 * 1024 * 1024;
const TEXT_PREVIEW_CHARS = 64 * 1024;
const REMOVE_COUNT_CAP = 100_000;

const isImage = (type: string) => /^image\/(png|jpeg|gif|webp|avif|bmp)$/i.test(type);
const isText = (type: string) => /^text\/|json|xml|csv|yaml|javascript/i.test(type);

function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(", ");
}

export async function recordsView(app: App, bucket: string, entry: string): Promise<Node> {
  const { entries } = await app.api.bucket(bucket);
  const info = entries.find((candidate) => candidate.name === entry);

  const start = h("input", { name: "start", autocomplete: "off", placeholder: "µs or 2024-01-02T03:04:05Z" });
  const stop = h("input", { name: "stop", autocomplete: "off", placeholder: "µs or ISO date (exclusive)" });
  const when = h("textarea", { name: "when", rows: 3, spellcheck: false, placeholder: '{"&label": {"$eq": "value"}}' });
  const pageSize = h("select", { name: "page_size" }, ...[25, 50, 100].map((n) => h("option", { value: n }, String(n))));
  const queryMessage = messageBox();
  const results = h("div", { class: "results", "aria-live": "polite" });
  const preview = h("section", { class: "preview", "aria-label": "Record preview", hidden: true });

  /** Starts of the pages seen so far: "Previous" goes back through them. */
  let pageStarts: Array<number | undefined> = [];
  let objectUrl: string | null = null;

  const readFilter = (): RecordFilter => {
    const filter: RecordFilter = { start: parseTime(start.value, "Start"), stop: parseTime(stop.value, "Stop") };
    const text = when.value.trim();
    if (text) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        throw new Error(`When: not valid JSON (${(error as Error).message})`);
      }
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("When: expected a JSON object");
      // The pages and the dry-run count set their own $limit: the user's would be silently replaced.
      if ("$limit" in parsed) throw new Error("When: $limit is not supported here; the console pages the records itself");
      filter.when = parsed as Record<string, unknown>;
    }
    return filter;
  };

  const showPreview = async (record: RecordMeta) => {
    preview.hidden = false;
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    const heading = h("h2", { id: "preview-title", tabindex: -1 }, `Record ${record.ts}`);
    replaceChildren(preview, heading, h("p", {}, "Loading…"));
    try {
      if (record.size > PREVIEW_LIMIT) throw new Error(`No preview: the record is larger than ${bytes(PREVIEW_LIMIT)}`);
      const blob = await app.api.readRecord(bucket, entry, record.ts);
      let body: Node;
      if (isImage(record.contentType)) {
        objectUrl = URL.createObjectURL(blob);
        body = h("img", { src: objectUrl, alt: `Image record ${record.ts} (${record.contentType})`, class: "preview-image" });
      } else if (isText(record.contentType)) {
        let text = await blob.text();
        if (/json/i.test(record.contentType)) {
          try {
            text = JSON.stringify(JSON.parse(text), null, 2);
          } catch {
            // Not valid JSON after all: shown as it is.
          }
        }
        body = h(
          "pre",
          { class: "preview-text", tabindex: 0 },
          text.length > TEXT_PREVIEW_CHARS ? `${text.slice(0, TEXT_PREVIEW_CHARS)}\n…` : text,
        );
      } else {
        body = h("p", {}, `No preview for ${record.contentType}; use Download.`);
      }
      replaceChildren(preview, heading, h("p", {}, `${record.contentType} · ${bytes(record.size)} · ${time(record.ts)}`), body);
    } catch (error) {
      replaceChildren(preview, heading, h("p", { class: "message error", role: "alert" }, messageOf(error)));
    }
    heading.focus();
  };

  const download = async (record: RecordMeta) => {
    try {
      const blob = await app.api.readRecord(bucket, entry, record.ts);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: `${entry.replaceAll("/", "_")}-${record.ts}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      showMessage(queryMessage, messageOf(error));
    }
  };

  const labelEditor = (record: RecordMeta, cell: HTMLElement) => {
    const text = h(
      "textarea",
      { rows: 3, spellcheck: false },
      Object.entries(record.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
    );
    const message = messageBox();
    const form = h(
      "form",
      {
        class: "label-editor",
        onsubmit: async (event: Event) => {
          event.preventDefault();
          const next: Record<string, string> = {};
          for (const line of text.value.split("\n")) {
            if (!line.trim()) continue;
            const eq = line.indexOf("=");
            if (eq <= 0) return showMessage(message, `Expected name=value, got '${line.trim()}'`);
            const name = line.slice(0, eq).trim().toLowerCase();
            // Labels travel as x-reduct-label-<name> headers: fetch throws a bare TypeError on others.
            if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) {
              return showMessage(message, `Label name '${name}' can contain only letters, digits and !#$%&'*+-.^_\`|~`);
            }
            next[name] = line.slice(eq + 1).trim();
          }
          // Labels left out are removed: an empty value deletes a label.
          const update: Record<string, string> = { ...next };
          for (const key of Object.keys(record.labels)) if (!(key in next)) update[key] = "";
          try {
            await app.api.updateLabels(bucket, entry, record.ts, update);
            record.labels = Object.fromEntries(Object.entries(next).filter(([, value]) => value !== ""));
            replaceChildren(cell, labelsText(record.labels));
            app.status(`Labels of record ${record.ts} saved`);
          } catch (error) {
            showMessage(message, messageOf(error));
          }
        },
      },
      field(`Labels of record ${record.ts} (one name=value a line)`, text),
      message,
      h("button", { type: "submit" }, "Save labels"),
      h(
        "button",
        { type: "button", class: "secondary", onclick: () => replaceChildren(cell, labelsText(record.labels)) },
        "Cancel",
      ),
    );
    replaceChildren(cell, form);
    text.focus();
  };

  const pager = h("div", { class: "pager" });

  const loadPage = async (index: number) => {
    showMessage(queryMessage, null);
    let filter: RecordFilter;
    try {
      filter = readFilter();
    } catch (error) {
      return showMessage(queryMessage, messageOf(error));
    }
    const pageStart = index === 0 ? filter.start : pageStarts[index];
    try {
      const page = await app.api.recordsPage(bucket, entry, { ...filter, start: pageStart }, Number(pageSize.value));
      pageStarts = pageStarts.slice(0, index + 1);
      pageStarts[index] = pageStart;
      const last = page.records[page.records.length - 1];
      if (page.more && last) pageStarts[index + 1] = last.ts + 1;
      const rows = page.records.map((record) => {
        const labelsCell = h("span", {}, labelsText(record.labels));
        return [
          document.createTextNode(`${time(record.ts)} (${record.ts})`),
          document.createTextNode(record.contentType),
          document.createTextNode(bytes(record.size)),
          labelsCell,
          h(
            "div",
            { class: "actions" },
            h(
              "button",
              { type: "button", "aria-label": `Preview record ${record.ts}`, onclick: () => showPreview(record) },
              "Preview",
            ),
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-label": `Download record ${record.ts}`,
                onclick: () => download(record),
              },
              "Download",
            ),
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-label": `Edit labels of record ${record.ts}`,
                onclick: () => labelEditor(record, labelsCell),
              },
              "Labels",
            ),
          ),
        ];
      });
      replaceChildren(
        results,
        page.records.length === 0
          ? h("p", {}, index === 0 ? "No records match." : "No more records.")
          : table(
              `Records ${index * Number(pageSize.value) + 1}–${index * Number(pageSize.value) + page.records.length}`,
              ["Time (UTC)", "Content type", "Size", "Labels", "Actions"],
              rows,
            ),
      );
      replaceChildren(
        pager,
        h(
          "button",
          { type: "button", class: "secondary", disabled: index === 0, onclick: () => loadPage(index - 1) },
          "Previous page",
        ),
        h("span", {}, `Page ${index + 1}`),
        h(
          "button",
          { type: "button", class: "secondary", disabled: !page.more, onclick: () => loadPage(index + 1) },
          "Next page",
        ),
      );
      app.status(`Page ${index + 1}: ${page.records.length} records`);
    } catch (error) {
      replaceChildren(results);
      replaceChildren(pager);
      showMessage(queryMessage, messageOf(error));
    }
  };

  const queryForm = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "query-title",
      onsubmit: (event: Event) => {
        event.preventDefault();
        pageStarts = [];
        loadPage(0);
      },
    },
    h("h2", { id: "query-title" }, "Records"),
    h("div", { class: "grid" }, field("Start", start), field("Stop", stop)),
    field("When (conditional query, JSON)", when),
    field("Records per page", pageSize),
    queryMessage,
    h("button", { type: "submit" }, "Show records"),
  );

  const removeMessage = messageBox();
  const removeButton = h("button", { type: "button", class: "danger", hidden: true }, "Remove");
  let counted: { filter: RecordFilter; count: number } | null = null;
  removeButton.addEventListener("click", async () => {
    if (!counted) return;
    if (!confirm(`Remove ${counted.count} records from ${entry}? This cannot be undone.`)) return;
    try {
      const removed = await app.api.removeRecords(bucket, entry, counted.filter);
      showMessage(removeMessage, `Removed ${removed} records.`, "ok");
      removeButton.hidden = true;
      counted = null;
    } catch (error) {
      showMessage(removeMessage, messageOf(error));
    }
  });
  const removeSection = h(
    "section",
    { class: "card", "aria-labelledby": "remove-title" },
    h("h2", { id: "remove-title" }, "Remove by query"),
    h("p", {}, "Uses the start, stop and when above. Count first (a dry run), then remove."),
    removeMessage,
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: async () => {
            removeButton.hidden = true;
            try {
              const filter = readFilter();
              if (filter.start === undefined && filter.stop === undefined && !filter.when) {
                throw new Error("Give a start, a stop or a when condition first.");
              }
              const count = await app.api.countRecords(bucket, entry, filter, REMOVE_COUNT_CAP);
              counted = { filter, count };
              const capped = count >= REMOVE_COUNT_CAP ? ` (counted up to ${REMOVE_COUNT_CAP})` : "";
              showMessage(removeMessage, `Dry run: ${count} records would be removed${capped}.`, "ok");
              removeButton.textContent = `Remove ${count >= REMOVE_COUNT_CAP ? "all matching" : count} records`;
              removeButton.hidden = count === 0;
            } catch (error) {
              showMessage(removeMessage, messageOf(error));
            }
          },
        },
        "Count records to remove",
      ),
      removeButton,
    ),
  );

  const view = h(
    "div",
    {},
    h(
      "nav",
      { "aria-label": "Breadcrumb", class: "crumbs" },
      h("a", { href: "#/buckets" }, "Buckets"),
      " / ",
      h("a", { href: hashOf("buckets", bucket) }, bucket),
      " / ",
      entry,
    ),
    h("h1", {}, `Entry ${entry}`),
    info
      ? h(
          "p",
          {},
          `${info.record_count} records · ${bytes(info.size)} · ${time(info.oldest_record)} – ${time(info.latest_record)}`,
        )
      : h("p", { class: "message error", role: "alert" }, `Entry '${entry}' not found in bucket '${bucket}'`),
    queryForm,
    results,
    pager,
    preview,
    removeSection,
  );
  if (info) loadPage(0);
  return view;
}
