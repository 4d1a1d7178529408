"""Verify that a request reached your app through hookgate.

hookgate signs every forwarded request with RFC 9421 HTTP Message Signatures (HMAC-SHA256,
label "hookgate") and adds an RFC 9530 Content-Digest of the body. This checks, in order:
the signature over the covered components (with the key named by its keyid), its age, and the
body against the signed Content-Digest. Requires: pip install http-message-signatures==3.0.0

    from verify import verify_hookgate_request, HookgateVerificationError
    KEYS = {"hookgate-1": base64.b64decode(os.environ["HOOKGATE_SIGNING_KEY"])}
    try:
        verify_hookgate_request(method, target, headers, body, KEYS, max_age=300)
    except HookgateVerificationError as e:
        ...  # answer 401; e.check is "signature", "age" or "digest"

Self-test (used by hookgate's tests): python3 verify.py --self-test < fixture.json
"""

import time

from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

# Everything hookgate signs. Requiring the full list means a signature over less is refused.
COVERED_COMPONENTS = (
    "@method",
    "@path",
    "@query",
    "content-digest",
    "client-cert",
    "x-client-cert-sha256",
    "x-forwarded-for",
    "forwarded",
    "x-forwarded-proto",
    "x-request-id",
)
# A delivery from hookgate's store (a route with delivery = "store") also signs these two.
STORED_COMPONENTS = COVERED_COMPONENTS + ("hookgate-attempt", "hookgate-received-at")


class HookgateVerificationError(Exception):
    """The request must be refused. `check` says which step failed: signature, age or digest."""

    def __init__(self, check, detail):
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class _Headers:
    """The library reads headers through items(); keep repeated field lines in order."""

    def __init__(self, pairs):
        self._pairs = list(pairs)

    def items(self):
        return iter(self._pairs)


class _Request:
    def __init__(self, method, url, headers):
        self.method = method
        self.url = url
        self.headers = headers


def verify_hookgate_request(method, target, headers, body, keys, max_age=300):
    """Raise HookgateVerificationError unless hookgate signed exactly this request.

    method:  the request method, e.g. "POST".
    target:  the request target exactly as received, path and query, NOT percent-decoded
             (e.g. "/hooks/scan?id=42"; Werkzeug/gunicorn: environ["RAW_URI"]).
    headers: a mapping with items() or a list of (name, value) pairs, as received.
    body:    the raw body bytes, before any decoding.
    keys:    {key_id: key bytes}; list two ids while rotating keys.
    max_age: refuse signatures created more than this many seconds ago (replay window).
    Returns the signed parameters, e.g. {"created": 1700000000, "keyid": "hookgate-1", ...}.
    """
    if not isinstance(body, bytes):
        raise TypeError("body must be the raw bytes of the request body")
    pairs = list(headers.items() if hasattr(headers, "items") else headers)
    # A request carrying Hookgate-Attempt must have it signed: it came from the store.
    stored = any(name.lower() == "hookgate-attempt" for name, _ in pairs)
    required = STORED_COMPONENTS if stored else COVERED_COMPONENTS
    # Only the path and query are signed; the authority here is a placeholder the library needs.
    request = _Request(method, "http://upstream.invalid" + target, _Headers(pairs))
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys=keys, private_keys={}),
    )
    try:
        # max_age=None: the age is checked below so that its failure is reported as such.
        results = verifier.verify(request, max_age=None, require_components=required)
    except HTTPMessageSignaturesException as e:
        raise HookgateVerificationError("signature", str(e)) from e
    params = results[0].parameters
    age = time.time() - params["created"]
    if age > max_age:
        raise HookgateVerificationError(
            "age", f"signature created {int(age)} s ago, more than the allowed {max_age} s"
        )
    try:
        verifier.verify_body(request, results, body)
    except HTTPMessageSignaturesException as e:
        raise HookgateVerificationError("digest", str(e)) from e
    return params


def _self_test():
    """Read a JSON fixture on stdin, print {"ok": ...} as JSON; exit 0 only if it verified."""
    import base64
    import json
    import sys

    fixture = json.load(sys.stdin)
    target = fixture["path"] + ("" if fixture.get("query") is None else "?" + fixture["query"])
    headers = fixture["headers"]
    if isinstance(headers, dict):
        headers = list(headers.items())
    if "body_base64" in fixture:
        body = base64.b64decode(fixture["body_base64"])
    else:
        body = fixture.get("body", "").encode()
    keys = {key_id: base64.b64decode(key) for key_id, key in fixture["keys"].items()}
    try:
        params = verify_hookgate_request(
            fixture["method"], target, headers, body, keys, max_age=fixture.get("max_age", 300)
        )
    except HookgateVerificationError as e:
        print(json.dumps({"ok": False, "check": e.check, "error": e.detail}))
        sys.exit(1)
    print(json.dumps({"ok": True, "keyid": params["keyid"], "created": params["created"]}))


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--self-test"]:
        sys.exit("usage: python3 verify.py --self-test < fixture.json")
    _self_test()
