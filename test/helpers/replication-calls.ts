/**
 * An environment whose bucket stubs record (and pass on) the replication calls the edge makes, so a
 * test sees what each source object is handed and asked, whatever the object does with it.
 */
import { env } from "cloudflare:test";
import type { BucketObject } from "../../src/bucket/bucket-object";
import type { ReplicationSpec } from "../../src/model/replications";
import { apiWithEnv, TOKEN } from "./http";

type Calls = { bucket: string; method: string; args: unknown[] }[];

/**
 * The environment with a bucket namespace whose stubs record (and pass on) the replication calls,
 * and optionally fail `replicationStatus`.
 */
export function recordingEnv(options: { failStatus?: boolean; variables?: Record<string, string> } = {}) {
  const calls: Calls = [];
  const namespace = env.BUCKETS;
  const wrap = (bucket: string, stub: DurableObjectStub<BucketObject>) =>
    new Proxy(stub, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (prop === "setReplications" || prop === "replicationStatus") {
          return async (...args: unknown[]) => {
            calls.push({ bucket, method: prop, args });
            if (prop === "replicationStatus" && options.failStatus) throw new Error("object unreachable");
            return (value as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        // An RPC method is a callable stub: `bind` or `apply` on it would be remote calls.
        return typeof value === "function" ? (...args: unknown[]) => (value as (...a: unknown[]) => unknown)(...args) : value;
      },
    });
  const BUCKETS = new Proxy(namespace, {
    get(target, prop) {
      if (prop === "getByName") {
        return (name: string) => wrap(name, target.getByName(name) as DurableObjectStub<BucketObject>);
      }
      const value = Reflect.get(target, prop) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const call = (method: string, path: string, body?: unknown) =>
    apiWithEnv(
      { ...options.variables, BUCKETS: BUCKETS as unknown as string },
      method,
      path,
      { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body === undefined ? undefined : JSON.stringify(body),
    );
  /** What each bucket's object was handed, in order. */
  const handed = () =>
    calls
      .filter((entry) => entry.method === "setReplications")
      .map((entry) => [entry.bucket, (entry.args[0] as ReplicationSpec[]).map((spec) => spec.name)]);
  return { calls, call, handed };
}
