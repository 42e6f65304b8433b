// Polygraph's OpenID provider for tests and the demo: oidc-provider on loopback, issuing RFC 9068
// JWT access tokens for a handful of demo identities through the client_credentials grant, so
// automated tests get real tokens without a browser.
//
//   node scripts/oidc/server.mjs              serve (scripts/dev up oidc does this)
//   node scripts/oidc/server.mjs identities   print the identity table below, tab-separated
//
// Environment:
//   POLYGRAPH_OIDC_PORT  port on 127.0.0.1 (default 54080); the issuer is http://127.0.0.1:PORT
//   POLYGRAPH_OIDC_DATA  folder for jwks.json, the signing keys (default $POLYGRAPH_HOME/oidc,
//                        i.e. .polygraph/oidc in the checkout); generated once, kept across restarts
//
// Demo identities. Each is a confidential client (client_secret_basic or client_secret_post);
// its client id is the identity's name. THE SECRETS BELOW ARE DEMO SECRETS, public in this
// repository: this provider is for loopback tests and the demo only, never for anything real.
//
//   identity     client secret (DEMO)                sub           roles      allowed scopes
//   alice        polygraph-demo-secret-alice         "1"           [user]     read:orders write:orders read:features
//   bob          polygraph-demo-secret-bob           "2"           [user]     read:orders write:orders read:features
//   admin        polygraph-demo-secret-admin         "admin-1"     [admin]    all five (SCOPES below)
//   ml-service   polygraph-demo-secret-ml            "ml-service"  [service]  read:features write:features read:orders
//   short-lived  polygraph-demo-secret-short         "2"           [user]     as bob; its tokens expire after 2 s
//   alice-es256  polygraph-demo-secret-alice-es256   "1"           [user]     as alice; its tokens are signed ES256
//
// sub is the demo user's id in the database ("1", "2", ...) or a service name. A token's scope
// is what was requested, less what the client may not have (dropped silently); with no scope
// requested the token has none (scripts/token asks for all the identity's scopes by default).
//
// Every access token is a JWT (typ at+jwt) with aud "polygraph", iss the issuer, client_id,
// sub, roles, scope, iat, exp and jti, signed RS256 (alice-es256: ES256) with a key published
// at the issuer's jwks_uri (found through /.well-known/openid-configuration).
//
// oidc-provider prints two warnings at start that are expected here: Node.js 20 is below the
// runtime it prefers (it works), and its in-memory store is used (no state needs to outlive a
// restart: the tokens are self-contained JWTs and the keys are on disk).
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCOPES = ['read:orders', 'write:orders', 'read:features', 'write:features', 'admin'];
const USER_SCOPES = ['read:orders', 'write:orders', 'read:features'];

const IDENTITIES = [
  { id: 'alice', secret: 'polygraph-demo-secret-alice', sub: '1', roles: ['user'], scopes: USER_SCOPES },
  { id: 'bob', secret: 'polygraph-demo-secret-bob', sub: '2', roles: ['user'], scopes: USER_SCOPES },
  { id: 'admin', secret: 'polygraph-demo-secret-admin', sub: 'admin-1', roles: ['admin'], scopes: SCOPES },
  {
    id: 'ml-service',
    secret: 'polygraph-demo-secret-ml',
    sub: 'ml-service',
    roles: ['service'],
    scopes: ['read:features', 'write:features', 'read:orders'],
  },
  {
    id: 'short-lived', secret: 'polygraph-demo-secret-short', sub: '2', roles: ['user'], scopes: USER_SCOPES, ttl: 2,
  },
  {
    id: 'alice-es256', secret: 'polygraph-demo-secret-alice-es256', sub: '1', roles: ['user'], scopes: USER_SCOPES, alg: 'ES256',
  },
];
const BY_CLIENT_ID = new Map(IDENTITIES.map((identity) => [identity.id, identity]));

// The one resource server. RFC 8707 wants an absolute URI as the resource indicator; the
// audience written into the tokens is the plain name the gateway checks.
const RESOURCE = 'urn:polygraph';
const AUDIENCE = 'polygraph';
const ACCESS_TOKEN_TTL = 3600;

