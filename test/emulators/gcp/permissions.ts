// What a token may do on a resource, for the GCP emulator's testIamPermissions routes: the data-plane side of IAM,
// enough to show that a federated principal's token is usable exactly where a binding names it (or a principalSet it
// belongs to) and nowhere else. Only unconditional bindings count (the emulator has no request context to evaluate a
// condition against), and only the permissions of the roles listed here; a role it does not know grants nothing.

/** A few predefined roles and the permissions of theirs the tests ask about (from the IAM roles reference). */
export const ROLE_PERMISSIONS: Record<string, string[]> = {
  'roles/storage.objectViewer': ['storage.objects.get', 'storage.objects.list'],
  'roles/storage.objectCreator': ['storage.objects.create'],
  'roles/storage.objectAdmin': ['storage.objects.create', 'storage.objects.delete', 'storage.objects.get', 'storage.objects.list', 'storage.objects.update'],
  'roles/cloudtrace.agent': ['cloudtrace.traces.patch'],
  'roles/pubsub.publisher': ['pubsub.topics.publish'],
  'roles/pubsub.subscriber': ['pubsub.subscriptions.consume'],
  'roles/secretmanager.secretAccessor': ['secretmanager.versions.access'],
  'roles/browser': ['resourcemanager.projects.get'],
  'roles/viewer': ['resourcemanager.projects.get', 'storage.objects.get', 'storage.objects.list'],
};

interface Binding {
  role: string;
  members: string[];
  condition?: unknown;
}

/** The subset of `requested` that `members` hold through the unconditional bindings of `policies`. */
export function grantedPermissions(policies: { bindings: Binding[] }[], members: readonly string[], requested: readonly string[]): string[] {
  const held = new Set<string>();
  for (const policy of policies) {
    for (const b of policy.bindings) {
      if (b.condition || !b.members.some((m) => members.includes(m))) continue;
      for (const p of ROLE_PERMISSIONS[b.role] ?? []) held.add(p);
    }
  }
  return requested.filter((p) => held.has(p));
}
