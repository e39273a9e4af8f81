// Two operator replicas with leader election, as the Deployment runs them, restarted whenever they exit (as the
// kubelet restarts a container). Each process has its own leader-election identity (POD_NAME here), so a killed
// leader's Lease must expire before the other replica takes over. Every exit is classified: killed by the run,
// stepped down (lost the Lease, e.g. while the API server restarted: it exits on purpose, as client-go's
// controllers do), stopped at the end, or a crash — which fails the run.
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { OPERATOR_NAMESPACE, spawnOperator } from '../test/support/operator.ts';
import { readProc } from '../bench/operator.ts';

export interface Exit {
  name: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  cause: 'killed' | 'steppedDown' | 'stopped' | 'crashed';
  /** The last lines of its log, for a crash. */
  tail?: string;
}

export interface Kill {
  atSeconds: number;
  phase: string;
  mode: 'afterWrite' | 'random';
  name: string;
}

interface Replica {
  name: string;
  child: ChildProcess;
  logFile: string;
  port: number;
}

export class Replicas {
  readonly exits: Exit[] = [];
  readonly kills: Kill[] = [];
  /** Distinct Lease holders seen, in order. */
  readonly leaders: string[] = [];
  peakRssBytes = 0;
  readonly #live = new Map<string, Replica>();
  readonly #killed = new Set<number>();
  #stopping = false;
  #spawned = 0;
  #leader: string | undefined;
  readonly #lease: CoordinationV1Api;
  readonly #opts: { kubeconfig: string; env: Record<string, string>; logDir: string; began: number };
  #poller: NodeJS.Timeout | undefined;
  readonly #pending = new Set<Promise<void>>();

  constructor(kc: KubeConfig, opts: { kubeconfig: string; env: Record<string, string>; logDir: string; began: number }) {
    this.#lease = kc.makeApiClient(CoordinationV1Api);
    this.#opts = opts;
  }

  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.#spawn()));
    this.#poller = setInterval(() => void this.#poll(), 1000);
  }

  /** The replica holding the Lease, as last read (every second). */
  get leader(): string | undefined {
    return this.#leader && this.#live.has(this.#leader) ? this.#leader : undefined;
  }

  /** SIGKILLs the leader (if one leads now); it is restarted at once and comes back as a follower. */
  killLeader(phase: string, mode: Kill['mode']): boolean {
    const name = this.leader;
    const replica = name ? this.#live.get(name) : undefined;
    if (!replica?.child.pid) return false;
    this.#killed.add(replica.child.pid);
    replica.child.kill('SIGKILL');
    this.kills.push({ atSeconds: Math.round((Date.now() - this.#opts.began) / 1000), phase, mode, name: replica.name });
    this.#leader = undefined;
    return true;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#poller);
    await Promise.all(this.#pending);
    await Promise.all(
      [...this.#live.values()].map(
        (r) =>
          new Promise<void>((resolve) => {
            if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve();
            r.child.once('exit', () => resolve());
            r.child.kill('SIGTERM');
          }),
      ),
    );
  }

  async #spawn(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const name = `chaos-${++this.#spawned}`;
      const logFile = path.join(this.#opts.logDir, `${name}.log`);
      try {
        const { child, port } = await spawnOperator({ kubeconfig: this.#opts.kubeconfig, env: { ...this.#opts.env, POD_NAME: name, KEYLESS_LEADER_ELECTION: 'true' }, logFile, syncTimeoutMs: 180_000 });
        const replica = { name, child, logFile, port };
        this.#live.set(name, replica);
        child.once('exit', (code, signal) => this.#exited(replica, code, signal));
        return;
      } catch (err) {
        // It exited before its caches synced (the API server restarting, say): that exit is classified too.
        this.exits.push({ name, pid: 0, code: null, signal: null, cause: 'crashed', tail: `${String(err)}\n${tail(logFile)}` });
        if (this.#stopping || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  #exited(replica: Replica, code: number | null, signal: NodeJS.Signals | null): void {
    this.#live.delete(replica.name);
    const pid = replica.child.pid ?? 0;
    const log = tail(replica.logFile);
    const cause: Exit['cause'] = this.#killed.has(pid) ? 'killed' : this.#stopping && code === 0 ? 'stopped' : code === 1 && log.includes('"msg":"lost leadership"') ? 'steppedDown' : 'crashed';
    this.exits.push({ name: replica.name, pid, code, signal, cause, ...(cause === 'crashed' ? { tail: log } : {}) });
    if (this.#stopping) return;
    const restart = this.#spawn()
      .catch(() => undefined)
      .finally(() => this.#pending.delete(restart));
    this.#pending.add(restart);
  }

  async #poll(): Promise<void> {
    const lease = await this.#lease.readNamespacedLease({ namespace: OPERATOR_NAMESPACE, name: 'keyless-operator' }).catch(() => undefined);
    const holder = lease?.spec?.holderIdentity ?? undefined;
    if (holder && holder !== this.leaders[this.leaders.length - 1]) this.leaders.push(holder);
    this.#leader = holder;
    for (const r of this.#live.values()) {
      if (!r.child.pid) continue;
      try {
        this.peakRssBytes = Math.max(this.peakRssBytes, readProc(r.child.pid).peakRssBytes);
      } catch {
        // exited between the list and the read
      }
    }
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}
