#!/usr/bin/env python3
"""TLS scan of a running hookgate with sslyze (tests/py/requirements.txt pins it); .ci/run runs it.

    python3 tests/py/tls_scan.py --hookgate target/debug/hookgate   # start, scan, stop
    python3 tests/py/tls_scan.py --target 127.0.0.1:8443            # scan a server already running

With --hookgate, hookgate runs on proxy.toml.example (the demo certificates in certs/) with
loopback ports and throwaway secrets. The scan presents the demo client certificate, which the
example pins, because hookgate refuses handshakes without a pinned one: every check below needs
completed handshakes, so the scan first proves that it completes them and fails otherwise.

Fails (exit 1) on any of:
  - no handshake with the demo client certificate, or one without any client certificate;
  - a protocol below TLS 1.2 accepted (SSL 2.0, SSL 3.0, TLS 1.0, TLS 1.1);
  - a cipher suite that is not AEAD (GCM, ChaCha20-Poly1305, CCM with a full 16-byte tag), an
    anonymous one, or a TLS 1.2 suite without forward secrecy (no ECDHE/DHE key exchange);
  - a key-exchange group outside X25519, X448, secp256r1, secp384r1, secp521r1, or finite-field
    DH below 2048 bits (the ffdhe2048+ groups of RFC 7919);
  - client-initiated renegotiation accepted (server-initiated renegotiation cannot be provoked
    by a scanner; rustls, hookgate's TLS stack, implements neither);
  - session resumption by TLS 1.2 session id or ticket, or by a TLS 1.3 ticket (PSK), or 0-RTT;
  - TLS compression.
The RFC 5746 renegotiation_info extension (sslyze's "secure renegotiation") is printed but not
failed: rustls sends it to say that it will refuse renegotiation, which is what clients should see.
"""

import argparse
import base64
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

from sslyze import (
    ClientAuthenticationCredentials,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)
from sslyze.plugins.session_resumption.implementation import TlsResumptionSupportEnum

REPO = Path(__file__).resolve().parents[2]
CLIENT_CERT = REPO / "certs/demo-client.pem"
CLIENT_KEY = REPO / "certs/demo-client.key"
SERVER_CA = REPO / "certs/demo-ca.pem"

# sslyze/nassl names of the allowed groups (OpenSSL calls secp256r1 prime256v1).
ALLOWED_GROUPS = {"X25519", "X448", "prime256v1", "secp256r1", "secp384r1", "secp521r1"}
MIN_FFDHE_BITS = 2048
LEGACY_PROTOCOLS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
}
CURRENT_PROTOCOLS = {
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
    "TLS 1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
}


class Report:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what}{f': {detail}' if detail else ''}", flush=True)
        self.failures += not ok

    def info(self, what):
        print(f"info {what}", flush=True)


def is_aead(name):
    """GCM, ChaCha20-Poly1305 and CCM with its full tag; CCM_8's 64-bit tag does not count."""
    return "_GCM_" in name or "CHACHA20_POLY1305" in name or re.search(r"_CCM(_SHA\d+)?$", name)


def describe_key(key):
    if key is None:
        return "none"
    curve = getattr(key, "curve_name", None)
    return curve if curve else f"{key.type_name}-{key.size}"


def key_is_allowed(key):
    if key is None:
        return False
    if getattr(key, "curve_name", None):
        return key.curve_name in ALLOWED_GROUPS
    if key.type_name == "DH":
        return key.size >= MIN_FFDHE_BITS
    # X25519/X448 ephemeral keys come without a curve name on some nassl versions.
    return key.type_name in ALLOWED_GROUPS


def completed(report, scan, field):
    attempt = getattr(scan, field)
    ok = attempt.status == ScanCommandAttemptStatusEnum.COMPLETED
    report.check(ok, f"sslyze {field} ran", "" if ok else f"{attempt.error_reason}: {attempt.error_trace}")
    return attempt.result if ok else None


