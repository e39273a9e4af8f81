// CLI for the GCP emulator (`make dev-up` runs it in the background):
//   node test/emulators/gcp/main.ts --port 0 --project keyless-dev:123456789012 [--bucket B] [--topic P/T] [--secret P/S]
//     [--propagation-delay-ms N]
// Prints its endpoint (http://127.0.0.1:PORT) on one line once it listens.
import { parseArgs } from 'node:util';
import { startGcpEmulator } from './server.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    project: { type: 'string', multiple: true, default: [] },
    bucket: { type: 'string', multiple: true, default: [] },
    topic: { type: 'string', multiple: true, default: [] },
    secret: { type: 'string', multiple: true, default: [] },
    'propagation-delay-ms': { type: 'string', default: '0' },
  },
});

const projects = values.project.map((p) => {
  const [projectId = '', projectNumber = ''] = p.split(':');
  if (!projectId || !/^[0-9]+$/.test(projectNumber)) throw new Error(`--project ${p}: expected PROJECT_ID:PROJECT_NUMBER`);
  return { projectId, projectNumber };
});
const emulator = await startGcpEmulator({ port: Number(values.port), projects });
const { state } = emulator;
state.faults.propagationDelayMs = Number(values['propagation-delay-ms']);
for (const b of values.bucket) state.addResource(`bucket/${b}`);
for (const t of values.topic) state.addResource(`topic/projects/${t.replace('/', '/topics/')}`);
for (const s of values.secret) state.addResource(`secret/projects/${s.replace('/', '/secrets/')}`);
process.stdout.write(`${emulator.endpoint}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void emulator.close().then(() => process.exit(0)));
