// A real OAuth 2.0 / OpenID Connect authorization server for Lockstep's tests (oidc-provider from
// npm) plus a small JSON API protected by its access tokens. Test peer only: in-memory storage,
// random secrets per start, logins approved automatically.
//
//   node server.mjs --port 0 --redirect-uri https://127.0.0.1:8443/api/v1/oauth/callback \
//        [--redirect-uri ...] [--access-token-ttl 60]
//
// Prints one JSON line to stdout once listening (issuer, client ids and secrets, API base URL);
// everything else goes to stderr. See README.md.
//
// Test-only admin endpoints (no authentication: loopback test peer) let a test choose the
// signed-in account's claims (`POST /test/account`) and change the next ID token the token
// endpoint answers (`POST /test/next-id-token`), re-signed with the provider's own key.

import { randomBytes, generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info; stdout carries only the JSON line. Its
// warnings about what a test peer does on purpose (Node 20, in-memory storage) are dropped.
const EXPECTED = [/Unsupported runtime/, /in-memory adapter/];
const toStderr = (...args) => {
  if (!EXPECTED.some((re) => re.test(String(args[0])))) console.error(...args);
};
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;
const { default: Provider } = await import('oidc-provider');
// jose comes with oidc-provider (its JOSE library): used to re-sign a changed ID token.
const jose = await import('jose');

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'access-token-ttl': { type: 'string', default: '60' },
  },
});
const accessTokenTtl = Number.parseInt(args['access-token-ttl'], 10);
if (!(accessTokenTtl > 0)) throw new Error('--access-token-ttl must be a positive number of seconds');
// The web client needs at least one redirect URI; a placeholder when none is given.
const redirectUris = args['redirect-uri'].length ? args['redirect-uri'] : ['https://127.0.0.1/callback'];

const secret = () => randomBytes(32).toString('base64url');
const clients = {
  web: { id: `web-${randomBytes(6).toString('hex')}`, secret: secret() },
  cc: { id: `cc-${randomBytes(6).toString('hex')}`, secret: secret() },
  // A second confidential web client, like another organization's registration at the same IdP.
  web2: { id: `web2-${randomBytes(6).toString('hex')}`, secret: secret() },
};

// The account every interaction signs in, and its claims (POST /test/account replaces them).
const DEFAULT_ACCOUNT = {
  sub: 'test-user',
  email: 'test-user@example.com',
  email_verified: true,
  name: 'Test User',
};
let account = { ...DEFAULT_ACCOUNT };
// What to change in the next ID token the token endpoint answers (POST /test/next-id-token).
let nextIdToken = null;

// The API's data: 45 items.
const ITEMS = Array.from({ length: 45 }, (_, i) => ({
  id: i + 1,
  name: `Item ${i + 1}`,
  price: Math.round((i + 1) * 1.25 * 100) / 100,
}));

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number.parseInt(args.port, 10), '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test', use: 'sig' };
const signingKey = await jose.importJWK({ ...signingJwk, alg: 'RS256' }, 'RS256');
// Another key under the same `kid`: what `break_signature` signs with.
const forgedKey = await jose.importJWK(
  { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), alg: 'RS256' },
  'RS256',
);

const provider = new Provider(issuer, {
  clients: [
    {
      // Confidential web client: authorization code (PKCE required) and refresh tokens.
      client_id: clients.web.id,
      client_secret: clients.web.secret,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid offline_access items:read email profile',
    },
    {
      // A second web client (single sign-on tests: another organization's client).
      client_id: clients.web2.id,
      client_secret: clients.web2.secret,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: redirectUris,
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid email profile',
    },
    {
      // Machine client: client credentials only.
      client_id: clients.cc.id,
      client_secret: clients.cc.secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'items:read',
    },
  ],
  scopes: ['openid', 'offline_access', 'items:read', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale'],
  },
  // The ID token carries the scopes' claims too (as Google and Entra ID do), not only userinfo.
  conformIdTokenClaims: false,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [secret()] },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    // A client may revoke its own tokens only.
    revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
  },
  // A refresh token whenever the client may use them (no offline_access needed).
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every refresh answers a new refresh token and consumes the old one (reuse revokes the grant).
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    ClientCredentials: accessTokenTtl,
    AuthorizationCode: 60,
    RefreshToken: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
    Session: 24 * 60 * 60,
    Interaction: 10 * 60,
    IdToken: 60 * 60,
  },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => (sub === account.sub ? { ...account } : { sub }),
  }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
// The token endpoint's answer, with the next ID token changed when a test asked for it.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token' && nextIdToken && typeof ctx.body?.id_token === 'string') {
    const change = nextIdToken;
    nextIdToken = null;
    ctx.body = { ...ctx.body, id_token: await changeIdToken(ctx.body.id_token, change) };
  }
});

// Interactions complete without a user: log in as "test-user", grant whatever is asked.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    result = { login: { accountId: account.sub } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    throw new Error(`unexpected prompt ${prompt.name}`);
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// The protected API: any unexpired, unrevoked access token of this provider.
async function validToken(req) {
  const match = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  const value = match[1];
  const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token || token.isExpired) return false;
  if (token.grantId && !(await provider.Grant.find(token.grantId))) return false;
  return true;
}

