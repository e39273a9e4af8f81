// The slice of EKS Keyless uses: the cluster's OIDC issuer (DescribeCluster) and Pod Identity associations
// (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreatePodIdentityAssociation.html).
import {
  CreatePodIdentityAssociationCommand,
  DeletePodIdentityAssociationCommand,
  DescribeClusterCommand,
  DescribePodIdentityAssociationCommand,
  ListPodIdentityAssociationsCommand,
  UpdatePodIdentityAssociationCommand,
  type EKSClient,
  type PodIdentityAssociation,
} from '@aws-sdk/client-eks';
import { orUndefined } from '../cloud-error.ts';
import type { CloudCall } from '../instrument.ts';

export interface Association {
  associationId: string;
  associationArn: string;
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  tags: Record<string, string>;
  /** Set when an EKS add-on owns the association; Keyless never touches those. */
  ownerArn?: string;
}

export interface CreateAssociationInput {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  /** Idempotency token: a retried create with the same token returns the same association. */
  clientRequestToken: string;
  tags: Record<string, string>;
}

export interface EksPort {
  /** The cluster's OIDC issuer URL; undefined when the cluster does not exist or has none. */
  clusterIssuer(clusterName: string): Promise<string | undefined>;
  /** Ids of the associations for one namespace/ServiceAccount (at most one exists per pair). */
  findAssociations(clusterName: string, namespace: string, serviceAccount: string): Promise<string[]>;
  describeAssociation(clusterName: string, associationId: string): Promise<Association | undefined>;
  createAssociation(input: CreateAssociationInput): Promise<Association>;
  updateAssociationRole(clusterName: string, associationId: string, roleArn: string, clientRequestToken: string): Promise<Association>;
  deleteAssociation(clusterName: string, associationId: string): Promise<void>;
}

function toAssociation(a: PodIdentityAssociation | undefined): Association {
  if (!a?.associationId) throw new Error('EKS returned no association');
  return {
    associationId: a.associationId,
    associationArn: a.associationArn ?? '',
    clusterName: a.clusterName ?? '',
    namespace: a.namespace ?? '',
    serviceAccount: a.serviceAccount ?? '',
    roleArn: a.roleArn ?? '',
    tags: { ...(a.tags ?? {}) },
    ...(a.ownerArn ? { ownerArn: a.ownerArn } : {}),
  };
}

export function createEksPort(client: EKSClient, call: CloudCall): EksPort {
  const send = client.send.bind(client);
  return {
    async clusterIssuer(clusterName) {
      const out = await orUndefined(call('DescribeCluster', (abortSignal) => send(new DescribeClusterCommand({ name: clusterName }), { abortSignal })));
      return out?.cluster?.identity?.oidc?.issuer;
    },
    async findAssociations(clusterName, namespace, serviceAccount) {
      const ids: string[] = [];
      let nextToken: string | undefined;
      do {
        const out = await call('ListPodIdentityAssociations', (abortSignal) =>
          send(new ListPodIdentityAssociationsCommand({ clusterName, namespace, serviceAccount, nextToken }), { abortSignal }),
        );
        ids.push(...(out.associations ?? []).map((a) => a.associationId ?? '').filter(Boolean));
        nextToken = out.nextToken;
      } while (nextToken);
      return ids;
    },
    async describeAssociation(clusterName, associationId) {
      const out = await orUndefined(call('DescribePodIdentityAssociation', (abortSignal) => send(new DescribePodIdentityAssociationCommand({ clusterName, associationId }), { abortSignal })));
      return out ? toAssociation(out.association) : undefined;
    },
    async createAssociation(input) {
      const out = await call('CreatePodIdentityAssociation', (abortSignal) =>
        send(
          new CreatePodIdentityAssociationCommand({
            clusterName: input.clusterName,
            namespace: input.namespace,
            serviceAccount: input.serviceAccount,
            roleArn: input.roleArn,
            clientRequestToken: input.clientRequestToken,
            tags: input.tags,
          }),
          { abortSignal },
        ),
      );
      return toAssociation(out.association);
    },
    async updateAssociationRole(clusterName, associationId, roleArn, clientRequestToken) {
      const out = await call('UpdatePodIdentityAssociation', (abortSignal) =>
        send(new UpdatePodIdentityAssociationCommand({ clusterName, associationId, roleArn, clientRequestToken }), { abortSignal }),
      );
      return toAssociation(out.association);
    },
    async deleteAssociation(clusterName, associationId) {
      await orUndefined(call('DeletePodIdentityAssociation', (abortSignal) => send(new DeletePodIdentityAssociationCommand({ clusterName, associationId }), { abortSignal })));
    },
  };
}
