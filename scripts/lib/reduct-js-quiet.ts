// The official client as the harness uses it (black-box tests, the restart check): reduct-js logs
// "Server API version 1.N is too old for this client version ..." on every response while the
// advertised minor is more than two below its own; this shows that notice once, not per request.
const VERSION_NOTICE = /^Server API version \S+ is too old for this client version/;
let installed = false;

/** Makes console.error show reduct-js's version notice once. Idempotent. */
export function showVersionNoticeOnce(): void {
  if (installed) return;
  installed = true;
  const consoleError = console.error;
  let shown = false;
  console.error = (...args: unknown[]) => {
    if (typeof args[0] === "string" && VERSION_NOTICE.test(args[0])) {
      if (shown) return;
      shown = true;
    }
    consoleError(...args);
  };
}
