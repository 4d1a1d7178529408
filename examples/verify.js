'use strict';
// Verify that a request reached your app through hookgate, with Node.js built-ins only (Node >= 18).
//
// hookgate signs every forwarded request with RFC 9421 HTTP Message Signatures (HMAC-SHA256,
// label "hookgate") and adds an RFC 9530 Content-Digest of the body. This rebuilds the signature
// base from the request, compares in constant time, then checks the age and the body digest.
// It accepts exactly hookgate's Signature-Input format and refuses anything else.
//
//   const { verifyHookgateRequest } = require('./verify.js');
//   const keys = { 'hookgate-1': Buffer.from(process.env.HOOKGATE_SIGNING_KEY, 'base64') };
//   // after reading the whole raw body into a Buffer:
//   verifyHookgateRequest({ method: req.method, target: req.url, headers: req.headers, body, keys,
//                           maxAgeSeconds: 300 });  // throws HookgateVerificationError
//
// Self-test (used by hookgate's tests): node verify.js --self-test < fixture.json

const crypto = require('node:crypto');

// Everything hookgate signs, in order.
const COVERED = ['@method', '@path', '@query', 'content-digest', 'client-cert',
  'x-client-cert-sha256', 'x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-request-id'];
// A delivery from hookgate's store (a route with delivery = "store") also signs these two.
const COVERED_STORED = [...COVERED, 'hookgate-attempt', 'hookgate-received-at'];
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// keyid: an RFC 8941 string without escapes, as hookgate requires of [identity] key_id.
const signatureInput = (covered) => new RegExp('^hookgate=(' +
  escapeRegExp('(' + covered.map((name) => `"${name}"`).join(' ') + ')') +
  ';created=(\\d{1,15});keyid="([\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]+)";alg="hmac-sha256")$');
const SIGNATURE_INPUT = signatureInput(COVERED);
const SIGNATURE_INPUT_STORED = signatureInput(COVERED_STORED);
const SIGNATURE = /^hookgate=:([A-Za-z0-9+/]{43}=):$/; // 32-byte HMAC-SHA256
const CONTENT_DIGEST = /^sha-256=:([A-Za-z0-9+/]{43}=):$/;
const CLOCK_SKEW_SECONDS = 5;

class HookgateVerificationError extends Error {
  // check: which step failed: "signature", "age" or "digest".
  constructor(check, detail) {
    super(`${check}: ${detail}`);
    this.check = check;
    this.detail = detail;
  }
}

function field(headers, name) {
  const value = headers[name];
  if (value === undefined) throw new HookgateVerificationError('signature', `missing header ${name}`);
  // Repeated field lines combine with ", " and surrounding whitespace is not part of the value
  // (RFC 9421 section 2.1); Node's req.headers already does both.
  return (Array.isArray(value) ? value.join(', ') : String(value)).trim();
}

// target: req.url, the request target exactly as received (path and query, not decoded).
// headers: req.headers (lowercase names). body: the raw body as a Buffer.
// keys: { keyId: Buffer }; list two ids while rotating keys. Returns { keyId, created }.
function verifyHookgateRequest({ method, target, headers, body, keys, maxAgeSeconds = 300,
  now = Date.now() / 1000 }) {
  // A request carrying Hookgate-Attempt must have it signed: it came from the store.
  const covered = headers['hookgate-attempt'] === undefined ? COVERED : COVERED_STORED;
  const input = (covered === COVERED ? SIGNATURE_INPUT : SIGNATURE_INPUT_STORED)
    .exec(field(headers, 'signature-input'));
  if (!input) throw new HookgateVerificationError('signature', 'Signature-Input is not hookgate\'s');
  const signature = SIGNATURE.exec(field(headers, 'signature'));
  if (!signature) throw new HookgateVerificationError('signature', 'Signature is not hookgate\'s');
  const [, params, createdText, keyId] = input;
  if (!Object.prototype.hasOwnProperty.call(keys, keyId)) {
    throw new HookgateVerificationError('signature', `unknown keyid "${keyId}"`);
  }

  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = queryAt === -1 ? '' : target.slice(queryAt + 1);
  // RFC 9421 section 2.2.7: @query is "?" + query, and just "?" when there is none.
  const values = [method, path, '?' + query, ...covered.slice(3).map((n) => field(headers, n))];
  const lines = covered.map((name, i) => `"${name}": ${values[i]}`);
  lines.push(`"@signature-params": ${params}`);
  const base = lines.join('\n');

  const expected = crypto.createHmac('sha256', keys[keyId]).update(base, 'latin1').digest();
  const given = Buffer.from(signature[1], 'base64');
  if (!crypto.timingSafeEqual(given, expected)) {
    throw new HookgateVerificationError('signature', 'signature does not match');
  }

  const created = Number(createdText);
  if (created > now + CLOCK_SKEW_SECONDS) {
    throw new HookgateVerificationError('age', 'signature created in the future');
  }
  if (now - created > maxAgeSeconds) {
    throw new HookgateVerificationError('age',
      `signature created ${Math.floor(now - created)} s ago, more than the allowed ${maxAgeSeconds} s`);
  }

  const digest = CONTENT_DIGEST.exec(field(headers, 'content-digest'));
  if (!digest) throw new HookgateVerificationError('digest', 'Content-Digest is not sha-256=:...:');
  const actual = crypto.createHash('sha256').update(body).digest();
  if (!crypto.timingSafeEqual(Buffer.from(digest[1], 'base64'), actual)) {
    throw new HookgateVerificationError('digest', 'Content-Digest does not match the body');
  }
  return { keyId, created };
}

// Reads a JSON fixture on stdin (method, path, query, headers, body or body_base64,
// keys {id: base64}, max_age) and prints {"ok": ...}; exits 0 only if it verified.
function selfTest() {
  const fixture = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
  const pairs = Array.isArray(fixture.headers) ? fixture.headers : Object.entries(fixture.headers);
  const headers = {};
  for (const [name, value] of pairs) {
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  const body = fixture.body_base64 !== undefined
    ? Buffer.from(fixture.body_base64, 'base64') : Buffer.from(fixture.body ?? '', 'utf8');
  const keys = {};
  for (const [id, key] of Object.entries(fixture.keys)) keys[id] = Buffer.from(key, 'base64');
  const target = fixture.path + (fixture.query == null ? '' : '?' + fixture.query);
  try {
    const { keyId, created } = verifyHookgateRequest({ method: fixture.method, target, headers,
      body, keys, maxAgeSeconds: fixture.max_age ?? 300 });
    console.log(JSON.stringify({ ok: true, keyid: keyId, created }));
  } catch (e) {
    if (!(e instanceof HookgateVerificationError)) throw e;
    console.log(JSON.stringify({ ok: false, check: e.check, error: e.detail }));
    process.exitCode = 1;
  }
}

module.exports = { verifyHookgateRequest, HookgateVerificationError };

if (require.main === module) {
  if (process.argv[2] !== '--self-test' || process.argv.length !== 3) {
    console.error('usage: node verify.js --self-test < fixture.json');
    process.exit(2);
  }
  selfTest();
}
