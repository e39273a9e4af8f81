// ARN helpers. The partition follows the region (ARN format, AWS General Reference).
export function partitionOf(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

/** The issuer as IAM names it in OIDC provider ARNs and condition keys: no scheme, no trailing slash. */
export function issuerHostPath(issuer: string): string {
  return issuer.replace(/^https:\/\//, '').replace(/\/+$/, '');
}

export function oidcProviderArn(partition: string, accountId: string, issuer: string): string {
  return `arn:${partition}:iam::${accountId}:oidc-provider/${issuerHostPath(issuer)}`;
}

export function roleArn(partition: string, accountId: string, path: string, name: string): string {
  return `arn:${partition}:iam::${accountId}:role${path}${name}`;
}

/** A role ARN's parts: `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`, the path with its slashes (`/` at least). */
export function parseRoleArn(arn: string): { partition: string; accountId: string; path: string; name: string } | undefined {
  const m = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role(\/(?:[\x21-\x2e\x30-\x7e]+\/)*)([\w+=,.@-]{1,64})$/.exec(arn);
  if (!m) return undefined;
  return { partition: m[1] ?? '', accountId: m[2] ?? '', path: m[3] ?? '/', name: m[4] ?? '' };
}
