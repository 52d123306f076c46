import type { BucketSettings } from "../api";
import { type App, hashOf, messageOf } from "../app";
import { field, h, messageBox, showMessage, table } from "../dom";
import { bytes, time } from "../format";

/** The four settings inputs; empty ones are left out (the server's defaults / current values apply). */
export function settingsFields(current?: BucketSettings) {
  const quotaType = h(
    "select",
    { name: "quota_type" },
    ...["NONE", "FIFO", "HARD"].map((value) => h("option", { value, selected: current?.quota_type === value }, value)),
  );
  const number = (name: string, value?: number) =>
    h("input", { name, type: "number", min: 0, step: 1, inputmode: "numeric", value: value ?? "" });
  const inputs = {
    quota_type: quotaType,
    quota_size: number("quota_size", current?.quota_size),
    max_block_size: number("max_block_size", current?.max_block_size),
    max_block_records: number("max_block_records", current?.max_block_records),
  };
  const read = (): Partial<BucketSettings> => {
    const settings: Partial<BucketSettings> = { quota_type: quotaType.value as BucketSettings["quota_type"] };
    for (const key of ["quota_size", "max_block_size", "max_block_records"] as const) {
      const text = inputs[key].value.trim();
      if (text === "") continue;
      const value = Number(text);
      if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${key}: expected a whole number ≥ 0`);
      settings[key] = value;
    }
    return settings;
  };
  const nodes = [
    field("Quota type", inputs.quota_type),
    field("Quota size (bytes)", inputs.quota_size),
    field("Max block size (bytes)", inputs.max_block_size),
    field("Max records per block", inputs.max_block_records),
  ];
  return { nodes, read };
}

export async function bucketsView(app: App): Promise<Node> {
  const buckets = await app.api.listBuckets();
  const name = h("input", { name: "name", required: true, autocomplete: "off", pattern: "[A-Za-z0-9_\\-$]+" });
  const settings = settingsFields();
  const message = messageBox();
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "create-bucket-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          await app.api.createBucket(name.value.trim(), settings.read());
          app.status(`Bucket ${name.value.trim()} created`);
          await app.rerender();
        } catch (error) {
          showMessage(message, messageOf(error));
        }
      },
    },
    h("h2", { id: "create-bucket-title" }, "Create a bucket"),
    field("Name", name, "Letters, digits, _ and -"),
    h("details", {}, h("summary", {}, "Settings"), ...settings.nodes),
    message,
    h("button", { type: "submit" }, "Create bucket"),
  );
  const rows = buckets.map((bucket) => [
    h("a", { href: hashOf("buckets", bucket.name) }, bucket.name),
    document.createTextNode(String(bucket.entry_count)),
    document.createTextNode(bytes(bucket.size)),
    document.createTextNode(time(bucket.oldest_record)),
    document.createTextNode(time(bucket.latest_record)),
    document.createTextNode(bucket.status),
  ]);
  return h(
    "div",
    {},
    h("h1", {}, "Buckets"),
    buckets.length === 0
      ? h("p", {}, "No buckets yet.")
      : table(`${buckets.length} buckets`, ["Name", "Entries", "Size", "Oldest record", "Latest record", "Status"], rows),
    form,
  );
}