def sslyze_checks(report, host, port):
    location = ServerNetworkLocation(hostname="localhost", port=port, ip_address=host)
    network = ServerNetworkConfiguration(
        tls_server_name_indication="localhost",
        tls_client_auth_credentials=ClientAuthenticationCredentials(
            certificate_chain_path=CLIENT_CERT, key_path=CLIENT_KEY
        ),
    )
    commands = {
        *LEGACY_PROTOCOLS.values(),
        *CURRENT_PROTOCOLS.values(),
        ScanCommand.ELLIPTIC_CURVES,
        ScanCommand.SESSION_RENEGOTIATION,
        ScanCommand.SESSION_RESUMPTION,
        ScanCommand.TLS_COMPRESSION,
        ScanCommand.TLS_1_3_EARLY_DATA,
    }
    scanner = Scanner()
    scanner.queue_scans(
        [ServerScanRequest(server_location=location, network_configuration=network, scan_commands=commands)]
    )
    (result,) = list(scanner.get_results())
    connected = result.scan_status == ServerScanStatusEnum.COMPLETED
    report.check(connected, f"sslyze connects to {host}:{port} with the demo client certificate",
                 "" if connected else str(result.connectivity_error_trace))
    if not connected:
        return
    conn = result.connectivity_result
    report.info(f"highest protocol {conn.highest_tls_version_supported.name}")
    scan = result.scan_result

    for name, command in LEGACY_PROTOCOLS.items():
        r = completed(report, scan, command.value)
        if r is not None:
            accepted = [s.cipher_suite.name for s in r.accepted_cipher_suites]
            report.check(not accepted, f"{name} refused", f"accepted {accepted}" if accepted else "")

    total = 0
    for name, command in CURRENT_PROTOCOLS.items():
        r = completed(report, scan, command.value)
        if r is None:
            continue
        total += len(r.accepted_cipher_suites)
        for s in r.accepted_cipher_suites:
            suite = s.cipher_suite
            problems = []
            if not is_aead(suite.name):
                problems.append("not AEAD" if "CCM_8" not in suite.name else "not AEAD with a full tag (CCM_8)")
            if suite.is_anonymous:
                problems.append("anonymous")
            if name == "TLS 1.2" and not re.match(r"TLS_(EC)?DHE_", suite.name):
                problems.append("no forward secrecy")
            if not key_is_allowed(s.ephemeral_key):
                problems.append(f"key exchange {describe_key(s.ephemeral_key)} not allowed")
            report.check(not problems, f"{name} {suite.name} (key exchange {describe_key(s.ephemeral_key)})",
                         ", ".join(problems))
    # Without accepted suites every check above would pass vacuously.
    report.check(total > 0, "handshakes completed: TLS 1.2/1.3 suites accepted", f"{total} suites")

    r = completed(report, scan, "elliptic_curves")
    if r is not None:
        groups = [c.name for c in r.supported_curves or []]
        bad = [g for g in groups if g not in ALLOWED_GROUPS]
        report.check(bool(groups) and not bad, f"key-exchange groups {groups}",
                     f"not allowed: {bad}" if bad else ("none found" if not groups else ""))

    r = completed(report, scan, "session_renegotiation")
    if r is not None:
        report.check(not r.is_vulnerable_to_client_renegotiation_dos, "client-initiated renegotiation refused",
                     f"{r.client_renegotiations_success_count} renegotiations accepted"
                     if r.is_vulnerable_to_client_renegotiation_dos else "")
        report.info(f"RFC 5746 renegotiation_info sent: {r.supports_secure_renegotiation}")

    r = completed(report, scan, "session_resumption")
    if r is not None:
        for kind, result_, ok_count, tried in [
            ("session id", r.session_id_resumption_result, r.session_id_successful_resumptions_count,
             r.session_id_attempted_resumptions_count),
            ("session ticket", r.tls_ticket_resumption_result, r.tls_ticket_successful_resumptions_count,
             r.tls_ticket_attempted_resumptions_count),
        ]:
            ok = ok_count == 0 and result_ in (TlsResumptionSupportEnum.NOT_SUPPORTED,
                                               TlsResumptionSupportEnum.SERVER_IS_TLS_1_3_ONLY)
            report.check(ok, f"TLS 1.2 resumption by {kind} refused",
                         f"{result_.name}, {ok_count}/{tried} resumed")

    r = completed(report, scan, "tls_compression")
    if r is not None:
        report.check(not r.supports_compression, "TLS compression refused")

    r = completed(report, scan, "tls_1_3_early_data")
    if r is not None:
        report.check(not r.supports_early_data, "TLS 1.3 early data (0-RTT) refused")


