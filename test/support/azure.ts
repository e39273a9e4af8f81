// The Azure side of the tests: the in-project ARM emulator (test/emulators/azure) served over HTTPS with a CA made
// for the run, and the real SDK clients that trust it — for the tests' own reads and for "someone else" writing.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthorizationManagementClient, type RoleAssignment } from '@azure/arm-authorization';
import { ManagedServiceIdentityClient } from '@azure/arm-msi';
import type { TokenCredential } from '@azure/core-auth';
import { startAzureEmulator, type AzureEmulator } from '../emulators/azure/server.ts';
import type { EmulatorConfig } from '../emulators/azure/arm.ts';
import { emulatorTls } from '../emulators/azure/tls.ts';
import type { IssuerSource } from '../emulators/oidc/issuers.ts';

export const TEST_SUBSCRIPTION = '00000000-0000-0000-0000-0000000000a1';
export const TEST_TENANT = '00000000-0000-0000-0000-0000000000b2';
export const TEST_RESOURCE_GROUP = 'keyless-identities';
export const DATA_RESOURCE_GROUP = 'bookstore-data';
/** A second subscription of the same tenant, with a resource group, for assignments outside the account's own. */
export const OTHER_SUBSCRIPTION = '00000000-0000-0000-0000-0000000000c3';
export const OTHER_RESOURCE_GROUP = 'partner-data';

export interface TestAzure {
  emulator: AzureEmulator;
  /** PEM the operator child trusts through NODE_EXTRA_CA_CERTS. */
  caFile: string;
  ca: string;
  msi(): ManagedServiceIdentityClient;
  authorization(): AuthorizationManagementClient;
  /** The authorization client of another subscription, such as OTHER_SUBSCRIPTION. */
  authorizationIn(subscriptionId: string): AuthorizationManagementClient;
  /** Every role assignment of a principal in a subscription (TEST_SUBSCRIPTION by default), read with its own client. */
  assignmentsOf(principalId: string, subscriptionId?: string): Promise<RoleAssignment[]>;
  stop(): Promise<void>;
}

const credential: TokenCredential = { getToken: () => Promise.resolve({ token: 'test', expiresOnTimestamp: Date.now() + 3_600_000 }) };

/** `issuers`: the OIDC issuers whose tokens Entra accepts as federated credentials (AZURE_AUTHORITY_HOST = endpoint). */
export async function startTestAzure(config: Partial<EmulatorConfig> = {}, issuers: IssuerSource[] = []): Promise<TestAzure> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyless-azure-'));
  const tls = emulatorTls(dir);
  const emulator = await startAzureEmulator({
    tls,
    tenantId: TEST_TENANT,
    resourceGroups: [
      { subscriptionId: TEST_SUBSCRIPTION, name: TEST_RESOURCE_GROUP },
      { subscriptionId: TEST_SUBSCRIPTION, name: DATA_RESOURCE_GROUP },
      { subscriptionId: OTHER_SUBSCRIPTION, name: OTHER_RESOURCE_GROUP },
    ],
    config,
    issuers,
  });
  const options = { endpoint: emulator.endpoint, tlsOptions: { ca: tls.ca }, retryOptions: { maxRetries: 0 } };
  return {
    emulator,
    caFile: tls.caFile,
    ca: tls.ca,
    msi: () => new ManagedServiceIdentityClient(credential, TEST_SUBSCRIPTION, options),
    authorization: () => new AuthorizationManagementClient(credential, TEST_SUBSCRIPTION, options),
    authorizationIn: (subscriptionId) => new AuthorizationManagementClient(credential, subscriptionId, options),
    assignmentsOf: async (principalId, subscriptionId = TEST_SUBSCRIPTION) => {
      const list: RoleAssignment[] = [];
      const client = new AuthorizationManagementClient(credential, subscriptionId, options);
      for await (const a of client.roleAssignments.listForScope(`subscriptions/${subscriptionId}`, { filter: `principalId eq '${principalId}'` })) list.push(a);
      return list;
    },
    stop: async () => {
      await emulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
