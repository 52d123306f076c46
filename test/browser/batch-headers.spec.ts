/** The console's reading of v1 batch record headers (`x-reduct-time-<ts>: <len>,<type>[,labels]`). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { basePath } from "../../ui/src/api";
import { parseBatchHeaders, parseRecordHeader } from "../../ui/src/batch-headers";

describe("batch record headers", () => {
  const cases: Array<[string, string, { size: number; contentType: string; labels: Record<string, string> }]> = [
    ["no labels", "10,application/octet-stream", { size: 10, contentType: "application/octet-stream", labels: {} }],
    ["empty content type", "3,", { size: 3, contentType: "application/octet-stream", labels: {} }],
    ["labels", "5,text/plain,a=1,b=two", { size: 5, contentType: "text/plain", labels: { a: "1", b: "two" } }],
    [
      "quoted value with commas",
      '7,text/plain,x="[a,b]",y=1',
      { size: 7, contentType: "text/plain", labels: { x: "[a,b]", y: "1" } },
    ],
    ["quoted value last", '7,text/plain,x="a,b"', { size: 7, contentType: "text/plain", labels: { x: "a,b" } }],
    ["computed label", "1,image/png,@score=0.5", { size: 1, contentType: "image/png", labels: { "@score": "0.5" } }],
    ["trailing fragment", "2,text/plain,a=1,junk", { size: 2, contentType: "text/plain", labels: { a: "1" } }],
    ["value with =", "2,text/plain,q=a=b", { size: 2, contentType: "text/plain", labels: { q: "a=b" } }],
  ];
  for (const [name, value, expected] of cases) {
    it(name, () => assert.deepEqual(parseRecordHeader(42, value), { ts: 42, ...expected }));
  }

  it("a batch: only x-reduct-time-* headers, sorted by timestamp", () => {
    const headers = new Headers({
      "x-reduct-time-2000": "1,text/plain",
      "x-reduct-time-1000": "2,image/png,k=v",
      "x-reduct-time-abc": "1,text/plain",
      "x-reduct-last": "true",
      "content-type": "application/octet-stream",
    });
    assert.deepEqual(
      parseBatchHeaders(headers).map((record) => [record.ts, record.size]),
      [
        [1000, 2],
        [2000, 1],
      ],
    );
  });
});

describe("the API base of the console's page", () => {
  for (const [pathname, base] of [
    ["/ui/", "/"],
    ["/ui/index.html", "/"],
    ["/base/ui/", "/base/"],
    ["/a/b/ui/", "/a/b/"],
    ["/ui/ui/", "/ui/"],
  ]) {
    it(`${pathname} → ${base}`, () => assert.equal(basePath(pathname as string), base));
  }
});
