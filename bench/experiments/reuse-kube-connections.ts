// Experiment, not part of the operator: preloaded into the operator process (BENCH_OPERATOR_NODE_OPTIONS=
// "--import ./bench/experiments/reuse-kube-connections.ts") to measure what docs/benchmarks.md proposes.
//
// @kubernetes/client-node 2.0.1 builds a new undici Agent for every API request (KubeConfig.createDispatcher,
// called from applySecurityAuthentication), so every request pays a TLS handshake and a new SecureContext, and
// the idle connections and their native TLS state stay around until the Agent is garbage collected. This keeps
// one Agent per cluster and user for the life of the process, which is what the operator would do in
// src/main.ts (or src/kube/) by wrapping `kc.createDispatcher`.
import { KubeConfig } from '@kubernetes/client-node';

type CreateDispatcher = (cluster: { name: string; server: string } | null, agentOptions: Record<string, unknown>) => unknown;
const proto = KubeConfig.prototype as unknown as { createDispatcher: CreateDispatcher };
const original = proto.createDispatcher;
const cache = new Map<string, unknown>();
proto.createDispatcher = function createDispatcher(this: KubeConfig, cluster, agentOptions) {
  const key = `${cluster?.name ?? ''}|${cluster?.server ?? ''}|${this.getCurrentUser()?.name ?? ''}`;
  if (!cache.has(key)) cache.set(key, original.call(this, cluster, agentOptions));
  return cache.get(key);
};
