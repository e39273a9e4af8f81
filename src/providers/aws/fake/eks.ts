// An in-memory EksPort for unit tests: one association per (cluster, namespace, ServiceAccount), ResourceInUse on
// a duplicate, and deletes that can be made to lag (EKS deletes are eventually consistent).
import { CloudError } from '../../cloud-error.ts';
import type { Association, CreateAssociationInput, EksPort } from '../eks-port.ts';

export class FakeEks implements EksPort {
  readonly associations = new Map<string, Association>();
  readonly writes: string[] = [];
  issuers: Record<string, string> = {};
  /** How many Describe calls still see an association after it was deleted. */
  deleteLag = 0;
  #lagging = new Map<string, { association: Association; reads: number }>();
  #next = 0;

  async clusterIssuer(clusterName: string): Promise<string | undefined> {
    return this.issuers[clusterName];
  }

  async findAssociations(clusterName: string, namespace: string, serviceAccount: string): Promise<string[]> {
    return [...this.associations.values()]
      .filter((a) => a.clusterName === clusterName && a.namespace === namespace && a.serviceAccount === serviceAccount)
      .map((a) => a.associationId);
  }

  async describeAssociation(_clusterName: string, associationId: string): Promise<Association | undefined> {
    const lagging = this.#lagging.get(associationId);
    if (lagging && lagging.reads-- > 0) return lagging.association;
    const a = this.associations.get(associationId);
    return a ? { ...a, tags: { ...a.tags } } : undefined;
  }

  /** Test helper: an association someone else made. */
  seed(a: Omit<Association, 'associationId' | 'associationArn'>): Association {
    const associationId = `a-${String(this.#next++).padStart(17, '0')}`;
    const association = { ...a, associationId, associationArn: `arn:aws:eks:us-east-1:123456789012:podidentityassociation/${a.clusterName}/${associationId}` };
    this.associations.set(associationId, association);
    return association;
  }

  async createAssociation(input: CreateAssociationInput): Promise<Association> {
    const [existing] = await this.findAssociations(input.clusterName, input.namespace, input.serviceAccount);
    if (existing) throw new CloudError('alreadyExists', 'ResourceInUse', 'CreatePodIdentityAssociation', `Association already exists: ${existing}`);
    this.writes.push(`CreatePodIdentityAssociation:${input.namespace}/${input.serviceAccount}`);
    return this.seed({ clusterName: input.clusterName, namespace: input.namespace, serviceAccount: input.serviceAccount, roleArn: input.roleArn, tags: { ...input.tags } });
  }

  async updateAssociationRole(_clusterName: string, associationId: string, roleArn: string): Promise<Association> {
    const a = this.associations.get(associationId);
    if (!a) throw new CloudError('notFound', 'ResourceNotFound', 'UpdatePodIdentityAssociation', 'not found');
    this.writes.push(`UpdatePodIdentityAssociation:${associationId}`);
    a.roleArn = roleArn;
    return { ...a };
  }

  async deleteAssociation(_clusterName: string, associationId: string): Promise<void> {
    const a = this.associations.get(associationId);
    if (!a) return;
    this.writes.push(`DeletePodIdentityAssociation:${associationId}`);
    this.associations.delete(associationId);
    if (this.deleteLag) this.#lagging.set(associationId, { association: a, reads: this.deleteLag });
  }
}
