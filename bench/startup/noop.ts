/** Start-time probe baseline: a Worker that imports nothing. */
export default {
  fetch(): Response {
    return new Response("ok");
  },
};
