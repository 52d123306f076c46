/**
 * What reduct-js relies on but does not hand to its user: the anonymous API-version probe that its
 * test helper `it_api` makes, and /info fields the client drops (instance_name, instance_role).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { API_TOKEN, makeClient, STORAGE_URL } from "./helpers.ts";

/** The instance name the server was started with (scripts/smoke.ts sets it), else the default. */
const EXPECTED_INSTANCE_NAME = process.env.RS_INSTANCE_NAME || "reduct-edge";

describe("Server", () => {
  it("should advertise the API version on an anonymous HEAD /alive", async () => {
    const response = await fetch(`${STORAGE_URL}/api/v1/alive`, { method: "HEAD" });
    assert.equal(response.status, 200);
    const version = response.headers.get("x-reduct-api");
    assert.match(version ?? "", /^1\.\d+$/);
    // The client's protocol choice must agree with the probe.
    const client = makeClient();
    await client.getInfo();
    assert.deepEqual(
      (client as unknown as { httpClient: { apiVersion: number[] } }).httpClient.apiVersion,
      (version ?? "").split(".").map(Number),
    );
  });

  it("should report RS_INSTANCE_NAME in /info", async () => {
    const response = await fetch(`${STORAGE_URL}/api/v1/info`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.match(response.headers.get("server") ?? "", /^ReductStore 1\.\d+\.\d+$/);
    const info = (await response.json()) as { instance_name: string; instance_role: string };
    assert.equal(info.instance_name, EXPECTED_INSTANCE_NAME);
    assert.equal(info.instance_role, "STANDALONE");
  });

  it("should answer errors with x-reduct-api and x-reduct-error", async () => {
    // fetch trims header values, so an empty "Bearer " cannot be sent from here: use an unknown token.
    let response = await fetch(`${STORAGE_URL}/api/v1/info`, { headers: { Authorization: "Bearer ABCB0001" } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get("x-reduct-api") ?? "", /^1\.\d+$/);
    assert.equal(response.headers.get("x-reduct-error"), "Invalid token");
    assert.deepEqual(await response.json(), { detail: "Invalid token" });

    response = await fetch(`${STORAGE_URL}/api/v1/info`);
    assert.equal(response.status, 401);
    assert.match(response.headers.get("x-reduct-api") ?? "", /^1\.\d+$/);
    assert.equal(response.headers.get("x-reduct-error"), "No bearer token in request header");
    await response.body?.cancel();
  });
});
