import { Api, ApiError } from "../api";
import { messageOf } from "../app";
import { field, h, messageBox, showMessage } from "../dom";

/** Sign-in with an API token; the token is checked with /me before it is kept. */
export function signInView(base: string, onSignedIn: (token: string) => void): Node {
  const input = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  const message = messageBox();
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "sign-in-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return showMessage(message, "Enter an API token.");
        try {
          await new Api(base, token).me();
          onSignedIn(token);
        } catch (error) {
          showMessage(
            message,
            error instanceof ApiError && error.status === 401 ? `Not signed in: ${error.message}` : messageOf(error),
          );
        }
      },
    },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "This server needs an API token. It is kept for this browser tab only."),
    field("API token", input),
    message,
    h("button", { type: "submit" }, "Sign in"),
  );
  return form;
}
