// Workload Identity Federation in the GCP emulator: workload identity pools and their OIDC providers as IAM v1 serves
// them (projects.locations.workloadIdentityPools[.providers]: create, get, list, patch, delete, undelete, each write
// answered with a long-running Operation that the operations.get route reports done), and what Security Token Service
// does with a provider (tokens.ts): which issuer and keys it trusts, which audiences, how it maps the token's claims to
// google.subject and attributes, and whether its attribute condition admits them. Modelled on the REST reference
// (https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers):
// ids of 4–32 of [a-z0-9-] without the gcp- prefix, names with the project number, a deleted pool or provider kept
// in state DELETED (undeletable, not listed unless showDeleted) and refused for exchanges, a disabled one refused too,
// OIDC providers needing a google.subject mapping and an https issuer. Attribute mappings and conditions are CEL; the
// emulator evaluates the subset in cel.ts and refuses anything else when the provider is written.
import { randomBytes } from 'node:crypto';
import type { Jwks } from '../oidc/jwt.ts';
import { CelError, compile, type Expression, type Value } from './cel.ts';
import { GoogleError, type GcpState } from './state.ts';

/** What pools and providers share: IAM's soft-deletable resource fields. */
interface SoftDeletable {
  name: string;
  id: string;
  displayName: string;
  description: string;
  disabled: boolean;
  state: 'ACTIVE' | 'DELETED';
  expireTime?: string;
}

export interface Pool extends SoftDeletable {
  projectNumber: string;
}

export interface OidcProvider extends SoftDeletable {
  pool: string;
  attributeMapping: Record<string, string>;
  attributeCondition?: string;
  oidc: { issuerUri: string; allowedAudiences: string[]; jwksJson?: string };
}

interface Compiled {
  mapping: [string, Expression][];
  condition: Expression | undefined;
  jwks: Jwks | undefined;
}

const ID = /^[a-z0-9-]{4,32}$/;
/** The attribute keys IAM accepts: google.subject, google.groups, google.display_name, google.profile_photo, attribute.[a-z0-9_]{1,100}. */
const ATTRIBUTE_KEY = /^(google\.(subject|groups|display_name|profile_photo)|attribute\.[a-z0-9_]{1,100})$/;
const DELETED_RETENTION_MS = 30 * 24 * 3600 * 1000;

const invalid = (message: string) => new GoogleError(400, 'INVALID_ARGUMENT', message);

/** What STS concluded from a token: the mapped attributes, or why the provider refused it. */
export type Mapped = { ok: true; subject: string; groups: string[]; attributes: Record<string, string> } | { ok: false; message: string };

export class FederationPools {
  readonly pools = new Map<string, Pool>();
  readonly providers = new Map<string, OidcProvider>();
  readonly #compiled = new Map<string, Compiled>();
  /** Operations by name: each write's result, reported done on the first operations.get. */
  readonly operations = new Map<string, object>();
  readonly #state: GcpState;

  constructor(state: GcpState) {
    this.#state = state;
  }

