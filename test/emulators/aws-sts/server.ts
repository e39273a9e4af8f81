// The AWS token exchanges, checked the way AWS checks them, in front of moto (whose STS hands out credentials for
// any token and any role). Three doors:
//
//   POST / Action=AssumeRoleWithWebIdentity (STS, awsQuery)   IRSA: the token's issuer must be an IAM OIDC provider
//       in moto whose client ids hold the token's audience; signature against the issuer's keys; expiry; then the
//       role's trust policy, evaluated by an independent IAM engine for principal Federated = that provider, action
//       sts:AssumeRoleWithWebIdentity and the `<issuer>:sub` / `<issuer>:aud` condition keys. Credentials come
//       from moto, so GetCallerIdentity with them names the assumed role.
//   POST /clusters/{name}/assume-role-for-pod-identity (EKS Auth, restJson1)   Pod Identity: audience
//       pods.eks.amazonaws.com, the cluster's own issuer and keys, expiry, the association for the token's
//       namespace and ServiceAccount (read through the EKS API of `upstream`), and the role's trust for service
//       principal pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession under the session tags EKS sets.
//   GET {agent}/v1/credentials   the EKS Pod Identity Agent on its own loopback port, as pods reach it through
//       AWS_CONTAINER_CREDENTIALS_FULL_URI: the token arrives as the Authorization header; answers in the
//       container-credentials JSON the SDKs read, and errors as the agent's plain-text lines.
//
// Everything else is forwarded to `upstream` unchanged. Wire shapes: the botocore models of sts and eks-auth (in
// .venv), aws/eks-pod-identity-agent (pkg/handlers, pkg/errors, internal/validation). Error texts quoted from
// public reports unless marked [unverified].
//
// Admin routes under /__emulator/ (JSON): POST issuers {issuer, jwks}; POST clusters {name, issuer[, jwks]} binds
// an EKS cluster to the issuer its tokens carry; POST clock {offsetSeconds} moves this emulator's clock (expiry
// tests); GET requests, the exchanges answered so far.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeClusterCommand, DescribePodIdentityAssociationCommand, EKSClient, ListPodIdentityAssociationsCommand } from '@aws-sdk/client-eks';
import { GetOpenIDConnectProviderCommand, GetRoleCommand, IAMClient, ListOpenIDConnectProvidersCommand } from '@aws-sdk/client-iam';
import { evaluateTrust } from '../../support/iam-trust.ts';
import { issuerFromJson, TrustedIssuers, type IssuerSource } from '../oidc/issuers.ts';
import { audiences, checkTimes, decodeJwt, type DecodedJwt } from '../oidc/jwt.ts';
import { forwarderTo, StatusError } from '../http.ts';

export const POD_IDENTITY_AUDIENCE = 'pods.eks.amazonaws.com';
const REGION = 'us-east-1';
const EMULATOR_CREDENTIALS = { accessKeyId: 'AKIDKEYLESSEMULATOR', secretAccessKey: 'keyless-emulator' };

export interface ExchangeRecord {
  operation: 'AssumeRoleWithWebIdentity' | 'AssumeRoleForPodIdentity' | 'PodIdentityAgent';
  status: number;
  code?: string;
}

export interface AwsTokenEmulatorOptions {
  /** moto, or something that forwards to it (the Pod Identity emulator): IAM, STS and EKS are read through it. */
  upstream: string;
  issuers?: IssuerSource[];
  /** EKS clusters and the issuer of their ServiceAccount tokens. */
  clusters?: { name: string; issuer: string }[];
  port?: number;
  /** Serve the Pod Identity Agent for this cluster on a port of its own. */
  agent?: { cluster: string; port?: number };
}

export interface AwsTokenEmulator {
  endpoint: string;
  /** The agent's credentials URL, for AWS_CONTAINER_CREDENTIALS_FULL_URI; undefined without `agent`. */
  agentUri: string | undefined;
  requests: ExchangeRecord[];
  trustIssuer(source: IssuerSource): void;
  bindCluster(name: string, issuer: string): void;
  setClockOffset(seconds: number): void;
  stop(): Promise<void>;
}

