/** Baseline (a): a Worker that answers 200 with no body and touches nothing — the runtime's ceiling per request. */
import { benchControl, count } from "../worker/counting.ts";

export default {
  fetch(request, rawEnv) {
    const control = benchControl(request, rawEnv);
    if (control) return control;
    count("workerRequests");
    return new Response(null, { status: 200 });
  },
};
