// A real OpenID Connect issuer for Hangar's end-to-end tests: oidc-provider (package.json pins it) with
// one client-credentials client that gets RS256 or ES256 JWT access tokens for the `hangar` audience.
//
//   node issuer.mjs            listens on two free 127.0.0.1 ports and prints one JSON line:
//                              {"issuer", "jwksUrl", "otherIssuer", "kids"}
//
// Resource indicators (RFC 8707) choose the token: `urn:hangar:rs256` and `urn:hangar:es256` give
// aud `hangar` signed with that algorithm, `urn:other` gives aud `other`. `otherIssuer` is a second
// issuer sharing the same signing keys (so only `iss` tells its tokens apart). POST /_test/rotate
// replaces every signing key with new ones (the old ones leave the JWKS at once) and answers the new
// kids; GET /_test/stats counts the JWKS and token requests the issuer answered. The process exits
// when its stdin closes, so a crashed test run leaves nothing behind.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const CLIENT_ID = 'hangar-e2e';
const CLIENT_SECRET = process.env.HANGAR_TEST_CLIENT_SECRET || randomBytes(24).toString('hex');
const ORG = process.env.HANGAR_TEST_ORG || 'oidc-e2e';
const SCOPES = 'runners:read runners:manage jobs:read jobs:manage targets:read targets:manage keys:manage';

const RESOURCES = {
  'urn:hangar:rs256': { audience: 'hangar', alg: 'RS256' },
  'urn:hangar:es256': { audience: 'hangar', alg: 'ES256' },
  'urn:other': { audience: 'other', alg: 'RS256' },
};

let generation = 0;

function signingKeys() {
  generation += 1;
  const tag = `${generation}-${randomBytes(4).toString('hex')}`;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: `rsa-${tag}`, use: 'sig', alg: 'RS256' },
      { ...ec, kid: `ec-${tag}`, use: 'sig', alg: 'ES256' },
    ],
  };
}

function provider(issuer, jwks) {
  return new Provider(issuer, {
    jwks,
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    }],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:hangar:rs256',
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, indicator) {
          const resource = RESOURCES[indicator];
          if (!resource) throw new Provider.errors.InvalidTarget();
          return {
            scope: SCOPES,
            audience: resource.audience,
            accessTokenTTL: 3600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: resource.alg } },
          };
        },
      },
    },
    // The tenant claim Hangar maps (JwtOrgClaim, default `org`).
    extraTokenClaims: () => ({ org: ORG }),
  });
}

function listen(server) {
  return new Promise((resolve) => { server.listen(0, '127.0.0.1', () => resolve(server.address().port)); });
}

const current = {};
const stats = { jwksRequests: 0, tokensIssued: 0 };
function answer(res, body) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
const mainServer = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/_test/rotate') {
    rotate();
    answer(res, { kids: current.kids });
    return;
  }
  if (req.method === 'GET' && req.url === '/_test/stats') {
    answer(res, stats);
    return;
  }
  if (req.url.startsWith('/jwks')) stats.jwksRequests += 1;
  if (req.url.startsWith('/token')) stats.tokensIssued += 1;
  current.main(req, res);
});
const otherServer = http.createServer((req, res) => current.other(req, res));
const [mainPort, otherPort] = [await listen(mainServer), await listen(otherServer)];
const issuer = `http://127.0.0.1:${mainPort}`;
const otherIssuer = `http://127.0.0.1:${otherPort}`;

function rotate() {
  const jwks = signingKeys();
  current.main = provider(issuer, jwks).callback();
  current.other = provider(otherIssuer, structuredClone(jwks)).callback();
  current.kids = jwks.keys.map((key) => key.kid);
}

rotate();
process.stdout.write(`${JSON.stringify({
  issuer, jwksUrl: `${issuer}/jwks`, otherIssuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, kids: current.kids,
})}\n`);

const stop = () => { mainServer.close(); otherServer.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
