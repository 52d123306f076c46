/**
 * Lifecycle durations through the API: what GET shows PUT takes back unchanged (also a derived
 * processing_interval), and durations outside the bounded range are refused with 422.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { "content-type": "application/json" } });

describe("lifecycle durations through the API", () => {
  it.each([
    ["600000001us", "14400000024us"],
    ["1h 1us", "86400000024us"],
    ["2h -30m", "129600s"],
    ["10m", "14400s"],
  ])("interval %j: GET shows processing_interval %j and PUT of GET's settings is accepted", async (interval, derived) => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, older_than: "1h", interval };
    expect((await api("POST", `/lifecycles/${name}`, json(body))).status).toBe(200);
    const { settings } = (await (await api("GET", `/lifecycles/${name}`)).json()) as { settings: Record<string, unknown> };
    expect(settings).toMatchObject({ interval, processing_interval: derived });
    expect((await api("PUT", `/lifecycles/${name}`, json(settings))).status).toBe(200);
    const again = (await (await api("GET", `/lifecycles/${name}`)).json()) as { settings: Record<string, unknown> };
    expect(again.settings).toEqual(settings);
  });

  it.each([
    ["older_than", "36501d", "Lifecycle older than '36501d' is longer than maximum allowed value of 36500d"],
    ["interval", "9000000000000000us", "Lifecycle interval '9000000000000000us' is longer than maximum allowed value of 36500d"],
    [
      "processing_interval",
      "99999999999999999999us",
      "Invalid lifecycle processing interval '99999999999999999999us': [UnprocessableEntity] Invalid duration value: 99999999999999999999us",
    ],
    ["interval", "1h30m", "Invalid lifecycle interval '1h30m': [UnprocessableEntity] Invalid duration unit: hm"],
  ])("%s %j → 422", async (field, value, message) => {
    const bucket = uniqueName();
    await createBucket(bucket);
    const name = uniqueName("policy");
    const body = { type: "delete", bucket, older_than: "1h", [field]: value };
    await expectError(await api("POST", `/lifecycles/${name}`, json(body)), 422, message);
    await expectError(await api("GET", `/lifecycles/${name}`), 404, `Lifecycle '${name}' does not exist`);
  });
});
