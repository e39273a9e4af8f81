// Experiment, not part of the operator: preloaded into the operator process (BENCH_OPERATOR_NODE_OPTIONS=
// "--import ./bench/experiments/write-budget.ts") to measure what docs/benchmarks.md proposes.
//
// Today one token bucket per CloudAccount paces every cloud call, reads and writes alike, while the cloud limits
// writes far more tightly than reads. A bucket sized to the write limit then also spends write tokens on reads
// (creates run at 1.5× the floor, deletes at 3.5×); one sized above it lets write bursts through to Throttling.
// This replaces it with two buckets per SDK client — writes at KEYLESS_CLOUD_WRITES_PER_SECOND, reads at
// KEYLESS_CLOUD_READS_PER_SECOND — which is what src/providers/instrument.ts would do by taking from the bucket
// that matches the operation.
import { EKSClient } from '@aws-sdk/client-eks';
import { IAMClient } from '@aws-sdk/client-iam';
import { TokenBucket } from '../../src/controller/token-bucket.ts';

const writesPerSecond = Number(process.env['KEYLESS_CLOUD_WRITES_PER_SECOND'] ?? 10);
const readsPerSecond = Number(process.env['KEYLESS_CLOUD_READS_PER_SECOND'] ?? 100);

// The shared bucket still exists in the operator; it stops pacing anything. The two new buckets per client are
// TokenBuckets too, so they keep the original take.
const take = Object.getOwnPropertyDescriptor(TokenBucket.prototype, 'take')?.value as (this: TokenBucket) => Promise<void>;
TokenBucket.prototype.take = () => Promise.resolve();

interface Buckets {
  read: TokenBucket;
  write: TokenBucket;
}
const buckets = new WeakMap<object, Buckets>();
const isWrite = (command: object) => !/^(Get|List|Describe)/.test(command.constructor.name);

for (const Client of [IAMClient, EKSClient]) {
  const proto = Client.prototype as unknown as { send: (command: object, ...rest: unknown[]) => Promise<unknown> };
  const send = proto.send;
  proto.send = async function paced(this: object, command: object, ...rest: unknown[]) {
    let b = buckets.get(this);
    if (!b) {
      b = { read: new TokenBucket({ ratePerSec: readsPerSecond, burst: Math.max(1, Math.round(readsPerSecond / 10)) }), write: new TokenBucket({ ratePerSec: writesPerSecond, burst: 1 }) };
      buckets.set(this, b);
    }
    await take.call(isWrite(command) ? b.write : b.read);
    return send.call(this, command, ...rest);
  };
}
