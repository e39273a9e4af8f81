import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloudError } from '../cloud-error.ts';
import { checkAzureAccount } from './account-check.ts';
import { FakeArm } from './fake/arm.ts';
import { AZURE_ISSUER, azureContext } from './fake/context.ts';
import { shareArmReads } from './shared-port.ts';

const account = azureContext().account;
/** The account's identity list as the providers share it, kept for no time at all. */
const msiOf = (arm: FakeArm) => shareArmReads(arm, arm, { maxAgeMs: 0 }).msi;

describe('checkAzureAccount', () => {
  it('is ready with the issuer from the spec when the resource group is readable', async () => {
    const verdict = await checkAzureAccount(msiOf(new FakeArm()), account);
    assert.equal(verdict.ok, true);
    assert.equal(verdict.issuer, AZURE_ISSUER);
  });

  it('says how to create a missing resource group', async () => {
    const arm = new FakeArm();
    arm.failNext('listIdentities', new CloudError('terminal', 'ResourceGroupNotFound', 'UserAssignedIdentities_ListByResourceGroup', "Resource group 'identities' could not be found."));
    const verdict = await checkAzureAccount(msiOf(arm), account);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.reason, 'ResourceGroupNotFound');
    assert.match(verdict.message, /az group create --subscription 00000000-0000-0000-0000-000000000001 --name identities --location eastus/);
  });

  it('names the roles the operator lacks when ARM refuses it', async () => {
    const arm = new FakeArm();
    arm.failNext('listIdentities', new CloudError('terminal', 'AuthorizationFailed', 'UserAssignedIdentities_ListByResourceGroup', 'no'));
    const verdict = await checkAzureAccount(msiOf(arm), account);
    assert.equal(verdict.reason, 'CloudRejected');
    assert.match(verdict.message, /Managed Identity Contributor/);
  });

  it('lets transient failures through for a retry with backoff', async () => {
    const arm = new FakeArm();
    arm.failNext('listIdentities', new CloudError('throttled', 'TooManyRequests', 'UserAssignedIdentities_ListByResourceGroup', 'slow down'));
    await assert.rejects(checkAzureAccount(msiOf(arm), account), (err: unknown) => err instanceof CloudError && err.kind === 'throttled');
  });
});
