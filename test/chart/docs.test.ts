// docs/install.md's values table and the comments of charts/keyless/values.yaml against the code: every value of the
// chart is in the table, and the operator defaults both state are the ones the operator applies when a value is left
// empty (the chart then sets nothing).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config.ts';
import { loadAzureConfig } from '../../src/providers/aks-workload-identity/config.ts';
import { repoPath } from '../support/cluster.ts';
import { valuePaths } from '../support/helm.ts';

const config = loadConfig({}, 'host');
const azure = loadAzureConfig({});
const seconds = (ms: number) => String(ms / 1000);
/** What the operator applies when the variable is not set. */
const OPERATOR_DEFAULTS: Record<string, string> = {
  KEYLESS_LEADER_ELECTION: String(config.leaderElection.enabled),
  KEYLESS_LOG_LEVEL: config.logLevel,
  KEYLESS_WORKERS: String(config.workers),
  KEYLESS_RESYNC_SECONDS: seconds(config.resyncMs),
  KEYLESS_CLOUD_WRITES_PER_SECOND: String(config.cloudBudget.writesPerSecond),
  KEYLESS_CLOUD_WRITE_BURST: String(config.cloudBudget.writeBurst),
  KEYLESS_CLOUD_READS_PER_SECOND: String(config.cloudBudget.readsPerSecond),
  KEYLESS_CLOUD_CALL_TIMEOUT_SECONDS: seconds(config.cloudCallTimeoutMs),
  KEYLESS_RECONCILE_TIMEOUT_SECONDS: seconds(config.reconcileTimeoutMs),
  KEYLESS_VERIFY_GRACE_SECONDS: seconds(config.verificationGraceMs),
  KEYLESS_AWS_MAX_ATTEMPTS: String(config.awsMaxAttempts),
  KEYLESS_AZURE_ENDPOINT: azure.endpoint,
  KEYLESS_AZURE_AUTHORITY_HOST: azure.authorityHost,
  KEYLESS_AZURE_CREDENTIAL: azure.credential,
  KEYLESS_AZURE_MAX_RETRIES: String(azure.maxRetries),
};

interface Row {
  values: string[];
  variable: string;
  operatorDefault: string;
}

/** The rows of the table under "## Values", each value spelt out (`.eks` after `aws.endpoints.iam` is `aws.endpoints.eks`). */
function valuesTable(): Row[] {
  const doc = readFileSync(repoPath('docs/install.md'), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Values\n'), doc.indexOf('\n## ', doc.indexOf('\n## Values\n') + 1));
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  assert.ok(rows.length > 20, 'docs/install.md has the values table');
  return rows.map((line) => {
    const [values = '', variable = '', operatorDefault = ''] = line.split('|').slice(1).map((cell) => cell.trim());
    let parent = '';
    const names = [...values.matchAll(/`([^`]+)`/g)].map(([, name = '']) => {
      if (!name.startsWith('.')) {
        parent = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : '';
        return name;
      }
      return parent + name;
    });
    return { values: names, variable: variable.replace(/`/g, ''), operatorDefault: operatorDefault.replace(/`/g, '') };
  });
}

describe('docs/install.md and values.yaml against the code', () => {
  it('the values table lists every value of the chart', () => {
    const documented = valuesTable().flatMap((r) => r.values);
    const values = parse(readFileSync(repoPath('charts/keyless/values.yaml'), 'utf8')) as unknown;
    assert.deepEqual(
      valuePaths(values).filter((leaf) => !documented.some((d) => leaf === d || leaf.startsWith(`${d}.`))),
      [],
    );
  });

  it('the values table gives each setting the default the operator applies', () => {
    const rows = new Map(valuesTable().map((r) => [r.variable, r.operatorDefault]));
    assert.deepEqual(
      Object.entries(OPERATOR_DEFAULTS).filter(([variable, value]) => rows.get(variable) !== value).map(([variable, value]) => `${variable}: the table says ${rows.get(variable)}, the operator ${value}`),
      [],
    );
  });

  it('the comments of values.yaml give the defaults the operator applies', () => {
    const lines = readFileSync(repoPath('charts/keyless/values.yaml'), 'utf8').split('\n');
    // These two are explained in words there: leader election is a boolean value, the credential names its choices.
    const stated = Object.entries(OPERATOR_DEFAULTS).filter(([variable]) => variable !== 'KEYLESS_LEADER_ELECTION' && variable !== 'KEYLESS_AZURE_CREDENTIAL');
    assert.deepEqual(
      stated.filter(([variable, value]) => !lines.some((l) => l.includes(`# ${variable}`) && l.includes(`(default ${value})`))).map(([variable, value]) => `${variable} (default ${value})`),
      [],
    );
  });
});
