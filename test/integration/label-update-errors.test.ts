/**
 * A batched label update (v1 `PATCH …/batch`, v2 `PATCH /io/:bucket/update`) reports every label a
 * record cannot hold as that record's error (`x-reduct-error-*`, overall 200) and applies the other
 * records, whatever the rule: a reserved name (`__proto__`), a name that is no header token, names
 * differing only by case, the caps. Only a malformed request (grammar, `@` names, op caps) fails
 * as a whole, as in ReductStore. A single PATCH answers the record's error itself.
 */
import { describe, expect, it } from "vitest";
import { api, expectError, uniqueName } from "../helpers/http";
import { createBucket } from "../helpers/records";

const TOKEN_RULE = "label names may contain only letters, digits and !#$%&'*+-.^_`|~";

async function labelsOf(bucket: string, ts: number): Promise<Record<string, string>> {
  const response = await api("GET", `/b/${bucket}/e?ts=${ts}`);
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return Object.fromEntries(
    [...response.headers].filter(([name]) => name.startsWith("x-reduct-label-")).map(([n, v]) => [n.slice(15), v]),
  );
}

async function setup(): Promise<string> {
  const bucket = uniqueName("label-update-errors");
  await createBucket(bucket);
  const response = await api("POST", `/b/${bucket}/e/batch`, {
    headers: { "x-reduct-time-1": "1,text/plain,A=1", "x-reduct-time-2": "1,text/plain,x=1" },
    body: "xy",
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
  return bucket;
}

describe("batched label updates report invalid labels per record", () => {
  const cases: Array<[string, string, string]> = [
    ["a reserved name", "__proto__=p", "Label name '__proto__' is reserved"],
    ["a name that is no header token", "a/b=1", `Label name 'a/b' is invalid: ${TOKEN_RULE}`],
    ["names differing only by case", "a=lower", "Label names 'A' and 'a' differ only by case"],
  ];
  for (const [what, op, message] of cases) {
    it(`v1 PATCH …/batch: ${what}`, async () => {
      const bucket = await setup();
      const response = await api("PATCH", `/b/${bucket}/e/batch`, {
        headers: { "x-reduct-time-1": `0,,${op}`, "x-reduct-time-2": "0,,y=2" },
      });
      await response.arrayBuffer();
      expect(response.status, response.headers.get("x-reduct-error") ?? "").toBe(200);
      expect(response.headers.get("x-reduct-error-1")).toBe(`422,${message}`);
      expect(response.headers.get("x-reduct-error-2")).toBeNull();
      expect(await labelsOf(bucket, 1)).toEqual({ a: "1" });
      expect(await labelsOf(bucket, 2)).toEqual({ x: "1", y: "2" });
    });

    it(`v2 PATCH /io/:bucket/update: ${what}`, async () => {
      const bucket = await setup();
      const response = await api("PATCH", `/io/${bucket}/update`, {
        headers: {
          "x-reduct-entries": "e,other",
          "x-reduct-start-ts": "1",
          "x-reduct-0-0": `0,,${op}`,
          "x-reduct-1-1": "0,,y=2",
        },
      });
      await response.arrayBuffer();
      expect(response.status, response.headers.get("x-reduct-error") ?? "").toBe(200);
      expect(response.headers.get("x-reduct-error-0-0")).toBe(`422,${message}`);
      expect(await labelsOf(bucket, 1)).toEqual({ a: "1" });
    });
  }

  it("v2: the other records of the request apply", async () => {
    const bucket = await setup();
    const response = await api("PATCH", `/io/${bucket}/update`, {
      headers: {
        "x-reduct-entries": "e",
        "x-reduct-start-ts": "1",
        "x-reduct-0-0": "0,,__proto__=p",
        "x-reduct-0-1": "0,,__proto__=,y=2",
      },
    });
    await response.arrayBuffer();
    expect(response.status).toBe(200);
    expect(response.headers.get("x-reduct-error-0-0")).toBe("422,Label name '__proto__' is reserved");
    expect(response.headers.get("x-reduct-error-0-1")).toBeNull();
    expect(await labelsOf(bucket, 2)).toEqual({ x: "1", y: "2" });
  });

  it("single PATCH answers the record's 422; `@` names stay a request error on the batch paths", async () => {
    const bucket = await setup();
    await expectError(
      await api("PATCH", `/b/${bucket}/e?ts=2`, { headers: { "x-reduct-label-__proto__": "p" } }),
      422,
      "Label name '__proto__' is reserved",
    );
    await expectError(
      await api("PATCH", `/io/${bucket}/update`, {
        headers: { "x-reduct-entries": "e", "x-reduct-start-ts": "1", "x-reduct-0-0": "0,,@c=1" },
      }),
      422,
      "Label names must not start with '@': reserved for computed labels",
    );
    expect(await labelsOf(bucket, 2)).toEqual({ x: "1" });
  });
});
