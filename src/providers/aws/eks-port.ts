// The slice of EKS the CloudAccount reconcile uses: the cluster's OIDC issuer (DescribeCluster).
import { DescribeClusterCommand, type EKSClient } from '@aws-sdk/client-eks';
import { isCloudError } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';

export interface EksPort {
  /** The cluster's OIDC issuer URL; undefined when the cluster does not exist or has none. */
  clusterIssuer(clusterName: string): Promise<string | undefined>;
}

export function createEksPort(client: EKSClient, call: CloudCall): EksPort {
  return {
    async clusterIssuer(clusterName) {
      try {
        const out = await call('DescribeCluster', () => client.send(new DescribeClusterCommand({ name: clusterName })));
        return out.cluster?.identity?.oidc?.issuer;
      } catch (err) {
        if (isCloudError(err, 'notFound')) return undefined;
        throw err;
      }
    },
  };
}