function intParam(url, name, fallback, max) {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max) throw Object.assign(new Error(`bad ${name}`), { status: 400 });
  return n;
}

function api(url) {
  switch (url.pathname) {
    case '/api/items': {
      // ?page=1&per_page=10 (page from 1) -> {"data": [...]}
      const page = Math.max(intParam(url, 'page', 1, 1e6), 1);
      const perPage = Math.max(intParam(url, 'per_page', 100, 100), 1);
      return { data: ITEMS.slice((page - 1) * perPage, page * perPage) };
    }
    case '/api/cursor/items': {
      // ?cursor=X (opaque, from "next") -> {"items": [10 items], "next": "Y" | null}
      const cursor = url.searchParams.get('cursor');
      const offset = cursor ? Number(Buffer.from(cursor, 'base64url').toString().replace(/^o:/, '')) : 0;
      if (!Number.isInteger(offset) || offset < 0) throw Object.assign(new Error('bad cursor'), { status: 400 });
      const end = offset + 10;
      const next = end < ITEMS.length ? Buffer.from(`o:${end}`).toString('base64url') : null;
      return { items: ITEMS.slice(offset, end), next };
    }
    case '/api/offset/items': {
      // ?offset=0&limit=10 -> [...]
      const offset = intParam(url, 'offset', 0, 1e6);
      const limit = Math.max(intParam(url, 'limit', 100, 100), 1);
      return ITEMS.slice(offset, offset + limit);
    }
    default:
      return undefined;
  }
}

// The test-only admin endpoints.
const MAX_ADMIN_BODY = 64 * 1024;
async function readJson(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > MAX_ADMIN_BODY) throw Object.assign(new Error('body too large'), { status: 400 });
  }
  try {
    const value = JSON.parse(body || '{}');
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
    return value;
  } catch {
    throw Object.assign(new Error('body is not a JSON object'), { status: 400 });
  }
}

const INJECTABLE = new Set(['iss', 'aud', 'azp', 'nonce', 'exp_offset_secs', 'remove', 'set', 'break_signature']);
async function testAdmin(req, res, url) {
  if (req.method !== 'POST') return json(res, 405, { error: 'method_not_allowed' });
  const body = await readJson(req);
  if (url.pathname === '/test/account') {
    // The claims of the account the next sign-ins get; `sub` defaults to "test-user".
    if (body.sub !== undefined && (typeof body.sub !== 'string' || !body.sub)) {
      throw Object.assign(new Error('sub must be a non-empty string'), { status: 400 });
    }
    account = { ...body, sub: body.sub ?? DEFAULT_ACCOUNT.sub };
    return json(res, 200, account);
  }
  if (url.pathname === '/test/next-id-token') {
    const unknown = Object.keys(body).filter((k) => !INJECTABLE.has(k));
    if (unknown.length) throw Object.assign(new Error(`unknown fields ${unknown.join(', ')}`), { status: 400 });
    nextIdToken = body;
    return json(res, 200, nextIdToken);
  }
  return json(res, 404, { error: 'not_found' });
}

// The next ID token, changed as POST /test/next-id-token asked and signed again with the
// provider's key (or, with `break_signature`, another key under the same `kid`).
async function changeIdToken(idToken, change) {
  const header = jose.decodeProtectedHeader(idToken);
  const claims = jose.decodeJwt(idToken);
  for (const name of ['iss', 'aud', 'azp', 'nonce']) {
    if (change[name] !== undefined) claims[name] = change[name];
  }
  if (change.exp_offset_secs !== undefined) {
    claims.exp = Math.floor(Date.now() / 1000) + Number(change.exp_offset_secs);
  }
  for (const name of change.remove ?? []) delete claims[name];
  Object.assign(claims, change.set ?? {});
  const key = change.break_signature ? forgedKey : signingKey;
  return new jose.SignJWT(claims).setProtectedHeader({ alg: header.alg, kid: header.kid, typ: header.typ }).sign(key);
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const oidc = provider.callback();
server.on('request', async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/interaction/')) {
      await interaction(req, res);
    } else if (url.pathname.startsWith('/test/')) {
      await testAdmin(req, res, url);
    } else if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      if (req.method !== 'GET') return json(res, 405, { error: 'method_not_allowed' });
      if (!(await validToken(req))) {
        return json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
      }
      const body = api(url);
      if (body === undefined) return json(res, 404, { error: 'not_found' });
      json(res, 200, body);
    } else {
      oidc(req, res);
    }
  } catch (err) {
    console.error(`${req.method} ${req.url?.split('?')[0]}:`, err.message);
    if (!res.headersSent) json(res, err.status ?? 500, { error: err.status === 400 ? 'invalid_request' : 'server_error' });
  }
});

process.stdout.write(
  `${JSON.stringify({
    issuer,
    client_id: clients.web.id,
    client_secret: clients.web.secret,
    cc_client_id: clients.cc.id,
    cc_client_secret: clients.cc.secret,
    client2_id: clients.web2.id,
    client2_secret: clients.web2.secret,
    api: `${issuer}/api`,
  })}\n`,
);

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
