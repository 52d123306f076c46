/**
 * Bucket placement: RS_DO_JURISDICTION, RS_DO_LOCATION_HINT and the x-reduct-edge-location header
 * on bucket create and rename. The BUCKETS namespace is wrapped only to record which jurisdiction
 * and location hint each object was addressed with; every call goes on to the real namespace.
 * Local workerd has no jurisdictions, so the wrapper's `jurisdiction()` records the name and hands
 * back the same (recording) namespace: what is proven here is that the Worker asks for it.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { LOCATION_HINTS } from "../../src/config";
import worker from "../../src/index";
import { api, BASE, expectError, TOKEN, uniqueName } from "../helpers/http";

interface Addressed {
  name: string;
  jurisdiction?: string;
  locationHint?: string;
}

function recordingNamespace(real: DurableObjectNamespace, calls: Addressed[], jurisdiction?: string): DurableObjectNamespace {
  return new Proxy(real, {
    get(target, property) {
      if (property === "getByName") {
        return (name: string, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
          calls.push({
            name,
            ...(jurisdiction ? { jurisdiction } : {}),
            ...(options?.locationHint ? { locationHint: options.locationHint } : {}),
          });
          return target.getByName(name, options);
        };
      }
      if (property === "jurisdiction") return (chosen: string) => recordingNamespace(real, calls, chosen);
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** One request through the Worker with extra variables and the recording namespace. */
async function send(
  vars: Record<string, string>,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ response: Response; calls: Addressed[] }> {
  const calls: Addressed[] = [];
  const request = new Request(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...headers },
    body: body ?? null,
  });
  const bindings = {
    ...env,
    ...vars,
    BUCKETS: recordingNamespace(env.BUCKETS as unknown as DurableObjectNamespace, calls),
  } as unknown as typeof env;
  const response = await worker.fetch(
    request as Request<unknown, IncomingRequestCfProperties>,
    bindings,
    createExecutionContext(),
  );
  return { response, calls };
}

const LOCATION_ERROR = (value: string) =>
  `Invalid x-reduct-edge-location header '${value}': expected one of wnam, enam, sam, weur, eeur, apac, apac-ne, apac-se, oc, afr, me`;

async function bucketExists(name: string): Promise<boolean> {
  const response = await api("GET", `/b/${name}`);
  await response.body?.cancel();
  return response.status === 200;
}

describe("x-reduct-edge-location on bucket create", () => {
  const accepted: [string, string][] = [
    ...LOCATION_HINTS.map((hint): [string, string] => [hint, hint]),
    ["WEUR", "weur"],
    ["  enam ", "enam"],
    ["Apac-NE", "apac-ne"],
  ];
  it.each(accepted)("%j creates the bucket's object with hint %s", async (header, hint) => {
    const name = uniqueName("placed");
    const { response, calls } = await send({}, "POST", `/b/${name}`, { "x-reduct-edge-location": header });
    expect(response.status).toBe(200);
    expect(calls).toContainEqual({ name, locationHint: hint });
    expect(await bucketExists(name)).toBe(true);
  });

  it.each(["mars", "eu", "weur,enam", "weur enam", "w nam", "wnam;q=1", "apac-xx", "*", "__proto__", "x".repeat(300)])(
    "%j is refused with 422 and nothing is created",
    async (header) => {
      const name = uniqueName("unplaced");
      const { response, calls } = await send({}, "POST", `/b/${name}`, { "x-reduct-edge-location": header });
      await expectError(response, 422, LOCATION_ERROR(header));
      expect(calls).toEqual([]);
      expect(await bucketExists(name)).toBe(false);
    },
  );

  it("is checked after the caller's access: a read-only token gets 403 and never a placement error", async () => {
    const { response } = await send({}, "POST", `/b/${uniqueName("placed")}`, {
      "x-reduct-edge-location": "mars",
      authorization: "Bearer not-a-token",
    });
    expect(response.status).toBe(401);
    await response.body?.cancel();
  });

  it("an empty header means none: the deployment default applies", async () => {
    const name = uniqueName("placed");
    const { response, calls } = await send({ RS_DO_LOCATION_HINT: "oc" }, "POST", `/b/${name}`, { "x-reduct-edge-location": "" });
    expect(response.status).toBe(200);
    expect(calls).toContainEqual({ name, locationHint: "oc" });
  });

  it("the header wins over RS_DO_LOCATION_HINT", async () => {
    const name = uniqueName("placed");
    const { response, calls } = await send({ RS_DO_LOCATION_HINT: "oc" }, "POST", `/b/${name}`, {
      "x-reduct-edge-location": "afr",
    });
    expect(response.status).toBe(200);
    // The first address of a name creates its object; later ones (its lifecycles) change nothing.
    expect(calls.find((call) => call.name === name)).toEqual({ name, locationHint: "afr" });
  });

  it("an existing bucket answers 409 as without the header", async () => {
    const name = uniqueName("placed");
    expect((await api("POST", `/b/${name}`)).status).toBe(200);
    const { response } = await send({}, "POST", `/b/${name}`, { "x-reduct-edge-location": "weur" });
    await expectError(response, 409, `Bucket '${name}' already exists`);
  });
});

