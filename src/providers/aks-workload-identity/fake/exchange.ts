// An in-memory AzureExchangePort over FakeArm: Entra issues a token only when a federated credential of the managed
// identity with that client ID names the assertion's issuer, subject and audience exactly.
import { CloudError } from '../../cloud-error.ts';
import { claimsOf } from '../../fake/token.ts';
import type { AzureExchangePort } from '../exchange-port.ts';
import type { FakeArm } from './arm.ts';

export class FakeAzureExchange implements AzureExchangePort {
  readonly #arm: FakeArm;

  constructor(arm: FakeArm) {
    this.#arm = arm;
  }

  async exchange(input: { tenantId: string; clientId: string; token: string }): Promise<void> {
    const { iss, sub, aud } = claimsOf(input.token);
    const identity = [...this.#arm.identities.values()].find((i) => i.clientId === input.clientId);
    if (!identity) throw new CloudError('terminal', 'AADSTS700016', 'ExchangeToken', `AADSTS700016: Application with identifier '${input.clientId}' was not found.`);
    const credentials = [...identity.credentials.values()];
    if (!credentials.some((c) => c.issuer === iss)) {
      throw new CloudError('terminal', 'AADSTS700211', 'ExchangeToken', `AADSTS700211: No matching federated identity record found for presented assertion issuer '${iss}'.`);
    }
    if (!credentials.some((c) => c.issuer === iss && c.subject === sub)) {
      throw new CloudError('terminal', 'AADSTS700213', 'ExchangeToken', `AADSTS700213: No matching federated identity record found for presented assertion subject '${sub}'.`);
    }
    if (!credentials.some((c) => c.issuer === iss && c.subject === sub && c.audiences.includes(aud))) {
      throw new CloudError('terminal', 'AADSTS700212', 'ExchangeToken', `AADSTS700212: No matching federated identity record found for presented assertion audience '${aud}'.`);
    }
  }
}
