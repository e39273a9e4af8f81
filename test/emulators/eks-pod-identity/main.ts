// `make dev-up` runs this in the background: the Pod Identity emulator in front of moto.
//   node test/emulators/eks-pod-identity/main.ts --upstream http://127.0.0.1:MOTO_PORT [--port N]
import { parseArgs } from 'node:util';
import { startPodIdentityEmulator } from './server.ts';

const { values } = parseArgs({ options: { upstream: { type: 'string' }, port: { type: 'string', default: '0' } } });
if (!values.upstream) throw new Error('--upstream is required');
const emulator = await startPodIdentityEmulator({ upstream: values.upstream, port: Number(values.port) });
console.log(emulator.endpoint);
process.on('SIGTERM', () => void emulator.stop().then(() => process.exit(0)));
