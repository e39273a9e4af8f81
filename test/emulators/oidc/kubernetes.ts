// The local control plane as an OIDC issuer: its issuer from /.well-known/openid-configuration and its keys from
// /openid/v1/jwks, both read with the kubeconfig's credentials (the apiserver does not serve them anonymously).
import { KubeConfig } from '@kubernetes/client-node';
import { clusterIssuer, rawGet } from '../../support/cluster.ts';
import type { IssuerSource } from './issuers.ts';
import type { Jwks } from './jwt.ts';

export async function kubernetesIssuer(kubeconfig: KubeConfig | string): Promise<IssuerSource> {
  let kc = kubeconfig;
  if (typeof kc === 'string') {
    kc = new KubeConfig();
    kc.loadFromFile(kubeconfig as string);
  }
  const config = kc;
  const issuer = await clusterIssuer(config);
  return {
    issuer,
    jwks: async () => {
      const { status, body } = await rawGet(config, '/openid/v1/jwks');
      if (status !== 200) throw new Error(`GET /openid/v1/jwks answered ${status}`);
      return JSON.parse(body) as Jwks;
    },
  };
}
