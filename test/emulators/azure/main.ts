// The Azure ARM emulator as a process, for `make dev-up`:
//   node test/emulators/azure/main.ts --port 0 --ca-dir DIR [--resource-group SUBSCRIPTION/NAME]... [--tenant GUID]
//     [--principal-delay-ms N] [--fic-latency-ms N]
// Prints one JSON line {"endpoint","caFile","tenantId"} once it listens; clients trust DIR/ca.crt
// (NODE_EXTRA_CA_CERTS). Stops on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { startAzureEmulator } from './server.ts';
import { emulatorTls } from './tls.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'ca-dir': { type: 'string' },
    'resource-group': { type: 'string', multiple: true, default: [] },
    tenant: { type: 'string' },
    'principal-delay-ms': { type: 'string', default: '0' },
    'fic-latency-ms': { type: 'string', default: '0' },
  },
});
const caDir = values['ca-dir'];
if (!caDir) {
  process.stderr.write('usage: node test/emulators/azure/main.ts --port N --ca-dir DIR [--resource-group SUBSCRIPTION/NAME]...\n');
  process.exit(2);
}
const resourceGroups = values['resource-group'].map((rg) => {
  const [subscriptionId = '', name = ''] = rg.split('/');
  if (!subscriptionId || !name) throw new Error(`--resource-group wants SUBSCRIPTION/NAME, got ${rg}`);
  return { subscriptionId, name };
});
const tls = emulatorTls(caDir);
const emulator = await startAzureEmulator({
  tls,
  port: Number(values.port),
  ...(values.tenant ? { tenantId: values.tenant } : {}),
  resourceGroups,
  config: { principalReplicationDelayMs: Number(values['principal-delay-ms']), ficWriteLatencyMs: Number(values['fic-latency-ms']) },
});
process.stdout.write(`${JSON.stringify({ endpoint: emulator.endpoint, caFile: tls.caFile, tenantId: emulator.state.tenantId })}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void emulator.close().then(() => process.exit(0)));
}
