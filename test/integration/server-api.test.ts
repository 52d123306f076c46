import { describe, expect, it } from "vitest";
import { api, expectError } from "../helpers/http";

describe("server API", () => {
  it("answers /alive anonymously with the API version", async () => {
    for (const method of ["GET", "HEAD"]) {
      const response = await api(method, "/alive", { token: null });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-reduct-api")).toMatch(/^1\.\d+$/);
      expect(await response.text()).toBe("");
    }
  });

  it("returns 404 with the error contract for unknown paths", async () => {
    await expectError(await api("GET", "/NOTEXIST"), 404, "Not found");
    await expectError(await api("GET", "/NOTEXIST/XXXX"), 404, "Not found");
  });
});