class AwsError extends StatusError {}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const tag = (xml: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A form POST to moto's STS, signed with throwaway credentials (moto reads the account from them, not the signature). */
function postStsForm(upstream: URL, params: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams(params).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: 'POST',
        path: '/',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          authorization: `AWS4-HMAC-SHA256 Credential=${EMULATOR_CREDENTIALS.accessKeyId}/20260101/${REGION}/sts/aws4_request, SignedHeaders=host, Signature=0`,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

interface MotoCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: string;
  arn: string;
  assumedRoleId: string;
}

function motoCredentials(answer: { status: number; body: string }): MotoCredentials {
  const xml = answer.body;
  const fields = {
    accessKeyId: tag(xml, 'AccessKeyId'),
    secretAccessKey: tag(xml, 'SecretAccessKey'),
    sessionToken: tag(xml, 'SessionToken'),
    expiration: tag(xml, 'Expiration'),
    arn: tag(xml, 'Arn'),
    assumedRoleId: tag(xml, 'AssumedRoleId'),
  };
  if (answer.status !== 200 || Object.values(fields).some((v) => v === undefined)) {
    throw new AwsError(500, 'InternalFailure', `moto answered ${answer.status}: ${xml.slice(0, 300)}`);
  }
  return fields as MotoCredentials;
}

/** `system:serviceaccount:NS:NAME` → [NS, NAME]. */
function serviceAccountOf(sub: string | undefined): [string, string] | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub ?? '');
  return m ? [m[1] ?? '', m[2] ?? ''] : undefined;
}

function roleNameOf(roleArn: string): string | undefined {
  return /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:.*\/)?([\w+=,.@-]+)$/.exec(roleArn)?.[1];
}

function trustPolicyOf(document: string | undefined): unknown {
  return JSON.parse(decodeURIComponent(document ?? '{}'));
}

