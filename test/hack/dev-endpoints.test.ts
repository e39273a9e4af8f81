// hack/dev.sh hands the operator the emulators' endpoints through .dev/env: it must take an endpoint only once the
// emulator has written it whole, wait for it also when an earlier `make dev-up` started the emulator and gave up, and
// stop loudly rather than write, or start the operator with, an empty one. The script is sourced into bash with its
// state in a temporary directory and fake emulators (a few lines of node that write an endpoint slowly) in place of
// the real ones: no control plane, nothing beyond 127.0.0.1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const DEV_SH = fileURLToPath(new URL('../../hack/dev.sh', import.meta.url));
// Long enough that a reader polling every 100 ms sees the half-written line; short enough to keep the file fast.
const PAUSE_MS = 400;

type Emulator = {
  name: string;
  start: string;
  /** the file the emulator writes (its stdout) and the one dev.sh hands on, when they differ (azure) */
  writes: string;
  endpointFile: string;
  /** the emulator's endpoint line, cut where a slow writer pauses */
  firstPart: string;
  rest: string;
  endpoint: string;
};

const gcp: Emulator = {
  name: 'gcp',
  start: 'start_gcp',
  writes: 'gcp.endpoint',
  endpointFile: 'gcp.endpoint',
  firstPart: 'http://127.0.0.1:',
  rest: '4567\n',
  endpoint: 'http://127.0.0.1:4567',
};
const podIdentity: Emulator = {
  name: 'pod-identity',
  start: 'start_pod_identity',
  writes: 'pod-identity.endpoint',
  endpointFile: 'pod-identity.endpoint',
  firstPart: 'http://127.0.0.1:4',
  rest: '568\n',
  endpoint: 'http://127.0.0.1:4568',
};
const azure: Emulator = {
  name: 'azure',
  start: 'start_azure',
  writes: 'azure.json',
  endpointFile: 'azure.endpoint',
  firstPart: '{"endpoint":"https://127.0.0.1:',
  rest: '4569","caFile":"/dev/null","tenantId":"00000000-0000-0000-0000-000000000002"}\n',
  endpoint: 'https://127.0.0.1:4569',
};
const emulatorMains: Record<string, string> = { gcp: 'gcp', 'pod-identity': 'eks-pod-identity', azure: 'azure' };

// A whole, valid endpoint for each name write_env reads.
const goodEndpoints: Record<string, string> = {
  moto: 'http://127.0.0.1:4566\n',
  'pod-identity': 'http://127.0.0.1:4568\n',
  gcp: 'http://127.0.0.1:4567\n',
  azure: 'https://127.0.0.1:4569\n',
};

type Fixture = { root: string; dev: string };
type Run = { code: number | null; stdout: string; stderr: string };

// A working directory of its own for one test, and the state directory dev.sh writes in; stops what dev.sh started
// there (never the test's own process, which stands in for an emulator already running).
async function fixture(t: TestContext): Promise<Fixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'keyless-dev-sh-'));
  const dev = path.join(root, '.dev');
  await mkdir(dev);
  t.after(async () => {
    for (const file of (await readdir(dev)).filter((f) => f.endsWith('.pid'))) {
      const pid = Number(await readFile(path.join(dev, file), 'utf8'));
      if (pid && pid !== process.pid) {
        try {
          process.kill(pid);
        } catch {
          // already gone
        }
      }
    }
    await rm(root, { recursive: true, force: true });
  });
  return { root, dev };
}

// A fake emulator at the path dev.sh runs: it writes the first part of its endpoint line, pauses, writes the rest,
// then stays up like a real emulator until the test stops it (or, failing that, for a few seconds).
async function fakeEmulator(f: Fixture, e: Emulator): Promise<void> {
  const dir = path.join(f.root, 'test', 'emulators', emulatorMains[e.name] ?? e.name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'main.ts'),
    `process.stdout.write(${JSON.stringify(e.firstPart)});
setTimeout(() => process.stdout.write(${JSON.stringify(e.rest)}), ${PAUSE_MS});
setTimeout(() => {}, 10_000);
`,
  );
}

// The same emulator as left running by an earlier `dev-up`: its pid file names a live process (this test's own).
async function alreadyRunning(f: Fixture, name: string): Promise<void> {
  await writeFile(path.join(f.dev, `${name}.pid`), `${process.pid}\n`);
}

async function writeEndpoints(f: Fixture, endpoints: Record<string, string | undefined>): Promise<void> {
  for (const [name, content] of Object.entries(endpoints)) {
    if (content !== undefined) await writeFile(path.join(f.dev, `${name}.endpoint`), content);
  }
}

