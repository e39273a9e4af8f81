// An in-memory GcpExchangePort over FakeGcp: Security Token Service accepts a token for the identity namespace of its
// audience (the pool), and impersonation needs roles/iam.workloadIdentityUser for serviceAccount:POOL[NS/SA] on the
// Google service account, as the metadata server's exchange does.
import { CloudError } from '../../cloud-error.ts';
import { claimsOf } from '../../fake/token.ts';
import type { GcpExchangePort } from '../exchange-port.ts';
import type { FakeGcp } from './gcp.ts';

export class FakeGcpExchange implements GcpExchangePort {
  readonly #gcp: FakeGcp;

  constructor(gcp: FakeGcp) {
    this.#gcp = gcp;
  }

  async exchange(input: { audience: string; token: string; impersonate?: string }): Promise<void> {
    const { aud, sub, iss } = claimsOf(input.token);
    const [, pool] = input.audience.split(':');
    if (input.audience !== `identitynamespace:${aud}:${iss}` || pool !== aud) {
      throw new CloudError('terminal', 'invalid_grant', 'ExchangeToken', `The audience in ID Token [${aud}] does not match the expected audience.`);
    }
    if (!input.impersonate) return;
    const [, , namespace = '', serviceAccount = ''] = sub.split(':');
    const member = `serviceAccount:${aud}[${namespace}/${serviceAccount}]`;
    const project = input.impersonate.split('@')[1]?.split('.')[0] ?? '';
    const policy = this.#gcp.policy({ kind: 'serviceAccount', project, email: input.impersonate });
    if (!(policy.bindings ?? []).some((b) => b.role === 'roles/iam.workloadIdentityUser' && b.members.includes(member))) {
      throw new CloudError('terminal', 'PERMISSION_DENIED', 'ExchangeToken', "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    }
  }
}
