// A port whose implementation — and the cloud SDK behind it — is loaded on its first call. A cloud SDK costs
// 10–40 MiB of resident memory at import (docs/benchmarks.md), and most clusters use one cloud: an operator with
// no Azure CloudAccount never loads the Azure SDK. Every member of a port is an async method, so waiting for the
// import inside the call changes nothing for callers.

/**
 * One load at a time in the whole process: two SDKs that share CommonJS dependencies cannot be imported at once
 * (Node fails one with ERR_REQUIRE_ESM_RACE_CONDITION; seen with @azure/arm-msi and @azure/arm-authorization), and
 * the first reconcile of an account asks for several ports together.
 */
let previousLoad: Promise<unknown> = Promise.resolve();

function oneAtATime<P>(load: () => Promise<P>): Promise<P> {
  const next = previousLoad.then(load, load);
  previousLoad = next.catch(() => undefined);
  return next;
}

/** Wraps `load` as a port of type P; a failed load is retried on the next call. */
export function lazyPort<P extends object>(load: () => Promise<P>): P {
  let loading: Promise<P> | undefined;
  const port = () =>
    (loading ??= oneAtATime(load).catch((err: unknown) => {
      loading = undefined;
      throw err;
    }));
  return new Proxy({} as P, {
    get(_target, method) {
      return async (...args: unknown[]) => {
        const impl = await port();
        const fn = impl[method as keyof P];
        if (typeof fn !== 'function') throw new TypeError(`lazy port has no method ${String(method)}`);
        return (fn as (...a: unknown[]) => unknown).apply(impl, args);
      };
    },
  });
}
