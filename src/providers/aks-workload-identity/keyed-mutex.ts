// Runs async work one at a time per key, in arrival order. Entra refuses concurrent federated-credential writes to
// one managed identity (409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity), so every such
// write in this process queues behind the previous one for the same identity.
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

  /** Keys with work queued or running (for tests: the map must not grow without bound). */
  get size(): number {
    return this.#tails.size;
  }
}
