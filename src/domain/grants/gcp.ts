// GCP: a predefined role granted on a resource whose IAM policy does not take that service's roles grants nothing
// (a Cloud Storage role on a Pub/Sub topic). A resource's policy takes the roles of its own service; a project's takes
// every role. Custom roles are not judged.
import type { GcpWorkloadIdentitySpec } from '../../api/types.ts';
import type { Ineffective } from './types.ts';

/** Resource prefix → the role service whose roles its IAM policy takes (IAM "Roles and permissions" by resource). */
const RESOURCE_SERVICES: { prefix: string; service: string; what: string }[] = [
  { prefix: '//storage.googleapis.com/', service: 'storage', what: 'a bucket' },
  { prefix: '//pubsub.googleapis.com/', service: 'pubsub', what: 'a Pub/Sub topic' },
  { prefix: '//secretmanager.googleapis.com/', service: 'secretmanager', what: 'a secret' },
];

export function ineffectiveGcp(spec: GcpWorkloadIdentitySpec): Ineffective[] {
  const found: Ineffective[] = [];
  for (const [i, grant] of (spec.roles ?? []).entries()) {
    const on = RESOURCE_SERVICES.find((r) => grant.resource?.startsWith(r.prefix));
    const service = /^roles\/([a-z0-9]+)\./.exec(grant.role)?.[1];
    if (!on || !service || service === on.service) continue;
    found.push({
      field: `spec.gcp.roles[${i}].role`,
      entry: grant.role,
      why: `grants nothing on ${grant.resource ?? ''}: ${on.what}'s IAM policy takes only roles/${on.service}.* roles; grant ${grant.role} on a ${service} resource or the project`,
    });
  }
  return found;
}