// Runs SCRIPT in bash after sourcing hack/dev.sh, with dev.sh's state in f.dev and its working directory f.root.
function devSh(f: Fixture, script: string, env: Record<string, string> = {}): Promise<Run> {
  const child = spawn('bash', ['-c', `. "$DEV_SH"; dev=$FIXTURE_DEV; cd "$FIXTURE_ROOT"; ${script}`], {
    env: {
      ...process.env,
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
      DEV_SH,
      FIXTURE_DEV: f.dev,
      FIXTURE_ROOT: f.root,
      KEYLESS_DEV_START_TIMEOUT: '3',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('hack/dev.sh emulator endpoints', { concurrency: true }, () => {
  // What moto answers on /moto-api/ once it is up.
  let moto: http.Server;
  let motoEndpoint = '';
  before(async () => {
    moto = http.createServer((_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => moto.listen(0, '127.0.0.1', resolve));
    motoEndpoint = `http://127.0.0.1:${(moto.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => moto.close(() => resolve())));

  const motoAsEmulator = (): Emulator => ({
    name: 'moto',
    start: 'start_moto',
    writes: 'moto.endpoint',
    endpointFile: 'moto.endpoint',
    firstPart: motoEndpoint.slice(0, -2),
    rest: `${motoEndpoint.slice(-2)}\n`,
    endpoint: motoEndpoint,
  });

  for (const e of [gcp, podIdentity, azure]) {
    it(`takes the ${e.name} endpoint only once the emulator it starts has written the whole line`, async (t) => {
      const f = await fixture(t);
      await fakeEmulator(f, e);
      await writeEndpoints(f, { moto: goodEndpoints.moto });

      const run = await devSh(f, `${e.start}; cat "$dev/${e.endpointFile}"`);

      assert.deepEqual(run, { code: 0, stdout: `${e.endpoint}\n`, stderr: '' });
    });
  }

  for (const name of ['moto', 'pod-identity', 'gcp', 'azure']) {
    it(`waits for the ${name} endpoint that an emulator an earlier dev-up started writes late`, async (t) => {
      const emulator = name === 'moto' ? motoAsEmulator() : [gcp, podIdentity, azure].find((e) => e.name === name)!;
      const f = await fixture(t);
      await alreadyRunning(f, emulator.name);
      const written = path.join(f.dev, emulator.writes);

      const run = devSh(f, `${emulator.start}; cat "$dev/${emulator.endpointFile}"`);
      await writeFile(written, emulator.firstPart);
      await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      await appendFile(written, emulator.rest);

      assert.deepEqual(await run, { code: 0, stdout: `${emulator.endpoint}\n`, stderr: '' });
    });
  }

  for (const name of ['moto', 'pod-identity', 'gcp', 'azure']) {
    it(`fails naming the ${name} log when a running ${name} never writes its endpoint`, async (t) => {
      const f = await fixture(t);
      await alreadyRunning(f, name);

      const run = await devSh(f, `start_${name.replace('-', '_')}; echo started`, { KEYLESS_DEV_START_TIMEOUT: '1' });

      assert.notEqual(run.code, 0);
      assert.equal(run.stdout, '');
      assert.ok(run.stderr.includes(`see ${f.dev}/${name}.log`), run.stderr);
    });
  }

  it('stops waiting as soon as the emulator it started exits without an endpoint', { timeout: 5_000 }, async (t) => {
    const f = await fixture(t);
    await mkdir(path.join(f.root, 'test', 'emulators', 'gcp'), { recursive: true });
    await writeFile(path.join(f.root, 'test', 'emulators', 'gcp', 'main.ts'), 'process.stderr.write("boom\\n"); process.exit(1);\n');

    const run = await devSh(f, 'start_gcp; echo started', { KEYLESS_DEV_START_TIMEOUT: '60' });

    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.ok(run.stderr.includes(`see ${f.dev}/gcp.log`), run.stderr);
  });

  const brokenEndpoints: { why: string; name: string; content: string | undefined }[] = [
    { why: 'the azure endpoint file is missing', name: 'azure', content: undefined },
    { why: 'the azure endpoint file is empty', name: 'azure', content: '' },
    { why: 'the gcp endpoint is still being written (no newline yet)', name: 'gcp', content: 'http://127.0.0.1:45' },
    { why: 'the moto endpoint is not an http(s) URL', name: 'moto', content: 'Traceback (most recent call last):\n' },
  ];
  for (const { why, name, content } of brokenEndpoints) {
    it(`write_env fails and writes no .dev/env when ${why}`, async (t) => {
      const f = await fixture(t);
      await writeEndpoints(f, { ...goodEndpoints, [name]: content });

      const run = await devSh(f, 'write_env; echo written');

      assert.notEqual(run.code, 0);
      assert.equal(run.stdout, '');
      assert.ok(run.stderr.includes(`no complete http(s) endpoint in ${f.dev}/${name}.endpoint`), run.stderr);
      await assert.rejects(readFile(path.join(f.dev, 'env')), { code: 'ENOENT' });
    });
  }

  it('write_env writes every endpoint into .dev/env, where the operator finds them', async (t) => {
    const f = await fixture(t);
    await writeEndpoints(f, goodEndpoints);

    const run = await devSh(f, 'write_env; operator_env; echo "$AWS_ENDPOINT_URL_IAM $AWS_ENDPOINT_URL_EKS $KEYLESS_GCP_ENDPOINT $KEYLESS_AZURE_ENDPOINT"');

    assert.deepEqual(run, { code: 0, stdout: 'http://127.0.0.1:4566 http://127.0.0.1:4568 http://127.0.0.1:4567 https://127.0.0.1:4569\n', stderr: '' });
  });

  it('refuses to start the operator from a .dev/env with an empty Azure endpoint', async (t) => {
    const f = await fixture(t);
    await writeEndpoints(f, goodEndpoints);
    await devSh(f, 'write_env');
    const env = await readFile(path.join(f.dev, 'env'), 'utf8');
    await writeFile(path.join(f.dev, 'env'), env.replace('KEYLESS_AZURE_ENDPOINT=https://127.0.0.1:4569', 'KEYLESS_AZURE_ENDPOINT='));

    const run = await devSh(f, 'operator_env; echo started');

    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /KEYLESS_AZURE_ENDPOINT in .* is not an http\(s\) endpoint/);
  });
});
