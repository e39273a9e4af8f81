// `kubectl keyless ...` as a person runs it: the control plane's own kubectl (bin/kubectl), which finds the plugin
// on PATH (plugins/kubectl-keyless) and hands it its arguments and environment. kubectl refuses flags before a
// plugin's name, so the cluster comes from KUBECONFIG.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kubeconfigPath, repoPath } from './cluster.ts';

export interface PluginResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A HOME of its own, so no ~/.aws, ~/.azure or gcloud credentials of the machine take part. */
const home = mkdtempSync(path.join(os.tmpdir(), 'kubectl-keyless-home-'));
process.once('exit', () => rmSync(home, { recursive: true, force: true }));

/** Runs `kubectl keyless ARGS` with `env` (cloud endpoints and credentials) on top of PATH, KUBECONFIG and HOME. */
export function kubectlKeyless(args: string[], env: Record<string, string> = {}): Promise<PluginResult> {
  return new Promise((resolve, reject) => {
    execFile(
      repoPath('bin/kubectl'),
      ['keyless', ...args],
      {
        env: {
          // The plugin directory, and this Node for the launcher's `#!/usr/bin/env node`.
          PATH: [repoPath('plugins'), path.dirname(process.execPath), process.env['PATH'] ?? ''].join(path.delimiter),
          KUBECONFIG: kubeconfigPath(),
          HOME: home,
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...env,
        },
        timeout: 180_000,
        maxBuffer: 16 << 20,
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(new Error(`kubectl keyless ${args.join(' ')}: ${err.message}`, { cause: err }));
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}

/** The rows of an aligned table as kubectl prints it, keyed by header; columns are cut where the header line puts them. */
export function parseTable(text: string): Record<string, string>[] {
  const [header = '', ...lines] = text.split('\n').filter((l) => l.trim() !== '');
  const starts = [...header.matchAll(/\S+/g)].map((m) => m.index);
  const names = [...header.matchAll(/\S+/g)].map((m) => m[0]);
  return lines.map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim()])));
}