export async function startAwsTokenEmulator(opts: AwsTokenEmulatorOptions): Promise<AwsTokenEmulator> {
  const upstream = new URL(opts.upstream);
  const issuers = new TrustedIssuers(opts.issuers);
  const clusters = new Map((opts.clusters ?? []).map((c) => [c.name, c.issuer]));
  const requests: ExchangeRecord[] = [];
  let clockOffset = 0;
  const now = () => Math.floor(Date.now() / 1000) + clockOffset;
  const clientConfig = { endpoint: opts.upstream, region: REGION, credentials: EMULATOR_CREDENTIALS, maxAttempts: 1 };
  const iam = new IAMClient(clientConfig);
  const eks = new EKSClient(clientConfig);

  // ---------------------------------------------------------------------------------------------------------------
  // STS AssumeRoleWithWebIdentity

  async function assumeRoleWithWebIdentity(params: URLSearchParams): Promise<string> {
    const roleArn = params.get('RoleArn') ?? '';
    const token = params.get('WebIdentityToken') ?? '';
    const jwt = decodeJwt(token);
    // [unverified] wording; the code is the one STS documents for a token it cannot validate.
    if (!jwt || typeof jwt.claims.iss !== 'string') throw new AwsError(400, 'InvalidIdentityToken', 'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)');
    const iss = jwt.claims.iss;
    const hostPath = iss.replace(/^https:\/\//, '');
    const account = roleArn.split(':')[4] ?? '';
    const providerArn = ((await iam.send(new ListOpenIDConnectProvidersCommand({}))).OpenIDConnectProviderList ?? [])
      .map((p) => p.Arn ?? '')
      .find((arn) => arn === `arn:aws:iam::${account}:oidc-provider/${hostPath}`);
    if (!providerArn) throw new AwsError(400, 'InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${iss}`);

    const signature = await issuers.verify(jwt, iss);
    if (signature === 'unknown-issuer' || signature === 'unknown-key') {
      throw new AwsError(400, 'InvalidIdentityToken', "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements");
    }
    // [unverified] wording for a signature that does not verify with a published key.
    if (signature !== 'valid') throw new AwsError(400, 'InvalidIdentityToken', 'The web identity token signature could not be verified.');
    const time = checkTimes(jwt.claims, now());
    if (time === 'expired' || time === 'no-expiry') {
      throw new AwsError(400, 'ExpiredTokenException', `Token expired: current date/time ${now()} must be before the expiration date/time ${jwt.claims.exp ?? 0}`);
    }
    if (time === 'not-yet-valid') throw new AwsError(400, 'InvalidIdentityToken', 'The web identity token is not yet valid.');

    const provider = await iam.send(new GetOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: providerArn }));
    const tokenAudiences = audiences(jwt.claims);
    if (!tokenAudiences.some((a) => (provider.ClientIDList ?? []).includes(a))) throw new AwsError(400, 'InvalidIdentityToken', 'Incorrect token audience');

    const denied = new AwsError(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    const roleName = roleNameOf(roleArn);
    if (!roleName) throw denied;
    const role = (await iam.send(new GetRoleCommand({ RoleName: roleName })).catch(() => undefined))?.Role;
    if (!role?.Arn || role.Arn !== roleArn) throw denied;
    const sub = jwt.claims.sub ?? '';
    const aud = tokenAudiences[0] ?? '';
    const verdict = evaluateTrust(trustPolicyOf(role.AssumeRolePolicyDocument), {
      principal: providerArn,
      action: 'sts:AssumeRoleWithWebIdentity',
      roleArn,
      context: { [`${hostPath}:sub`]: sub, [`${hostPath}:aud`]: aud },
    });
    if (verdict !== 'Allowed') throw denied;
    const duration = Number(params.get('DurationSeconds') ?? 3600);
    if (duration > (role.MaxSessionDuration ?? 3600)) {
      throw new AwsError(400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    }

    const creds = motoCredentials(await postStsForm(upstream, Object.fromEntries(params)));
    return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xmlEscape(sub)}</SubjectFromWebIdentityToken>
    <Audience>${xmlEscape(aud)}</Audience>
    <AssumedRoleUser><Arn>${xmlEscape(creds.arn)}</Arn><AssumedRoleId>${xmlEscape(creds.assumedRoleId)}</AssumedRoleId></AssumedRoleUser>
    <Credentials><SessionToken>${xmlEscape(creds.sessionToken)}</SessionToken><SecretAccessKey>${xmlEscape(creds.secretAccessKey)}</SecretAccessKey><Expiration>${xmlEscape(creds.expiration)}</Expiration><AccessKeyId>${xmlEscape(creds.accessKeyId)}</AccessKeyId></Credentials>
    <Provider>${xmlEscape(iss)}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // EKS Auth AssumeRoleForPodIdentity

  interface PodIdentityAnswer {
    subject: { namespace: string; serviceAccount: string };
    audience: string;
    podIdentityAssociation: { associationArn: string; associationId: string };
    assumedRoleUser: { arn: string; assumeRoleId: string };
    credentials: { sessionToken: string; secretAccessKey: string; accessKeyId: string; expiration: number };
  }

  async function assumeRoleForPodIdentity(clusterName: string, token: string): Promise<PodIdentityAnswer> {
    if (!token) throw new AwsError(400, 'InvalidParameterException', 'token must not be empty.');
    const cluster = (await eks.send(new DescribeClusterCommand({ name: clusterName })).catch(() => undefined))?.cluster;
    if (!cluster?.arn) throw new AwsError(404, 'ResourceNotFoundException', `No cluster found for name: ${clusterName}.`);
    const clusterIssuer = clusters.get(clusterName);
    if (!clusterIssuer) {
      throw new AwsError(500, 'InternalServerException', `Keyless emulator: no issuer is bound to cluster ${clusterName}; POST /__emulator/clusters {"name","issuer"} first.`);
    }
    // [unverified] wordings of the EKS Auth token errors below; the codes are the ones its model declares.
    const jwt: DecodedJwt | undefined = decodeJwt(token);
    if (!jwt) throw new AwsError(400, 'InvalidTokenException', 'The service account token is malformed.');
    if (jwt.claims.iss !== clusterIssuer) throw new AwsError(400, 'InvalidTokenException', 'The service account token was not issued by this cluster.');
    if ((await issuers.verify(jwt, clusterIssuer)) !== 'valid') throw new AwsError(400, 'InvalidTokenException', 'The service account token signature is invalid.');
    const time = checkTimes(jwt.claims, now());
    if (time !== 'current') throw new AwsError(400, 'ExpiredTokenException', 'The service account token has expired.');
    if (!audiences(jwt.claims).includes(POD_IDENTITY_AUDIENCE)) {
      throw new AwsError(400, 'InvalidTokenException', `The service account token audience is not ${POD_IDENTITY_AUDIENCE}.`);
    }
    const subject = serviceAccountOf(jwt.claims.sub);
    if (!subject) throw new AwsError(400, 'InvalidTokenException', 'The service account token subject is not a Kubernetes ServiceAccount.');
    const [namespace, serviceAccount] = subject;

    const [summary] = (await eks.send(new ListPodIdentityAssociationsCommand({ clusterName, namespace, serviceAccount }))).associations ?? [];
    if (!summary?.associationId) {
      throw new AwsError(404, 'ResourceNotFoundException', `No Pod Identity Association found for service account ${serviceAccount} in namespace ${namespace} of cluster ${clusterName}.`);
    }
    const association = (await eks.send(new DescribePodIdentityAssociationCommand({ clusterName, associationId: summary.associationId }))).association;
    const roleArn = association?.roleArn ?? '';
    const denied = new AwsError(400, 'AccessDeniedException', 'Unauthorized Exception! EKS does not have permissions to assume the associated role.');
    const roleName = roleNameOf(roleArn);
    const role = roleName ? (await iam.send(new GetRoleCommand({ RoleName: roleName })).catch(() => undefined))?.Role : undefined;
    if (!role?.Arn) throw denied;

    const pod = (jwt.claims['kubernetes.io'] as { pod?: { name?: string; uid?: string } } | undefined)?.pod;
    const tags: Record<string, string> = association?.disableSessionTags
      ? {}
      : {
          'eks-cluster-arn': cluster.arn,
          'eks-cluster-name': clusterName,
          'kubernetes-namespace': namespace,
          'kubernetes-service-account': serviceAccount,
          ...(pod?.name ? { 'kubernetes-pod-name': pod.name } : {}),
          ...(pod?.uid ? { 'kubernetes-pod-uid': pod.uid } : {}),
        };
    const context = { ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])), ...(Object.keys(tags).length ? { 'aws:TagKeys': Object.keys(tags) } : {}) };
    const actions = association?.disableSessionTags ? ['sts:AssumeRole'] : ['sts:AssumeRole', 'sts:TagSession'];
    const trust = trustPolicyOf(role.AssumeRolePolicyDocument);
    if (!actions.every((action) => evaluateTrust(trust, { principal: POD_IDENTITY_AUDIENCE, action, roleArn: role.Arn ?? '', context }) === 'Allowed')) throw denied;

    const sessionName = `eks-${clusterName}-${pod?.name ?? serviceAccount}-${randomUUID()}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);
    const creds = motoCredentials(await postStsForm(upstream, { Action: 'AssumeRole', Version: '2011-06-15', RoleArn: role.Arn, RoleSessionName: sessionName }));
    return {
      subject: { namespace, serviceAccount },
      audience: POD_IDENTITY_AUDIENCE,
      podIdentityAssociation: { associationArn: association?.associationArn ?? '', associationId: summary.associationId },
      assumedRoleUser: { arn: creds.arn, assumeRoleId: creds.assumedRoleId },
      credentials: { sessionToken: creds.sessionToken, secretAccessKey: creds.secretAccessKey, accessKeyId: creds.accessKeyId, expiration: Date.parse(creds.expiration) / 1000 },
    };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // HTTP

  const forward = forwarderTo(upstream);

  const record = (operation: ExchangeRecord['operation'], status: number, code?: string) => requests.push({ operation, status, ...(code ? { code } : {}) });

  const admin = (path: string, body: Buffer, res: http.ServerResponse) => {
    const send = (status: number, out: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    };
    try {
      const input: unknown = body.length ? JSON.parse(body.toString()) : {};
      if (path === '/__emulator/requests') return send(200, requests);
      if (path === '/__emulator/issuers') {
        issuers.add(issuerFromJson(input));
        return send(200, {});
      }
      if (path === '/__emulator/clusters') {
        const { name, issuer, jwks } = input as { name?: string; issuer?: string; jwks?: unknown };
        if (!name || !issuer) return send(400, { message: 'name and issuer are required' });
        if (jwks) issuers.add(issuerFromJson({ issuer, jwks }));
        clusters.set(name, issuer);
        return send(200, {});
      }
      if (path === '/__emulator/clock') {
        clockOffset = Number((input as { offsetSeconds?: number }).offsetSeconds ?? 0);
        return send(200, { offsetSeconds: clockOffset });
      }
      return send(404, { message: `no admin route ${path}` });
    } catch (err) {
      return send(400, { message: err instanceof Error ? err.message : String(err) });
    }
  };

  async function handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname.startsWith('/__emulator/')) return admin(url.pathname, body, res);

    const form = new URLSearchParams(body.toString());
    const action = form.get('Action') ?? url.searchParams.get('Action');
    if (req.method === 'POST' && action === 'AssumeRoleWithWebIdentity') {
      const params = form.get('Action') ? form : url.searchParams;
      try {
        const xml = await assumeRoleWithWebIdentity(params);
        record('AssumeRoleWithWebIdentity', 200);
        res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': randomUUID() });
        res.end(xml);
      } catch (err) {
        const e = err instanceof AwsError ? err : new AwsError(500, 'InternalFailure', String(err));
        record('AssumeRoleWithWebIdentity', e.status, e.code);
        const requestId = randomUUID();
        res.writeHead(e.status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
        res.end(
          `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n    <Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type>\n    <Code>${e.code}</Code>\n    <Message>${xmlEscape(e.message)}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
        );
      }
      return;
    }

    const podIdentity = /^\/clusters\/([^/]+)\/assume-role-for-pod-identity$/.exec(url.pathname);
    if (req.method === 'POST' && podIdentity) {
      const requestId = randomUUID();
      try {
        const input = body.length ? (JSON.parse(body.toString()) as { token?: unknown }) : {};
        const answer = await assumeRoleForPodIdentity(decodeURIComponent(podIdentity[1] ?? ''), typeof input.token === 'string' ? input.token : '');
        record('AssumeRoleForPodIdentity', 200);
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': requestId });
        res.end(JSON.stringify(answer));
      } catch (err) {
        const e = err instanceof AwsError ? err : new AwsError(500, 'InternalServerException', String(err));
        record('AssumeRoleForPodIdentity', e.status, e.code);
        res.writeHead(e.status, { 'content-type': 'application/json', 'x-amzn-errortype': e.code, 'x-amzn-requestid': requestId });
        res.end(JSON.stringify({ message: e.message }));
      }
      return;
    }
    forward(req, body, res);
  }

  const server = http.createServer((req, res) => {
    readBody(req).then(
      (body) => handle(req, body, res),
      () => res.destroy(),
    ).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));

  // ---------------------------------------------------------------------------------------------------------------
  // The Pod Identity Agent

  let agentServer: http.Server | undefined;
  if (opts.agent) {
    const agentCluster = opts.agent.cluster;
    // The agent's own checks before it calls EKS Auth (internal/validation/request.go): a parseable token whose
    // registered claims are valid. Errors are http.Error lines: status and text, the EKS Auth code inside.
    const plain = (res: http.ServerResponse, status: number, text: string, code?: string) => {
      record('PodIdentityAgent', status, code);
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end(`${text}\n`);
    };
    agentServer = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://agent');
      if (req.method !== 'GET' || url.pathname !== '/v1/credentials') return plain(res, 404, '404 page not found');
      const token = req.headers.authorization ?? '';
      if (!token) return plain(res, 400, 'Service account token cannot be empty');
      const jwt = decodeJwt(token);
      if (!jwt) return plain(res, 400, 'Service account token cannot be parsed: token is malformed: could not base64 decode header');
      if (checkTimes(jwt.claims, now()) === 'expired') return plain(res, 400, 'Service account token failed basic claim validations: token has invalid claims: token is expired');
      const requestId = randomUUID();
      assumeRoleForPodIdentity(agentCluster, token).then(
        (answer) => {
          record('PodIdentityAgent', 200);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              AccessKeyId: answer.credentials.accessKeyId,
              SecretAccessKey: answer.credentials.secretAccessKey,
              Token: answer.credentials.sessionToken,
              AccountId: answer.assumedRoleUser.arn.split(':')[4],
              Expiration: new Date(answer.credentials.expiration * 1000).toISOString(),
            }),
          );
        },
        (err: unknown) => {
          const e = err instanceof AwsError ? err : new AwsError(500, 'InternalServerException', String(err));
          plain(res, e.status, `[${requestId}]: (${e.code}): ${e.message}, fault: ${e.status >= 500 ? 'server' : 'client'}`, e.code);
        },
      );
    });
    await new Promise<void>((resolve) => agentServer?.listen(opts.agent?.port ?? 0, '127.0.0.1', resolve));
  }

  const close = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    agentUri: agentServer ? `http://127.0.0.1:${(agentServer.address() as AddressInfo).port}/v1/credentials` : undefined,
    requests,
    trustIssuer: (source) => issuers.add(source),
    bindCluster: (name, issuer) => void clusters.set(name, issuer),
    setClockOffset: (seconds) => void (clockOffset = seconds),
    stop: async () => {
      iam.destroy();
      eks.destroy();
      await close(server);
      if (agentServer) await close(agentServer);
    },
  };
}
