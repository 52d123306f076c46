// The one Node API the bench's counting wrapper uses (workerd provides it under nodejs_compat);
// the Workers runtime types do not declare Node modules.
declare module "node:async_hooks" {
  export class AsyncLocalStorage<T> {
    run<R>(store: T, callback: () => R): R;
    getStore(): T | undefined;
  }
}
