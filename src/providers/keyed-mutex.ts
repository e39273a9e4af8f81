// Runs async work one at a time per key, in arrival order. Entra refuses concurrent federated-credential writes to
// one managed identity (409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity), and concurrent
// read-modify-writes of one Google IAM policy lose on its etag and must be redone against the write limit; so every
// such write in this process queues behind the previous one for the same identity or policy.
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => current);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Whether work for `key` is queued or running: a caller that has to wait knows what it read may be stale. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }

  /** Keys with work queued or running (for tests: the map must not grow without bound). */
  get size(): number {
    return this.#tails.size;
  }
}
