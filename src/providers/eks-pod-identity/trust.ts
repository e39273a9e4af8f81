// The Pod Identity trust statement. EKS Auth assumes the role as the service principal pods.eks.amazonaws.com and
// tags the session with the pod's namespace, ServiceAccount and cluster; without conditions on those tags any
// association in the account could use the role
// (https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html). The tags exist only while the association
// keeps session tags enabled, which is why Keyless never sets disableSessionTags or a session policy.
import type { IamStatement } from '../aws/policy-document.ts';

export const POD_IDENTITY_SID = 'KeylessPodIdentity';
export const POD_IDENTITY_PRINCIPAL = 'pods.eks.amazonaws.com';

export function podIdentityTrustStatement(clusterArn: string, namespace: string, serviceAccount: string): IamStatement {
  return {
    Sid: POD_IDENTITY_SID,
    Effect: 'Allow',
    Principal: { Service: POD_IDENTITY_PRINCIPAL },
    Action: ['sts:AssumeRole', 'sts:TagSession'],
    Condition: {
      StringEquals: {
        'aws:RequestTag/kubernetes-namespace': namespace,
        'aws:RequestTag/kubernetes-service-account': serviceAccount,
        'aws:RequestTag/eks-cluster-arn': clusterArn,
      },
    },
  };
}
