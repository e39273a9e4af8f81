// Reads operator settings from environment variables, collecting every problem before failing, so one start names
// every bad variable. Hand-written rather than a schema library: this runs once, and a schema library is ~18 MiB of
// resident memory at import, a fifth of the operator's footprint at rest (docs/benchmarks.md).

export class EnvReader {
  readonly #env: Record<string, string | undefined>;
  readonly #problems: string[] = [];

  constructor(env: Record<string, string | undefined>) {
    this.#env = env;
  }

  /** The value, with empty counting as unset (as Kubernetes `value: ""` and the SDKs treat it). */
  string(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  number(name: string, fallback: number, rule: { int?: boolean; min?: number; max?: number; positive?: boolean } = {}): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    const problem =
      !Number.isFinite(value) || raw.trim() === '' ? 'must be a number'
      : rule.int && !Number.isInteger(value) ? 'must be a whole number'
      : rule.positive && value <= 0 ? 'must be greater than 0'
      : rule.min !== undefined && value < rule.min ? `must be at least ${rule.min}`
      : rule.max !== undefined && value > rule.max ? `must be at most ${rule.max}`
      : undefined;
    return problem ? this.#fail(name, `${problem}, got "${raw}"`, fallback) : value;
  }

  oneOf<const V extends string>(name: string, values: readonly V[], fallback: V): V {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    return (values as readonly string[]).includes(raw) ? (raw as V) : this.#fail(name, `must be one of ${values.join(', ')}, got "${raw}"`, fallback);
  }

  bool(name: string, fallback: boolean): boolean {
    return this.oneOf(name, ['true', 'false'], fallback ? 'true' : 'false') === 'true';
  }

  /** An https:// URL (bearer tokens must not travel over http), without a trailing slash. */
  httpsUrl(name: string, fallback: string, message = 'must be an https:// URL'): string {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    let ok: boolean;
    try {
      ok = new URL(raw).protocol === 'https:';
    } catch {
      ok = false;
    }
    return ok ? raw.replace(/\/+$/, '') : this.#fail(name, message, fallback);
  }

  /** Throws one error naming every bad variable, if there is any. */
  done(): void {
    if (this.#problems.length) throw new Error(`invalid configuration: ${this.#problems.join('; ')}`);
  }

  #fail<T>(name: string, problem: string, fallback: T): T {
    this.#problems.push(`${name}: ${problem}`);
    return fallback;
  }
}
