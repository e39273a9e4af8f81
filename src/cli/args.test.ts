import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseArgs, UsageError, type Args } from './args.ts';

const base: Args = { command: 'help', allNamespaces: false, wide: false };

describe('parseArgs', () => {
  const parsed: [string, string[], Partial<Args>][] = [
    ['no arguments is help', [], {}],
    ['-h anywhere is help', ['status', '-h'], {}],
    ['status in the context namespace', ['status'], { command: 'status' }],
    ['-n NS', ['status', '-n', 'bookstore'], { command: 'status', namespace: 'bookstore' }],
    ['-nNS, as kubectl accepts it', ['status', '-nbookstore'], { command: 'status', namespace: 'bookstore' }],
    ['--namespace=NS', ['status', '--namespace=bookstore'], { command: 'status', namespace: 'bookstore' }],
    ['-A', ['status', '-A'], { command: 'status', allNamespaces: true }],
    ['-o wide', ['status', '-o', 'wide'], { command: 'status', wide: true }],
    ['flags before the command', ['-n', 'bookstore', 'explain', 'deploy/catalog'], { command: 'explain', namespace: 'bookstore', target: 'deploy/catalog' }],
    ['the connection flags kubectl would have taken', ['migrate', '--kubeconfig', '/k', '--context=prod', '-A'], { command: 'migrate', kubeconfig: '/k', context: 'prod', allNamespaces: true }],
    ['--cloud-account', ['migrate', '--cloud-account', 'prod-aws'], { command: 'migrate', cloudAccount: 'prod-aws' }],
  ];
  for (const [why, argv, expected] of parsed) it(why, () => assert.deepEqual(parseArgs(argv), { ...base, ...expected }));

  const refused: [string, string[], RegExp][] = [
    ['an unknown command', ['describe'], /unknown command "describe"/],
    ['an unknown flag', ['status', '--bogus'], /unknown flag --bogus/],
    ['-n and -A together', ['status', '-A', '-n', 'x'], /either -n NAMESPACE or -A/],
    ['explain without a target', ['explain'], /explain takes one workload/],
    ['explain across namespaces', ['explain', 'pod/x', '-A'], /one namespace/],
    ['a flag without its value', ['status', '-n'], /-n needs a value/],
    ['--cloud-account outside migrate', ['status', '--cloud-account', 'a'], /migrate flag/],
    ['another output format', ['status', '-o', 'yaml'], /only -o wide/],
    ['arguments to status', ['status', 'extra'], /takes no arguments/],
  ];
  for (const [why, argv, message] of refused) it(`refuses ${why}`, () => assert.throws(() => parseArgs(argv), (err: unknown) => err instanceof UsageError && message.test(err.message)));
});
