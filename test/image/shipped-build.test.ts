// The build the image ships, run: dist/ compiled as the Dockerfile compiles it (tsc -p tsconfig.build.json) next to a
// node_modules with the production dependencies only (npm ci --omit=dev, what `npm prune --omit=dev` leaves in the
// image), in a directory of its own under the system temp dir, so no devDependency is reachable from it. Everything
// the compiled code imports, at start or on first use of a cloud, must be a production dependency; and `node
// dist/main.js` must answer /readyz and make a WorkloadIdentity Ready (AWS IRSA against moto).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createOidcProvider, startAwsEmulator, TEST_ACCOUNT_ID } from '../support/aws.ts';
import { clusterIssuer, eventually, freshNamespace, kubeConfig, kubectl, kubectlApply, repoPath } from '../support/cluster.ts';
import { awsEnv, installOperator, spawnOperator } from '../support/operator.ts';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** The package a bare specifier names: `@scope/name` or `name`, without a subpath. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Every bare specifier the compiled code imports: static imports and re-exports, and import() of a string. */
function importedPackages(dist: string): string[] {
  const specifiers = new Set<string>();
  for (const file of readdirSync(dist, { recursive: true }) as string[]) {
    if (!file.endsWith('.js')) continue;
    const code = readFileSync(path.join(dist, file), 'utf8');
    for (const m of code.matchAll(/\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]/g)) {
      const specifier = m[1] ?? m[2] ?? m[3] ?? '';
      if (!specifier.startsWith('.') && !isBuiltin(specifier)) specifiers.add(specifier);
    }
  }
  return [...specifiers].sort();
}

/** Where Node's ESM resolution finds each specifier from the app directory, or the error code when it does not. */
async function resolveFrom(app: string, specifiers: string[]): Promise<Record<string, string>> {
  const script = `for (const s of JSON.parse(process.argv[1])) {
    let where; try { where = import.meta.resolve(s); } catch (err) { where = err.code; }
    console.log(JSON.stringify([s, where]));
  }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(specifiers)], { cwd: app, env: { PATH: process.env['PATH'] ?? '' } });
  return Object.fromEntries(stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as [string, string]));
}

describe('the shipped build: dist/main.js with production dependencies only', () => {
  let app: string;

  before(async () => {
    // What the image's /app holds: package.json, the production node_modules, dist/.
    app = mkdtempSync(path.join(os.tmpdir(), 'keyless-app-'));
    for (const file of ['package.json', 'package-lock.json']) copyFileSync(repoPath(file), path.join(app, file));
    await Promise.all([
      // From the npm cache that `make test` filled with the full install; the registry only for what it lacks.
      run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, timeout: 300_000 }),
      run(process.execPath, [repoPath('node_modules/typescript/bin/tsc'), '-p', repoPath('tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { timeout: 300_000 }),
    ]);
  });

  after(() => {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('holds no dev-only package, and no node_modules above it does: a devDependency cannot be imported', () => {
    const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([where, entry]) => where && entry.dev).map(([where]) => where);
    assert.ok(devOnly.includes('node_modules/@kubernetes/client-node'), 'the lockfile marks dev-only packages');
    assert.deepEqual(devOnly.filter((where) => existsSync(path.join(app, where))), []);
    const above = [];
    for (let dir = path.dirname(app); ; dir = path.dirname(dir)) {
      if (existsSync(path.join(dir, 'node_modules'))) above.push(path.join(dir, 'node_modules'));
      if (dir === path.dirname(dir)) break;
    }
    assert.deepEqual(above, [], 'ESM resolution would look there');
  });

  it('imports only production dependencies, at start and on first use of each cloud, and each resolves', async () => {
    const imported = importedPackages(path.join(app, 'dist'));
    assert.ok(imported.includes('pino') && imported.includes('google-auth-library'), `found the imports: ${imported.join(', ')}`);
    assert.deepEqual(imported.filter((s) => !(packageOf(s) in pkg.dependencies)), [], 'every import is of a package in "dependencies"');
    const resolved = await resolveFrom(app, imported);
    const inApp = new URL(`file://${path.join(app, 'node_modules')}/`).href;
    assert.deepEqual(
      Object.entries(resolved).filter(([, where]) => !where.startsWith(inApp)),
      [],
      'every import resolves inside the production node_modules',
    );
  });

  it('starts from dist/main.js, answers /readyz and makes a WorkloadIdentity Ready', async () => {
    const kc = kubeConfig();
    const aws = await startAwsEmulator();
    const account = `shipped-${randomBytes(3).toString('hex')}`;
    const [ns, dropNamespace] = await freshNamespace(kc, 'shipped');
    let operator: Awaited<ReturnType<typeof spawnOperator>> | undefined;
    try {
      const kubeconfig = await installOperator(kc, 'shipped-build');
      const issuer = await clusterIssuer(kc);
      await createOidcProvider(aws.iam(), issuer);
      const logFile = repoPath('.test/operator/shipped-build.log');
      mkdirSync(path.dirname(logFile), { recursive: true });
      operator = await spawnOperator({
        kubeconfig,
        entry: path.join(app, 'dist/main.js'),
        env: { ...awsEnv(aws.endpoint), NODE_ENV: 'production', KEYLESS_CLUSTER_NAME: 'shipped-build' },
        logFile,
        syncTimeoutMs: 60_000,
      });
      const { port } = operator;
      await eventually('/readyz to answer 200', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined));

      await kubectlApply(
        { apiVersion: 'keyless.dev/v1alpha1', kind: 'CloudAccount', metadata: { name: account }, spec: { aws: { accountId: TEST_ACCOUNT_ID, region: 'us-east-1', oidcIssuer: issuer } } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'catalog-sa', namespace: ns } },
        {
          apiVersion: 'keyless.dev/v1alpha1',
          kind: 'WorkloadIdentity',
          metadata: { name: 'catalog', namespace: ns },
          spec: { serviceAccountName: 'catalog-sa', cloudAccountRef: { name: account }, aws: { policy: [{ effect: 'Allow', actions: ['s3:GetObject'], resources: ['arn:aws:s3:::your-org-book-covers/*'] }] } },
        },
      );
      await kubectl(['wait', '--for=condition=Ready', '--timeout=90s', '-n', ns, 'workloadidentity/catalog']);
      const { stdout } = await kubectl(['get', 'serviceaccount', 'catalog-sa', '-n', ns, '-o', 'jsonpath={.metadata.annotations.eks\\.amazonaws\\.com/role-arn}']);
      assert.match(stdout, new RegExp(`^arn:aws:iam::${TEST_ACCOUNT_ID}:role/`));
    } finally {
      // The namespace first, while the operator runs, so the WorkloadIdentity's finalizer revokes the role.
      await dropNamespace();
      await kubectl(['delete', 'cloudaccount', account, '--ignore-not-found']);
      if (operator) {
        operator.child.kill('SIGTERM');
        await operator.exited;
      }
      await aws.stop();
    }
  });
});