if (process.argv[2] === 'identities') {
  for (const { id, secret, sub, roles, scopes } of IDENTITIES) {
    process.stdout.write(`${id}\t${secret}\t${sub}\t${roles.join(',')}\t${scopes.join(' ')}\n`);
  }
  process.exit(0);
} else if (process.argv[2] !== undefined) {
  process.stderr.write('usage: node server.mjs [identities]\n');
  process.exit(2);
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PORT = Number(process.env.POLYGRAPH_OIDC_PORT || 54080);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;
const DATA = path.resolve(
  process.env.POLYGRAPH_OIDC_DATA
    || path.join(process.env.POLYGRAPH_HOME || path.join(ROOT, '.polygraph'), 'oidc'),
);

function log(message) {
  process.stdout.write(`${new Date().toISOString()} ${message}\n`);
}

if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  log(`error: POLYGRAPH_OIDC_PORT is not a port: ${process.env.POLYGRAPH_OIDC_PORT}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------------------------
// Signing keys: one RS256 and one ES256 private JWK, kept in DATA/jwks.json.
// ---------------------------------------------------------------------------------------------

// RFC 7638 thumbprint of the key's required public members, as the key id.
function thumbprint(jwk) {
  const members = jwk.kty === 'RSA' ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function privateJwk(type, options, alg) {
  const jwk = generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' };
}

function loadOrCreateKeys(file) {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const jwks = {
      keys: [
        privateJwk('rsa', { modulusLength: 2048 }, 'RS256'),
        privateJwk('ec', { namedCurve: 'P-256' }, 'ES256'),
      ],
    };
    const temporary = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
    try {
      // A hard link never replaces a file another start wrote meanwhile; then that one wins.
      fs.linkSync(temporary, file);
      log(`generated signing keys in ${file}`);
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    } finally {
      fs.unlinkSync(temporary);
    }
  }
  const jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const alg of ['RS256', 'ES256']) {
    if (!jwks.keys?.some((key) => key.alg === alg && key.d)) {
      throw new Error(`${file} has no private ${alg} key; move it away to generate new keys`);
    }
  }
  // The default (RS256) first: oidc-provider signs with the first key that fits the algorithm.
  jwks.keys.sort((a, b) => (a.alg === 'RS256' ? 0 : 1) - (b.alg === 'RS256' ? 0 : 1));
  return jwks;
}

// ---------------------------------------------------------------------------------------------
// The provider.
// ---------------------------------------------------------------------------------------------

const { default: Provider, errors } = await import('oidc-provider');
const jwksFile = path.join(DATA, 'jwks.json');
const jwks = loadOrCreateKeys(jwksFile);

const provider = new Provider(ISSUER, {
  jwks,
  clients: IDENTITIES.map(({ id, secret }) => ({
    client_id: id,
    client_secret: secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted too
  })),
  // Only the OpenID scopes are static; the API's scopes belong to the resource server below.
  scopes: ['openid'],
  // Cookies only matter for browser flows, which are off; a key per start keeps them signed.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      getResourceServerInfo: async (ctx, resourceIndicator, client) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        const identity = BY_CLIENT_ID.get(client.clientId);
        return {
          audience: AUDIENCE,
          // Requested scopes outside this list are left out of the token.
          scope: identity.scopes.join(' '),
          accessTokenFormat: 'jwt',
          accessTokenTTL: identity.ttl ?? ACCESS_TOKEN_TTL,
          jwt: { sign: { alg: identity.alg ?? 'RS256' } },
        };
      },
    },
  },
  ttl: {
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? ACCESS_TOKEN_TTL,
  },
  // roles rides along as an extra claim of the token.
  extraTokenClaims: async (ctx, token) => {
    const identity = BY_CLIENT_ID.get(token.clientId);
    return identity ? { roles: identity.roles } : undefined;
  },
  formats: {
    customizers: {
      // For client_credentials oidc-provider writes sub = client_id after the extra claims, so
      // the demo user's id is put in here, the last step before the JWT is signed.
      jwt: async (ctx, token, jwt) => {
        const identity = BY_CLIENT_ID.get(token.clientId);
        if (identity && token.kind === 'ClientCredentials') jwt.payload.sub = identity.sub;
      },
    },
  },
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});

provider.on('grant.success', (ctx) => {
  const token = ctx.oidc.entities.ClientCredentials;
  const identity = BY_CLIENT_ID.get(ctx.oidc.client?.clientId);
  log(`token issued: client=${ctx.oidc.client?.clientId} sub=${identity?.sub} `
    + `scope="${token?.scope ?? ''}" expires_in=${token?.expiration}`);
});
provider.on('grant.error', (ctx, error) => {
  log(`token refused: client=${ctx.oidc?.client?.clientId ?? '-'} ${error.error}: ${error.error_description}`);
});
provider.on('server_error', (ctx, error) => {
  log(`server error on ${ctx.method} ${ctx.path}: ${error.stack}`);
});

const server = provider.listen(PORT, HOST);
server.on('listening', () => {
  const kids = jwks.keys.map((key) => `${key.alg}:${key.kid}`).join(' ');
  log(`issuer ${ISSUER} listening on ${HOST}:${PORT}; keys from ${jwksFile} (${kids})`);
});
server.on('error', (error) => {
  log(`error: ${error.message}`);
  process.exit(1);
});

function stop(signal) {
  log(`${signal}: stopping`);
  server.close(() => {
    log('stopped');
    process.exit(0);
  });
  server.closeIdleConnections();
  setTimeout(() => server.closeAllConnections(), 2000).unref();
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
