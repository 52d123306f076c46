import type { Token } from "../api";
import { type App, messageOf } from "../app";
import { field, h, messageBox, showMessage, table } from "../dom";

const list = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

/** Shows a token's value once, with a copy button; it is never shown again. */
function secretBox(name: string, value: string): HTMLElement {
  const output = h("input", { type: "text", readonly: true, value, "aria-label": `Value of token ${name}`, class: "secret" });
  return h(
    "div",
    { class: "message ok", role: "alert" },
    h("p", {}, `Token '${name}': copy its value now, it is not shown again.`),
    output,
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: async () => {
          output.select();
          await navigator.clipboard?.writeText(value).catch(() => {});
        },
      },
      "Copy",
    ),
  );
}

function permissionsText(token: Token): string {
  const p = token.permissions;
  if (!p) return "—";
  if (p.full_access) return "full access";
  const parts = [p.read.length ? `read: ${p.read.join(", ")}` : "", p.write.length ? `write: ${p.write.join(", ")}` : ""];
  return parts.filter(Boolean).join("; ") || "none";
}

export async function tokensView(app: App): Promise<Node> {
  const tokens = await app.api.tokens();
  const secretSlot = h("div", {});
  const listMessage = messageBox();

  const rows = tokens.map((token) => [
    document.createTextNode(token.name),
    document.createTextNode(permissionsText(token)),
    document.createTextNode(token.created_at.slice(0, 19).replace("T", " ")),
    document.createTextNode(token.last_access ? token.last_access.slice(0, 19).replace("T", " ") : "never"),
    document.createTextNode(
      token.is_expired ? "expired" : token.expires_at ? `until ${token.expires_at.slice(0, 10)}` : "active",
    ),
    h(
      "div",
      { class: "actions" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          disabled: token.is_provisioned,
          "aria-label": `Rotate token ${token.name}`,
          onclick: async () => {
            if (!confirm(`Rotate token '${token.name}'? Its current value stops working at once.`)) return;
            try {
              const { value } = await app.api.rotateToken(token.name);
              secretSlot.replaceChildren(secretBox(token.name, value));
            } catch (error) {
              showMessage(listMessage, messageOf(error));
            }
          },
        },
        "Rotate",
      ),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          disabled: token.is_provisioned,
          "aria-label": `Delete token ${token.name}`,
          onclick: async () => {
            if (!confirm(`Delete token '${token.name}'?`)) return;
            try {
              await app.api.removeToken(token.name);
              app.status(`Token ${token.name} deleted`);
              await app.rerender();
            } catch (error) {
              showMessage(listMessage, messageOf(error));
            }
          },
        },
        "Delete",
      ),
    ),
  ]);

  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const fullAccess = h("input", { type: "checkbox", name: "full_access", id: "full-access" });
  const read = h("input", { name: "read", autocomplete: "off", placeholder: "bucket-1, sensors-*" });
  const write = h("input", { name: "write", autocomplete: "off", placeholder: "bucket-1" });
  const ttl = h("input", { name: "ttl", type: "number", min: 1, step: 1, inputmode: "numeric" });
  const createMessage = messageBox();
  const form = h(
    "form",
    {
      class: "card",
      "aria-labelledby": "create-token-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const tokenName = name.value.trim();
        try {
          const body: { permissions: { full_access: boolean; read: string[]; write: string[] }; ttl?: number } = {
            permissions: { full_access: fullAccess.checked, read: list(read.value), write: list(write.value) },
          };
          if (ttl.value.trim()) body.ttl = Number(ttl.value);
          const { value } = await app.api.createToken(tokenName, body);
          await app.rerender();
          document.querySelector("#token-secret")?.replaceChildren(secretBox(tokenName, value));
        } catch (error) {
          showMessage(createMessage, messageOf(error));
        }
      },
    },
    h("h2", { id: "create-token-title" }, "Create a token"),
    field("Name", name),
    h("div", { class: "field checkbox" }, fullAccess, h("label", { for: "full-access" }, "Full access")),
    field("Read access (buckets, comma-separated)", read),
    field("Write access (buckets, comma-separated)", write),
    field("Inactivity TTL (seconds, optional)", ttl),
    createMessage,
    h("button", { type: "submit" }, "Create token"),
  );
  secretSlot.id = "token-secret";
  return h(
    "div",
    {},
    h("h1", {}, "Tokens"),
    secretSlot,
    listMessage,
    tokens.length === 0
      ? h("p", {}, "No tokens (authentication may be disabled on this server).")
      : table(
          `${tokens.length} tokens`,
          ["Name", "Permissions", "Created (UTC)", "Last access (UTC)", "Status", "Actions"],
          rows,
        ),
    form,
  );
}
