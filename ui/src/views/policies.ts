import { ApiError, type PolicyKind } from "../api";
import { type App, messageOf } from "../app";
import { field, h, messageBox, showMessage, table } from "../dom";

const TITLES: Record<PolicyKind, string> = { lifecycles: "Lifecycles", replications: "Replications" };
const MODES: Record<PolicyKind, string[]> = {
  lifecycles: ["enabled", "dry_run", "disabled"],
  replications: ["enabled", "paused", "disabled"],
};
const EXAMPLES: Record<PolicyKind, object> = {
  lifecycles: { type: "delete", bucket: "my-bucket", entries: ["*"], older_than: "30d", interval: "3600s", mode: "enabled" },
  replications: {
    src_bucket: "my-bucket",
    dst_bucket: "my-bucket",
    dst_host: "https://other.example.com",
    dst_token: "",
    entries: [],
    mode: "enabled",
    compression: "none",
  },
};

function statusText(kind: PolicyKind, info: Record<string, unknown>): string {
  if (kind === "replications") {
    return `${info.is_active ? "active" : "inactive"}, ${String(info.pending_records ?? 0)} pending`;
  }
  return `${info.is_running ? "running" : "idle"}${lastRunText(info.last_run_result)}`;
}

/** A lifecycle's `last_run_result`: when, and how many records it removed (or, in dry_run, matched). */
function lastRunText(lastRun: unknown): string {
  if (!lastRun || typeof lastRun !== "object") return "";
  const run = lastRun as Record<string, unknown>;
  const count =
    typeof run.removed_records === "number"
      ? `, ${run.removed_records} removed`
      : typeof run.matched_records === "number"
        ? `, ${run.matched_records} matched`
        : "";
  return `, last run ${String(run.time ?? "")}${count}`;
}

/** Lifecycle and replication policies: list, create, edit (JSON settings), mode, delete. */
export async function policiesView(app: App, kind: PolicyKind): Promise<Node> {
  const title = TITLES[kind];
  let items: Array<Record<string, unknown>>;
  try {
    items = (await app.api.policies(kind))[kind] ?? [];
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return h(
        "div",
        {},
        h("h1", {}, title),
        h("p", { class: "muted", role: "note" }, `${title} are not available on this server.`),
      );
    }
    throw error;
  }

  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const settings = h("textarea", { name: "settings", rows: 10, spellcheck: false }, JSON.stringify(EXAMPLES[kind], null, 2));
  const formMessage = messageBox();
  const listMessage = messageBox();
  let editing = false;
  const submit = h("button", { type: "submit" }, "Create");

  const edit = async (policyName: string) => {
    try {
      const full = await app.api.policy(kind, policyName);
      name.value = policyName;
      name.readOnly = true;
      settings.value = JSON.stringify(full.settings, null, 2);
      editing = true;
      submit.textContent = "Save";
      settings.focus();
    } catch (error) {
      showMessage(listMessage, messageOf(error));
    }
  };

  const rows = items.map((item) => {
    const itemName = String(item.name);
    const mode = h(
      "select",
      {
        "aria-label": `Mode of ${itemName}`,
        disabled: Boolean(item.is_provisioned),
        onchange: async (event: Event) => {
          try {
            await app.api.setPolicyMode(kind, itemName, (event.target as HTMLSelectElement).value);
            app.status(`${itemName}: mode set`);
          } catch (error) {
            showMessage(listMessage, messageOf(error));
          }
        },
      },
      ...MODES[kind].map((value) => h("option", { value, selected: item.mode === value }, value)),
    );
    return [
      document.createTextNode(itemName),
      document.createTextNode(String(item.type ?? (item.is_provisioned ? "provisioned" : "—"))),
      mode,
      document.createTextNode(statusText(kind, item)),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          { type: "button", class: "secondary", "aria-label": `Edit ${itemName}`, onclick: () => edit(itemName) },
          "Edit",
        ),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            disabled: Boolean(item.is_provisioned),
            "aria-label": `Delete ${itemName}`,
            onclick: async () => {
              if (!confirm(`Delete ${itemName}?`)) return;
              try {
                await app.api.removePolicy(kind, itemName);
                await app.rerender();
              } catch (error) {
                showMessage(listMessage, messageOf(error));
              }
            },
          },
          "Delete",
        ),
      ),
    ];
  });

  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "policy-form-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        let body: unknown;
        try {
          body = JSON.parse(settings.value);
        } catch (error) {
          return showMessage(formMessage, `Settings: not valid JSON (${(error as Error).message})`);
        }
        try {
          await app.api.savePolicy(kind, name.value.trim(), body, editing);
          await app.rerender();
        } catch (error) {
          showMessage(formMessage, messageOf(error));
        }
      },
    },
    h("h2", { id: "policy-form-title" }, `Create or edit`),
    field("Name", name),
    field("Settings (JSON)", settings),
    formMessage,
    submit,
  );

  return h(
    "div",
    {},
    h("h1", {}, title),
    listMessage,
    items.length === 0
      ? h("p", {}, `No ${kind} yet.`)
      : table(`${items.length} ${kind}`, ["Name", "Type", "Mode", "Status", "Actions"], rows),
    form,
  );
}