def python_resumption_checks(report, host, port):
    """sslyze tries resumption over TLS 1.2 only; TLS 1.3 tickets arrive after the handshake."""
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=str(SERVER_CA))
        ctx.minimum_version = ctx.maximum_version = version
        ctx.load_cert_chain(str(CLIENT_CERT), str(CLIENT_KEY))
        try:
            session, sent = None, False
            for attempt in range(2):
                with socket.create_connection((host, port), timeout=10) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                        if attempt == 1:
                            report.check(not tls.session_reused, f"{tls.version()} resumption refused",
                                         "the session was resumed" if tls.session_reused else "")
                            break
                        # A request makes the server's post-handshake messages (tickets) arrive.
                        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                        try:
                            while tls.recv(4096):
                                pass
                        except (ssl.SSLError, OSError):
                            pass
                        session, sent = tls.session, True
                        report.check(session is None or not session.has_ticket,
                                     f"{tls.version()} no session ticket issued")
        except (ssl.SSLError, OSError) as e:
            report.check(False, f"{version.name} handshake with the demo client certificate", repr(e))
        else:
            if not sent:
                report.check(False, f"{version.name} handshake with the demo client certificate")


def python_client_cert_checks(report, host, port):
    """The negative control: without the pinned certificate there is no handshake to scan."""
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=str(SERVER_CA))
        ctx.minimum_version = ctx.maximum_version = version
        what = f"{version.name} handshake without a client certificate refused"
        try:
            with socket.create_connection((host, port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    # TLS 1.3 clients learn of the refusal at their first read.
                    tls.sendall(request)
                    data = tls.recv(4096)
            report.check(not data, what, f"answered {data[:40]!r}" if data else "closed without a response")
        except ConnectionRefusedError as e:
            report.check(False, what, f"nothing to connect to: {e!r}")
        except (ssl.SSLError, OSError) as e:
            report.check(True, what, getattr(e, "reason", None) or repr(e))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def demo_config(example, tls_port, admin_port, upstream_port):
    """proxy.toml.example with loopback ports and absolute certificate paths."""
    cfg = tomllib.loads(example.read_text())
    cfg["listen"]["address"] = f"127.0.0.1:{tls_port}"
    for key in ("cert", "key"):
        cfg["tls"][key] = str((example.parent / cfg["tls"][key]).resolve())
    cfg["admin"]["address"] = f"127.0.0.1:{admin_port}"
    cfg["upstream"]["url"] = f"http://127.0.0.1:{upstream_port}"
    cfg.setdefault("log", {})["format"] = "text"
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items()) + "\n"
        for section, table in cfg.items()
    )


def start_hookgate(binary, example, tmp):
    tls_port, admin_port, upstream_port = free_port(), free_port(), free_port()
    config = tmp / "proxy.toml"
    config.write_text(demo_config(example, tls_port, admin_port, upstream_port))
    env = dict(os.environ)
    env.update(
        HOOKGATE_HEADER_SECRET=secrets.token_urlsafe(16),
        HOOKGATE_DEVELOPER_PAYLOAD=secrets.token_urlsafe(16),
        HOOKGATE_SIGNING_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    log = open(tmp / "hookgate.log", "wb")
    proc = subprocess.Popen([str(binary), "run", "--config", str(config)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=2) as r:
                if r.status == 200:
                    print(f"info hookgate {binary} ready on 127.0.0.1:{tls_port} ({example.name})")
                    return proc, tls_port
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    sys.exit(f"tls_scan: hookgate did not become ready:\n{(tmp / 'hookgate.log').read_text()}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--hookgate", type=Path, help="hookgate binary to start on the demo config")
    group.add_argument("--target", help="HOST:PORT of a TLS server already running")
    parser.add_argument("--config", type=Path, default=REPO / "proxy.toml.example")
    args = parser.parse_args()

    report = Report()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        if args.hookgate:
            proc, port = start_hookgate(args.hookgate.resolve(), args.config.resolve(), Path(tmp))
            host = "127.0.0.1"
        else:
            host, _, port = args.target.rpartition(":")
            port = int(port)
        try:
            sslyze_checks(report, host, port)
            python_resumption_checks(report, host, port)
            python_client_cert_checks(report, host, port)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                if report.failures:
                    print((Path(tmp) / "hookgate.log").read_text()[-4000:])
    took = time.monotonic() - started
    if report.failures:
        sys.exit(f"tls_scan: {report.failures} check(s) failed ({took:.0f}s)")
    print(f"tls_scan: all checks passed ({took:.0f}s)")


if __name__ == "__main__":
    main()
