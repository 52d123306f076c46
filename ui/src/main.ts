/**
 * The console's shell: sign-in, navigation and hash routes (`#/buckets/<name>`, ...), so the page
 * itself always is `{base}ui/` and the token never appears in a URL.
 */
import { Api, ApiError, basePath } from "./api";
import { type App, messageOf } from "./app";
import { h, replaceChildren } from "./dom";
import { bucketView } from "./views/bucket";
import { bucketsView } from "./views/buckets";
import { dashboardView } from "./views/dashboard";
import { policiesView } from "./views/policies";
import { recordsView } from "./views/records";
import { signInView } from "./views/sign-in";
import { tokensView } from "./views/tokens";

const TOKEN_KEY = "reduct-edge.token";
const base = basePath(location.pathname);

function mainElement(): HTMLElement {
  return document.getElementById("main") as HTMLElement;
}

function setStatus(text: string): void {
  const status = document.getElementById("status");
  if (status) status.textContent = text;
}

const NAV: Array<[string, string]> = [
  ["#/", "Dashboard"],
  ["#/buckets", "Buckets"],
  ["#/tokens", "Tokens"],
  ["#/lifecycles", "Lifecycles"],
  ["#/replications", "Replications"],
];

function renderNav(app: App, signedIn: boolean): void {
  const nav = document.getElementById("nav") as HTMLElement;
  nav.hidden = !signedIn;
  if (!signedIn) return;
  const current = location.hash.split("/").slice(0, 2).join("/") || "#/";
  replaceChildren(
    nav,
    h(
      "ul",
      {},
      ...NAV.map(([href, label]) =>
        h("li", {}, h("a", { href, "aria-current": (href === current || (href === "#/" && current === "#")) && "page" }, label)),
      ),
      app.canSignOut ? h("li", {}, h("button", { type: "button", class: "link", onclick: () => signOut() }, "Sign out")) : null,
    ),
  );
}

function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "#/";
  start();
}

let app: App | null = null;

/** A client that signs out on the first 401: any action, not only a page load, ends a dead session. */
function signedInApi(token: string | null): Api {
  const api: Api = new Api(base, token, () => {
    if (app?.api === api) signOut();
  });
  return api;
}

/** A hash typed or pasted by hand may hold a broken escape ("%E0%A4%A"): that is no page, not a crash. */
function decodePart(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

const noSuchPage = () => h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the dashboard"));

async function route(): Promise<void> {
  if (!app) return;
  const decoded = location.hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter((part) => part !== "")
    .map(decodePart);
  const broken = decoded.includes(null);
  const parts = decoded.filter((part) => part !== null);
  renderNav(app, true);
  const main = mainElement();
  const [section, bucket, ...entryParts] = parts;
  let view: Promise<Node>;
  if (broken) view = Promise.resolve(noSuchPage());
  else if (!section) view = dashboardView(app);
  else if (section === "buckets" && bucket && entryParts.length > 0) view = recordsView(app, bucket, entryParts.join("/"));
  else if (section === "buckets" && bucket) view = bucketView(app, bucket);
  else if (section === "buckets") view = bucketsView(app);
  else if (section === "tokens") view = tokensView(app);
  else if (section === "lifecycles" || section === "replications") view = policiesView(app, section);
  else view = Promise.resolve(noSuchPage());
  const token = {};
  currentRoute = token;
  // The page shown until the next one has loaded is about to go: typing into it would be lost, so
  // it takes no input, and screen readers hear that it is loading.
  main.setAttribute("aria-busy", "true");
  main.inert = true;
  try {
    const node = await view;
    if (currentRoute !== token) return;
    replaceChildren(main, node);
  } catch (error) {
    if (currentRoute !== token) return;
    if (error instanceof ApiError && error.status === 401) return; // the API client signed out already
    replaceChildren(main, h("p", { class: "message error", role: "alert" }, messageOf(error)));
  } finally {
    if (currentRoute === token) {
      main.removeAttribute("aria-busy");
      main.inert = false;
    }
  }
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · reduct-edge`;
}

let currentRoute: object = {};

function open(api: Api, canSignOut: boolean): void {
  app = {
    api,
    base,
    canSignOut,
    rerender: () => route(),
    status: setStatus,
  };
  route().then(() => mainElement().focus());
}

/** Opens with the stored token; else asks the server whether it needs one at all. */
async function start(): Promise<void> {
  app = null;
  renderNav({ api: new Api(base, null), base, canSignOut: false, rerender: async () => {}, status: setStatus }, false);
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    open(signedInApi(stored), true);
    return;
  }
  const anonymous = new Api(base, null);
  // Asked first so that a store with auth on shows its form without a refused (logged) API call.
  const tokenRequired = await anonymous.tokenRequired();
  if (tokenRequired !== true) {
    try {
      await anonymous.info();
      open(signedInApi(null), false); // authentication is disabled
      return;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) {
        replaceChildren(mainElement(), h("p", { class: "message error", role: "alert" }, messageOf(error)));
        return;
      }
    }
  }
  replaceChildren(
    mainElement(),
    signInView(base, (token) => {
      sessionStorage.setItem(TOKEN_KEY, token);
      open(signedInApi(token), true);
    }),
  );
  mainElement().querySelector("input")?.focus();
}

window.addEventListener("hashchange", () => {
  route().then(() => mainElement().focus());
});
if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => start());
else start();
