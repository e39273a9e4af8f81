// Name-based UUIDs, version 5 (SHA-1), RFC 9562 §5.5 (formerly RFC 4122 §4.3). Role assignment names must be GUIDs;
// deriving them from (scope, role, principal) makes a repeated PUT idempotent instead of a duplicate.
import { createHash } from 'node:crypto';

/** The RFC's name space for DNS names, used to derive Keyless's own name space. */
export const DNS_NAMESPACE = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function uuidv5(namespace: string, name: string): string {
  if (!isUuid(namespace)) throw new RangeError(`not a UUID: ${namespace}`);
  const bytes = createHash('sha1').update(Buffer.from(namespace.replaceAll('-', ''), 'hex')).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50; // version 5
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Keyless's name space for role assignment names: UUIDv5("keyless.dev") in the DNS name space. */
export const KEYLESS_NAMESPACE = uuidv5(DNS_NAMESPACE, 'keyless.dev');
