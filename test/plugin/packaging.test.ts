// How kubectl, npm and krew find the plugin: package.json's `bin`, the krew manifest's `bin`, and the launcher they
// both name, which runs from a checkout as it does from an installed package.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { load } from 'js-yaml';
import { repoPath } from '../support/cluster.ts';

const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
const krew = load(readFileSync(repoPath('plugins/krew/keyless.yaml'), 'utf8')) as { metadata: { name: string }; spec: { platforms: { bin: string; files: { from: string; to: string }[] }[] } };

describe('packaging of kubectl-keyless', () => {
  it('npm installs the executable kubectl looks for, and ships it with the compiled code it runs', () => {
    assert.deepEqual(pkg.bin, { 'kubectl-keyless': 'plugins/kubectl-keyless' });
    accessSync(repoPath('plugins/kubectl-keyless'), constants.X_OK);
    assert.match(readFileSync(repoPath('plugins/kubectl-keyless'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    for (const shipped of ['plugins/kubectl-keyless', 'dist/']) assert.ok(pkg.files.includes(shipped), `package.json files lists ${shipped}`);
  });

  it('krew installs the same launcher, as `kubectl keyless`', () => {
    assert.equal(krew.metadata.name, 'keyless');
    for (const platform of krew.spec.platforms) {
      assert.equal(platform.bin, pkg.bin['kubectl-keyless']);
      assert.deepEqual(platform.files, [{ from: 'package/*', to: '.' }], 'npm pack puts everything under package/');
    }
  });

  it('runs from a checkout with this Node', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [repoPath('plugins/kubectl-keyless'), '--help']);
    assert.match(stdout, /^kubectl keyless: /);
  });
});