  #number(project: string): string {
    return this.#state.project(project).projectNumber;
  }

  #operation(resourceName: string, type: string, resource: object): object {
    const name = `${resourceName}/operations/${randomBytes(8).toString('hex')}`;
    this.operations.set(name, { name, done: true, response: { '@type': `type.googleapis.com/google.iam.v1.${type}`, ...resource } });
    return { name, metadata: { '@type': 'type.googleapis.com/google.iam.v1.WorkloadIdentityPoolOperationMetadata' }, done: false };
  }

  getOperation(project: string, path: string): object {
    const op = this.operations.get(`projects/${this.#number(project)}/${path}`);
    if (!op) throw new GoogleError(404, 'NOT_FOUND', `Operation projects/${project}/${path} not found.`);
    return op;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Pools

  #poolName(project: string, id: string): string {
    return `projects/${this.#number(project)}/locations/global/workloadIdentityPools/${id}`;
  }

  pool(project: string, id: string): Pool {
    const p = this.pools.get(this.#poolName(project, id));
    if (!p) throw new GoogleError(404, 'NOT_FOUND', `Requested entity was not found.`);
    return p;
  }

  createPool(project: string, id: string, body: Partial<Pool>): object {
    if (!ID.test(id) || id.startsWith('gcp-')) throw invalid(`Invalid pool id ${id}: 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-.`);
    const name = this.#poolName(project, id);
    if (this.pools.has(name)) throw new GoogleError(409, 'ALREADY_EXISTS', 'Requested entity already exists');
    this.#checkDisplay(body);
    const pool: Pool = { name, projectNumber: this.#number(project), id, displayName: body.displayName ?? '', description: body.description ?? '', disabled: body.disabled ?? false, state: 'ACTIVE' };
    this.pools.set(name, pool);
    return this.#operation(name, 'WorkloadIdentityPool', this.publicPool(pool));
  }

  listPools(project: string, showDeleted: boolean): Pool[] {
    const prefix = `projects/${this.#number(project)}/locations/global/workloadIdentityPools/`;
    return [...this.pools.values()].filter((p) => p.name.startsWith(prefix) && (showDeleted || p.state === 'ACTIVE')).sort((a, b) => a.name.localeCompare(b.name));
  }

  patchPool(project: string, id: string, body: Partial<Pool>, updateMask: string): object {
    const pool = this.pool(project, id);
    if (pool.state === 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The pool is deleted.');
    this.#checkDisplay(body);
    for (const field of updateMask.split(',').map((f) => f.trim()).filter(Boolean)) {
      if (field === 'displayName') pool.displayName = body.displayName ?? '';
      else if (field === 'description') pool.description = body.description ?? '';
      else if (field === 'disabled') pool.disabled = body.disabled ?? false;
      else throw invalid(`Unsupported update mask field ${field}.`);
    }
    return this.#operation(pool.name, 'WorkloadIdentityPool', this.publicPool(pool));
  }

  deletePool(project: string, id: string): object {
    const pool = this.pool(project, id);
    if (pool.state === 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The pool is already deleted.');
    pool.state = 'DELETED';
    pool.expireTime = new Date(Date.now() + DELETED_RETENTION_MS).toISOString();
    return this.#operation(pool.name, 'WorkloadIdentityPool', this.publicPool(pool));
  }

  undeletePool(project: string, id: string): object {
    const pool = this.pool(project, id);
    if (pool.state !== 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The pool is not deleted.');
    pool.state = 'ACTIVE';
    delete pool.expireTime;
    return this.#operation(pool.name, 'WorkloadIdentityPool', this.publicPool(pool));
  }

  publicPool(p: Pool): object {
    return { name: p.name, displayName: p.displayName, description: p.description, state: p.state, disabled: p.disabled, ...(p.expireTime ? { expireTime: p.expireTime } : {}) };
  }

  #checkDisplay(body: { displayName?: string; description?: string }): void {
    if ((body.displayName ?? '').length > 32) throw invalid('displayName must be at most 32 characters.');
    if ((body.description ?? '').length > 256) throw invalid('description must be at most 256 characters.');
  }

  // ------------------------------------------------------------------------------------------------------------
  // Providers

  provider(project: string, pool: string, id: string): OidcProvider {
    const p = this.providers.get(`${this.#poolName(project, pool)}/providers/${id}`);
    if (!p) throw new GoogleError(404, 'NOT_FOUND', 'Requested entity was not found.');
    return p;
  }

  createProvider(project: string, poolId: string, id: string, body: Partial<OidcProvider> & { aws?: unknown; saml?: unknown }): object {
    const pool = this.pool(project, poolId);
    if (pool.state === 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The pool is deleted.');
    if (!ID.test(id) || id.startsWith('gcp-')) throw invalid(`Invalid provider id ${id}: 4 to 32 lowercase letters, digits and hyphens, not starting with gcp-.`);
    const name = `${pool.name}/providers/${id}`;
    if (this.providers.has(name)) throw new GoogleError(409, 'ALREADY_EXISTS', 'Requested entity already exists');
    if (!body.oidc) throw invalid(body.aws || body.saml ? 'The GCP emulator serves OIDC providers only.' : 'One of aws, oidc, saml or x509 must be set.');
    const provider: OidcProvider = {
      name,
      pool: pool.name,
      id,
      displayName: body.displayName ?? '',
      description: body.description ?? '',
      disabled: body.disabled ?? false,
      state: 'ACTIVE',
      attributeMapping: body.attributeMapping ?? {},
      ...(body.attributeCondition ? { attributeCondition: body.attributeCondition } : {}),
      oidc: { issuerUri: body.oidc.issuerUri ?? '', allowedAudiences: body.oidc.allowedAudiences ?? [], ...(body.oidc.jwksJson ? { jwksJson: body.oidc.jwksJson } : {}) },
    };
    this.#checkDisplay(provider);
    this.#compiled.set(name, this.#compile(provider));
    this.providers.set(name, provider);
    return this.#operation(name, 'WorkloadIdentityPoolProvider', this.publicProvider(provider));
  }

  listProviders(project: string, poolId: string, showDeleted: boolean): OidcProvider[] {
    const pool = this.pool(project, poolId);
    return [...this.providers.values()].filter((p) => p.pool === pool.name && (showDeleted || p.state === 'ACTIVE')).sort((a, b) => a.name.localeCompare(b.name));
  }

  patchProvider(project: string, poolId: string, id: string, body: Partial<OidcProvider>, updateMask: string): object {
    const current = this.provider(project, poolId, id);
    if (current.state === 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The provider is deleted.');
    const next: OidcProvider = structuredClone(current);
    for (const field of updateMask.split(',').map((f) => f.trim()).filter(Boolean)) {
      switch (field) {
        case 'displayName':
        case 'description':
          next[field] = body[field] ?? '';
          break;
        case 'disabled':
          next.disabled = body.disabled ?? false;
          break;
        case 'attributeMapping':
          next.attributeMapping = body.attributeMapping ?? {};
          break;
        case 'attributeCondition':
          if (body.attributeCondition) next.attributeCondition = body.attributeCondition;
          else delete next.attributeCondition;
          break;
        case 'oidc':
        case 'oidc.issuerUri':
        case 'oidc.allowedAudiences':
        case 'oidc.jwksJson': {
          const oidc = body.oidc ?? { issuerUri: '', allowedAudiences: [] };
          if (field === 'oidc' || field === 'oidc.issuerUri') next.oidc.issuerUri = oidc.issuerUri ?? '';
          if (field === 'oidc' || field === 'oidc.allowedAudiences') next.oidc.allowedAudiences = oidc.allowedAudiences ?? [];
          if (field === 'oidc' || field === 'oidc.jwksJson') {
            if (oidc.jwksJson) next.oidc.jwksJson = oidc.jwksJson;
            else delete next.oidc.jwksJson;
          }
          break;
        }
        default:
          throw invalid(`Unsupported update mask field ${field}.`);
      }
    }
    this.#checkDisplay(next);
    this.#compiled.set(next.name, this.#compile(next));
    this.providers.set(next.name, next);
    return this.#operation(next.name, 'WorkloadIdentityPoolProvider', this.publicProvider(next));
  }

  deleteProvider(project: string, poolId: string, id: string): object {
    const provider = this.provider(project, poolId, id);
    if (provider.state === 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The provider is already deleted.');
    provider.state = 'DELETED';
    provider.expireTime = new Date(Date.now() + DELETED_RETENTION_MS).toISOString();
    return this.#operation(provider.name, 'WorkloadIdentityPoolProvider', this.publicProvider(provider));
  }

  undeleteProvider(project: string, poolId: string, id: string): object {
    const provider = this.provider(project, poolId, id);
    if (provider.state !== 'DELETED') throw new GoogleError(400, 'FAILED_PRECONDITION', 'The provider is not deleted.');
    provider.state = 'ACTIVE';
    delete provider.expireTime;
    return this.#operation(provider.name, 'WorkloadIdentityPoolProvider', this.publicProvider(provider));
  }

  publicProvider(p: OidcProvider): object {
    return {
      name: p.name,
      displayName: p.displayName,
      description: p.description,
      state: p.state,
      disabled: p.disabled,
      attributeMapping: p.attributeMapping,
      ...(p.attributeCondition ? { attributeCondition: p.attributeCondition } : {}),
      oidc: { issuerUri: p.oidc.issuerUri, ...(p.oidc.allowedAudiences.length ? { allowedAudiences: p.oidc.allowedAudiences } : {}), ...(p.oidc.jwksJson ? { jwksJson: p.oidc.jwksJson } : {}) },
      ...(p.expireTime ? { expireTime: p.expireTime } : {}),
    };
  }

  /** Validation of a provider's OIDC settings and CEL, as IAM does when the provider is written. */
  #compile(p: OidcProvider): Compiled {
    if (!p.oidc.issuerUri.startsWith('https://')) throw invalid('The issuer URI must be an HTTPS endpoint.');
    if (p.oidc.allowedAudiences.length > 10) throw invalid('At most 10 allowed audiences may be configured.');
    if (p.oidc.allowedAudiences.some((a) => a.length > 256)) throw invalid('Each allowed audience may be at most 256 characters.');
    if (!p.attributeMapping['google.subject']) throw invalid('The attribute mapping must contain a mapping for google.subject.');
    const mapping: [string, Expression][] = [];
    for (const [key, expression] of Object.entries(p.attributeMapping)) {
      if (!ATTRIBUTE_KEY.test(key)) throw invalid(`Invalid attribute mapping key ${key}.`);
      mapping.push([key, this.#cel(expression, `attribute mapping ${key}`)]);
    }
    if ((p.attributeCondition ?? '').length > 4096) throw invalid('The attribute condition may be at most 4096 characters.');
    const condition = p.attributeCondition ? this.#cel(p.attributeCondition, 'attribute condition') : undefined;
    let jwks: Jwks | undefined;
    if (p.oidc.jwksJson) {
      try {
        jwks = JSON.parse(p.oidc.jwksJson) as Jwks;
      } catch {
        throw invalid('jwksJson is not valid JSON.');
      }
      if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw invalid('jwksJson must hold a JSON Web Key Set with at least one key.');
    }
    return { mapping, condition, jwks };
  }

  #cel(source: string, what: string): Expression {
    try {
      return compile(source);
    } catch (err) {
      if (!(err instanceof CelError)) throw err;
      throw invalid(
        `The GCP emulator cannot evaluate the ${what} "${source}" (${err.message}). It evaluates field access on assertion, google and attribute, string and boolean literals, ==, !=, in, startsWith, endsWith, contains, !, && and ||.`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // What STS uses

  /** The provider an STS audience names (`//iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/providers/V`). */
  forAudience(audience: string): { pool: Pool; provider: OidcProvider; jwks: Jwks | undefined } | undefined {
    const m = /^\/\/iam\.googleapis\.com\/projects\/([^/]+)\/locations\/global\/workloadIdentityPools\/([^/]+)\/providers\/([^/]+)$/.exec(audience);
    if (!m) return undefined;
    const [, project = '', poolId = '', id = ''] = m;
    let provider: OidcProvider;
    let pool: Pool;
    try {
      pool = this.pool(project, poolId);
      provider = this.provider(project, poolId, id);
    } catch {
      return undefined;
    }
    return { pool, provider, jwks: this.#compiled.get(provider.name)?.jwks };
  }

  /** The token audiences the provider accepts: its allowedAudiences, else its own name with and without https:. */
  audiencesOf(provider: OidcProvider): string[] {
    if (provider.oidc.allowedAudiences.length) return provider.oidc.allowedAudiences;
    return [`//iam.googleapis.com/${provider.name}`, `https://iam.googleapis.com/${provider.name}`];
  }

  /** The attribute mapping and condition applied to a verified token's claims. */
  map(provider: OidcProvider, claims: Record<string, unknown>): Mapped {
    const compiled = this.#compiled.get(provider.name);
    if (!compiled) throw new Error(`provider ${provider.name} was never compiled`);
    const assertion = claims as Value;
    const google: Record<string, Value> = {};
    const attribute: Record<string, Value> = {};
    for (const [key, expression] of compiled.mapping) {
      let value: Value;
      try {
        value = expression.evaluate({ assertion });
      } catch (err) {
        if (!(err instanceof CelError)) throw err;
        // IAM leaves an attribute whose mapping fails unset; a missing google.subject refuses the token below.
        continue;
      }
      const [space, name = ''] = key.split('.');
      (space === 'google' ? google : attribute)[name] = value;
    }
    const subject = google['subject'];
    if (typeof subject !== 'string' || subject === '') return { ok: false, message: 'The mapped attribute google.subject must be a non-empty string.' };
    if (Buffer.byteLength(subject) > 127) return { ok: false, message: `The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify your attribute mapping or the incoming assertion to produce a mapped attribute that is less than 127 bytes.` };
    if (compiled.condition) {
      let admitted: Value;
      try {
        admitted = compiled.condition.evaluate({ assertion, google, attribute });
      } catch {
        admitted = false;
      }
      if (admitted !== true) return { ok: false, message: 'The given credential is rejected by the attribute condition.' };
    }
    const groups = Array.isArray(google['groups']) ? google['groups'].filter((g): g is string => typeof g === 'string') : [];
    const attributes = Object.fromEntries(Object.entries(attribute).filter((e): e is [string, string] => typeof e[1] === 'string'));
    return { ok: true, subject, groups, attributes };
  }
}
