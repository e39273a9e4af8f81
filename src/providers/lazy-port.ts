// A port whose implementation — and the cloud SDK behind it — is loaded on its first call. A cloud SDK costs
// 10–40 MiB of resident memory at import (docs/benchmarks.md), and most clusters use one cloud: an operator with
// no Azure CloudAccount never loads the Azure SDK. Every member of a port is an async method, so waiting for the
// import inside the call changes nothing for callers.

/** Wraps `load` as a port of type P; a failed load is retried on the next call. */
export function lazyPort<P extends object>(load: () => Promise<P>): P {
  let loading: Promise<P> | undefined;
  const port = () =>
    (loading ??= load().catch((err: unknown) => {
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
