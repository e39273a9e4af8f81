// An in-memory ExchangePort over FakeIam and FakeEks: STS and EKS Auth answer as the clouds do for the trust Keyless
// writes — an issuer needs an IAM OIDC provider, the IRSA statement must name the token's sub and aud, a Pod Identity
// token needs an association for its namespace and ServiceAccount whose role trusts pods.eks.amazonaws.com.
import { CloudError } from '../../cloud-error.ts';
import { claimsOf } from '../../fake/token.ts';
import type { ExchangePort } from '../exchange-port.ts';
import type { FakeEks } from './eks.ts';
import type { FakeIam } from './iam.ts';

interface Statement {
  Principal?: { Federated?: string; Service?: string };
  Condition?: Record<string, Record<string, string>>;
}

export class FakeExchange implements ExchangePort {
  readonly #iam: FakeIam;
  readonly #eks: FakeEks;

  constructor(iam: FakeIam, eks: FakeEks) {
    this.#iam = iam;
    this.#eks = eks;
  }

  #statements(roleName: string): Statement[] {
    const role = this.#iam.roles.get(roleName.toLowerCase());
    if (!role) throw new CloudError('terminal', 'AccessDenied', 'AssumeRole', `Role ${roleName} does not exist`);
    return ((role.trustPolicy as { Statement?: Statement[] } | undefined)?.Statement ?? []);
  }

  async assumeRoleWithWebIdentity(roleArn: string, token: string): Promise<string> {
    const { iss, sub, aud } = claimsOf(token);
    const host = iss.replace(/^https:\/\//, '');
    const provider = `arn:aws:iam::${this.#iam.accountId}:oidc-provider/${host}`;
    if (!this.#iam.oidcProviders.includes(provider)) {
      throw new CloudError('terminal', 'InvalidIdentityToken', 'AssumeRoleWithWebIdentity', `No OpenIDConnect provider found in your account for ${iss}`);
    }
    const name = roleArn.split('/').pop() ?? '';
    const trusted = this.#statements(name).some((s) => s.Principal?.Federated === provider && s.Condition?.['StringEquals']?.[`${host}:sub`] === sub && s.Condition['StringEquals'][`${host}:aud`] === aud);
    if (!trusted) throw new CloudError('terminal', 'AccessDenied', 'AssumeRoleWithWebIdentity', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    return `arn:aws:sts::${this.#iam.accountId}:assumed-role/${name}/keyless-verification`;
  }

  async assumeRoleForPodIdentity(clusterName: string, token: string): Promise<string> {
    const { sub, aud } = claimsOf(token);
    const [, , namespace = '', serviceAccount = ''] = sub.split(':');
    if (aud !== 'pods.eks.amazonaws.com') throw new CloudError('terminal', 'InvalidToken', 'AssumeRoleForPodIdentity', `Invalid audience ${aud}`);
    const [id] = await this.#eks.findAssociations(clusterName, namespace, serviceAccount);
    const association = id ? await this.#eks.describeAssociation(clusterName, id) : undefined;
    if (!association) throw new CloudError('notFound', 'ResourceNotFound', 'AssumeRoleForPodIdentity', `No Pod Identity Association found for ${namespace}/${serviceAccount}`);
    const name = association.roleArn.split('/').pop() ?? '';
    if (!this.#statements(name).some((s) => s.Principal?.Service === 'pods.eks.amazonaws.com')) {
      throw new CloudError('terminal', 'AccessDenied', 'AssumeRoleForPodIdentity', `Role ${association.roleArn} does not trust pods.eks.amazonaws.com`);
    }
    return `arn:aws:sts::${this.#iam.accountId}:assumed-role/${name}/eks-${clusterName}`;
  }
}
