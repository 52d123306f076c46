import { type App, hashOf, messageOf } from "../app";
import { field, h, messageBox, showMessage, table } from "../dom";
import { bytes, time } from "../format";
import { settingsFields } from "./buckets";

export async function bucketView(app: App, name: string): Promise<Node> {
  const { info, settings, entries } = await app.api.bucket(name);

  const edit = settingsFields(settings);
  const editMessage = messageBox();
  const editForm = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "settings-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          await app.api.updateBucket(name, edit.read());
          showMessage(editMessage, "Settings saved.", "ok");
        } catch (error) {
          showMessage(editMessage, messageOf(error));
        }
      },
    },
    h("h2", { id: "settings-title" }, "Settings"),
    ...edit.nodes,
    editMessage,
    h("button", { type: "submit", disabled: info.is_provisioned }, "Save settings"),
  );

  const newName = h("input", { name: "new_name", required: true, autocomplete: "off", value: name });
  const renameMessage = messageBox();
  const renameForm = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "rename-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          await app.api.renameBucket(name, newName.value.trim());
          location.hash = hashOf("buckets", newName.value.trim());
        } catch (error) {
          showMessage(renameMessage, messageOf(error));
        }
      },
    },
    h("h2", { id: "rename-title" }, "Rename"),
    field("New name", newName),
    renameMessage,
    h("button", { type: "submit" }, "Rename bucket"),
  );

  const removeMessage = messageBox();
  const remove = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (!confirm(`Delete bucket '${name}' and all its records? This cannot be undone.`)) return;
        try {
          await app.api.removeBucket(name);
          app.status(`Bucket ${name} deleted`);
          location.hash = "#/buckets";
        } catch (error) {
          showMessage(removeMessage, messageOf(error));
        }
      },
    },
    "Delete bucket",
  );

  const rows = entries.map((entry) => [
    h("a", { href: hashOf("buckets", name, entry.name) }, entry.name),
    document.createTextNode(String(entry.record_count)),
    document.createTextNode(bytes(entry.size)),
    document.createTextNode(time(entry.oldest_record)),
    document.createTextNode(time(entry.latest_record)),
  ]);
  return h(
    "div",
    {},
    h("nav", { "aria-label": "Breadcrumb", class: "crumbs" }, h("a", { href: "#/buckets" }, "Buckets"), " / ", name),
    h("h1", {}, `Bucket ${name}`),
    h(
      "p",
      {},
      `${info.entry_count} entries · ${bytes(info.size)} · ${time(info.oldest_record)} – ${time(info.latest_record)}`,
      info.is_provisioned ? " · provisioned" : "",
    ),
    entries.length === 0
      ? h("p", {}, "No entries yet.")
      : table(`Entries of ${name}`, ["Entry", "Records", "Size", "Oldest record", "Latest record"], rows),
    h("div", { class: "grid" }, editForm, renameForm),
    h(
      "section",
      { class: "card", "aria-labelledby": "danger-title" },
      h("h2", { id: "danger-title" }, "Delete"),
      removeMessage,
      remove,
    ),
  );
}
