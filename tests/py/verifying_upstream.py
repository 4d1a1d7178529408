#!/usr/bin/env python3
"""An upstream for hookgate's tests that verifies every request it receives.

Each request is checked with examples/verify.py (the README snippet, so CI runs it): the RFC 9421
signature via http-message-signatures, the age of `created`, and Content-Digest against the body
bytes actually received. Answers 200 {"signature":"ok","digest":"ok",...} or 401 with the failed
check and the library's error text. HTTP/1.1 keep-alive, because hookgate pools connections.

    HOOKGATE_SIGNING_KEY=<base64> python3 tests/py/verifying_upstream.py --port 0 --key-id hookgate-1

The first stdout line is `PORT <n>`. Requires: pip install -r tests/py/requirements.txt
"""

import argparse
import base64
import binascii
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
from verify import HookgateVerificationError, verify_hookgate_request  # noqa: E402


class VerifyingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_version = "verifying-upstream"

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk data
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _handle(self):
        # The raw request target: http.server may rewrite self.path (e.g. a leading "//").
        parts = self.requestline.split(" ")
        target = parts[1] if len(parts) == 3 else self.path
        body = self._read_body()
        received = {}
        for name, value in self.headers.items():
            name = name.lower()
            received[name] = f"{received[name]}, {value}" if name in received else value
        result = {}  # the verdict first, then what was received
        try:
            params = verify_hookgate_request(
                self.command, target, self.headers.items(), body, self.server.keys, self.server.max_age
            )
        except HookgateVerificationError as e:
            status = 401
            result.update(
                signature="ok" if e.check == "digest" else "failed",
                digest="failed" if e.check == "digest" else "not checked",
                check=e.check,
                error=e.detail,
            )
        else:
            status = 200
            result.update(signature="ok", digest="ok", keyid=params["keyid"], created=params["created"])
        result.update(method=self.command, path=target, headers=received, body_len=len(body))
        payload = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write("verifying-upstream: " + (format % args) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key-id", required=True, help="the keyid the key in HOOKGATE_SIGNING_KEY has")
    parser.add_argument("--max-age", type=int, default=300, help="refuse older signatures (seconds)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (the parent went away)"
    )
    args = parser.parse_args()
    try:
        key = base64.b64decode(os.environ["HOOKGATE_SIGNING_KEY"], validate=True)
    except KeyError:
        sys.exit("verifying-upstream: set HOOKGATE_SIGNING_KEY to the base64 signing key")
    except binascii.Error:
        sys.exit("verifying-upstream: HOOKGATE_SIGNING_KEY is not valid base64")

    server = ThreadingHTTPServer((args.host, args.port), VerifyingHandler)
    server.daemon_threads = True
    server.keys = {args.key_id: key}
    server.max_age = args.max_age
    server.verbose = args.verbose
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