describe("RS_DO_LOCATION_HINT and RS_DO_JURISDICTION", () => {
  it("without either, objects are addressed by name alone", async () => {
    const name = uniqueName("plain");
    const { response, calls } = await send({}, "POST", `/b/${name}`);
    expect(response.status).toBe(200);
    expect(calls).toContainEqual({ name });
  });

  it("RS_DO_LOCATION_HINT is the hint of every object the edge addresses", async () => {
    const name = uniqueName("hinted");
    expect((await send({ RS_DO_LOCATION_HINT: "EEUR" }, "POST", `/b/${name}`)).response.status).toBe(200);
    const { response, calls } = await send({ RS_DO_LOCATION_HINT: "eeur" }, "GET", `/b/${name}`);
    expect(response.status).toBe(200);
    expect(calls).toEqual([{ name, locationHint: "eeur" }]);
  });

  it.each(["eu", "fedramp", "fedramp-high", " EU "])(
    "RS_DO_JURISDICTION=%j addresses objects in that jurisdiction",
    async (value) => {
      const name = uniqueName("juris");
      const { response, calls } = await send({ RS_DO_JURISDICTION: value, RS_DO_LOCATION_HINT: "weur" }, "POST", `/b/${name}`, {
        "x-reduct-edge-location": "eeur",
      });
      expect(response.status).toBe(200);
      expect(calls).toContainEqual({ name, jurisdiction: value.trim().toLowerCase(), locationHint: "eeur" });
      expect(calls.every((call) => call.jurisdiction === value.trim().toLowerCase())).toBe(true);
    },
  );

  const invalid: [string, string, string][] = [
    ["RS_DO_JURISDICTION", "us", "expected one of eu, fedramp, fedramp-high"],
    ["RS_DO_JURISDICTION", "EU,fedramp", "expected one of eu, fedramp, fedramp-high"],
    ["RS_DO_LOCATION_HINT", "mars", "expected one of wnam, enam, sam, weur, eeur, apac, apac-ne, apac-se, oc, afr, me"],
    ["RS_DO_LOCATION_HINT", "auto", "expected one of wnam, enam, sam, weur, eeur, apac, apac-ne, apac-se, oc, afr, me"],
  ];
  it.each(invalid)("%s=%j answers 500 naming the variable and touches no object", async (variable, value, reason) => {
    for (const [method, path] of [
      ["GET", "/info"],
      ["GET", "/list"],
      ["POST", `/b/${uniqueName("never")}`],
    ] as const) {
      const { response, calls } = await send({ [variable]: value }, method, path);
      await expectError(response, 500, `Invalid value of ${variable}: ${reason}`);
      expect(calls).toEqual([]);
    }
    const alive = await send({ [variable]: value }, "GET", "/alive");
    expect(alive.response.status).toBe(200);
    await alive.response.body?.cancel();
  });
});

describe("x-reduct-edge-location on bucket rename", () => {
  it("places the new name's object and keeps the records", async () => {
    const from = uniqueName("from");
    const to = uniqueName("to");
    expect((await api("POST", `/b/${from}`)).status).toBe(200);
    expect((await api("POST", `/b/${from}/e?ts=1`, { body: "abc" })).status).toBe(200);
    const { response, calls } = await send(
      {},
      "PUT",
      `/b/${from}/rename`,
      { "content-type": "application/json", "x-reduct-edge-location": "sam" },
      JSON.stringify({ new_name: to }),
    );
    expect(response.status).toBe(200);
    expect(calls).toContainEqual({ name: to, locationHint: "sam" });
    const record = await api("GET", `/b/${to}/e?ts=1`);
    expect(await record.text()).toBe("abc");
  });

  it("an invalid header is refused with 422 and the bucket keeps its name", async () => {
    const from = uniqueName("from");
    const to = uniqueName("to");
    expect((await api("POST", `/b/${from}`)).status).toBe(200);
    const { response, calls } = await send(
      {},
      "PUT",
      `/b/${from}/rename`,
      { "content-type": "application/json", "x-reduct-edge-location": "north-pole" },
      JSON.stringify({ new_name: to }),
    );
    await expectError(response, 422, LOCATION_ERROR("north-pole"));
    expect(calls).toEqual([]);
    expect(await bucketExists(from)).toBe(true);
    expect(await bucketExists(to)).toBe(false);
  });
});
