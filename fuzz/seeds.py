#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ from hookgate's own tests and fixtures.

Run from the repository root: python3 fuzz/seeds.py. The seeds are the starting point of a
campaign; a campaign grows fuzz/corpus/<target>/ and `cargo fuzz cmin` shrinks it to what is
committed (inputs covering the same edges as these seeds are kept).
"""
import hashlib
import ipaddress
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"


def write(target, items):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for data in items:
        if isinstance(data, str):
            data = data.encode()
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{target}: {len(list(d.iterdir()))} seeds")


# ---------------------------------------------------------------- proxy_header
SIG = b"\r\n\r\n\0\r\nQUIT\n"
HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def v2(ver_cmd, fam, payload):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(payload)) + payload


tcp4 = bytes([203, 0, 113, 7, 192, 0, 2, 1, 0xDC, 0x04, 0x01, 0xBB])
tcp6 = (ipaddress.IPv6Address("2001:db8::1").packed + ipaddress.IPv6Address("2001:db8::2").packed
        + b"\x30\x39\x01\xbb")
tlvs = b"\x01\x00\x02h2\x02\x00\x0bexample.com"
proxy = [
    b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n",
    b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n",
    b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    b"PROXY UNKNOWN\r\n",
    b"PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n",
    b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 01 2\r\n",
    b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n",
    v2(0x21, 0x11, tcp4), v2(0x21, 0x11, tcp4 + tlvs), v2(0x21, 0x21, tcp6), v2(0x21, 0x21, tcp6 + tlvs),
    v2(0x20, 0x00, b""), v2(0x20, 0x11, bytes([1] * 12)), v2(0x21, 0x00, b""),
    v2(0x21, 0x31, bytes([1] * 216)), v2(0x21, 0x12, tcp4), v2(0x21, 0x11, bytes([1] * 11)),
    v2(0x21, 0x21, bytes([1] * 35)), v2(0x21, 0x11, bytes(4096)),
    SIG + b"\x21\x11\x10\x01",  # declares 4097 bytes
    b"POST /hook HTTP/1.1\r\n", HELLO,
]
proxy += [h + HELLO for h in proxy[:3] + proxy[9:12]]
# HAProxy 2.6 captures (src/proxy_protocol/tests.rs HAPROXY_CAPTURES), each followed by bytes.
tests = (ROOT / "src/proxy_protocol/tests.rs").read_text()
proxy += [bytes.fromhex(h) for h in re.findall(r'\("([0-9a-f]{40,})"', tests)]
write("proxy_header", proxy)

# ---------------------------------------------------------------- list bodies
SHA256 = "d052677b39ea11445de153d0a88faf9a914af1cf26cfa2393fe57688e6d8d46f"
SHA1 = "FD:61:0F:96:3D:B8:7F:44:2B:67:C3:67:E9:E5:43:C6:C6:C0:CB:08"
lists = [
    f"# sender's pins\n{SHA256}\n\n{SHA1}  # old\n",
    "# sender's ranges\n\n203.0.113.0/24  # eu\n  198.51.100.7\n2001:db8::/32\n::ffff:192.0.2.1\n",
    "203.0.113.0/24\nnot-an-ip\n",
    f"{SHA256.upper()}\r\nfd610f96-3db87f44-2b67c367-e9e543c6-c6c0cb08\r\n",
    "10.0.0.0/8\n192.0.2.0/24\n0.0.0.0/0\n::/0\n203.0.113.9/16\n",
    "abcd\n",
]
write("list_file", lists)
remote = lists + [
    f'["{SHA256}", "nope", " {SHA1} ", "zz"]',
    f'{{"status":"ok","data":{{"certificates":["{SHA1}","{SHA256}"]}}}}',
    '{"ipRanges": {"v4": ["10.0.0.0/8", "192.0.2.0/24"], "v6": ["2001:db8::/32"]}}',
    f'[{{"thumbprint":"{SHA256}","name":"prod"}}, {{"name":"staging","meta":{{"sha1":"{SHA1}"}}}},'
    ' {"name":"none here"}, 7, null, true, [["198.51.100.7"]]]',
    '{"clientIp":"203.0.113.7","list":["203.0.113.0/24"],"count":1}',
    '{"certificates": ["zz", 42, "abc"]}', '{"error":"unauthorized"}',
    "\ufeff  [\"192.0.2.1\"]", "[\"abcd\",\nabcd", "<html>502 Bad Gateway</html>",
    b"abcd\n\xff\xfe\n", "", "[]", "{}", '["' + "x" * 500 + '","a\\u001bb","c","d","e","f","g"]',
]
write("remote_list", remote)

# ---------------------------------------------------------------- config_toml
configs = [(ROOT / p).read_text() for p in ["proxy.toml.example", "deploy/systemd/proxy.toml"]]
for p in ["deploy/kubernetes/base/configmap-hookgate.yaml",
          "deploy/kubernetes/aws-nlb-proxy-protocol/configmap-hookgate.patch.yaml"]:
    text = (ROOT / p).read_text().split("proxy.toml: |\n", 1)[1]
    configs.append("".join(line[4:] + "\n" for line in text.splitlines()
                           if line.startswith("    ") or not line.strip()))
minimal = f'[tls]\ncert = "server.pem"\nkey = "server.key"\n\n[thumbprints]\nallow = ["{SHA256}"]\n'
configs += [minimal, '[tls]\ncert = "a"\nkey = "b"\n', minimal.replace("d052677b", "zz")]
configs += [minimal + "\n" + extra for extra in [
    "[request]\nmax_bodyy = 10\n", '[listen]\nheader_timeout = "soon"\n',
    "[listen]\nproxy_protocol = true\n", '[listen]\nproxy_protocol = true\ntrusted_proxies = ["10.0.0.0/8"]\n',
    '[upstream]\nurl = "http://app:9000/base/"\n', '[upstream]\nurl = "unix:/run/app.sock"\n',
    '[upstream]\nurl = "http://[::1]:8080"\n', '[upstream]\nurl = "unix:relative.sock"\n',
    '[required_header]\nvalues = ["inline", { env = "X" }, { file = "s.txt" }]\n',
    '[required_header]\nvalues = [{ vault = "x" }]\n', '[request]\nmethods = ["post"]\n',
    '[source_ips]\nurl = "http://api.example.com/ips"\n', "[source_ips]\n",
    '[request]\nmax_body = "16MiB"\nmax_buffered = "1MiB"\nstrip_headers = ["X-Debug"]\n',
    '[source_ips]\nurl = "https://api.example.com/ips?token=x"\nurl_ca = "ca.pem"\n'
    'url_headers = { Authorization = { env = "LIST_TOKEN" } }\nrefresh = "1h"\ncache = "ips.cache"\n',
    '[developer_payload]\npointer = "/a~1b/0"\nvalues = [{ env = "P" }]\npath_prefixes = ["/hooks/"]\n',
    '[identity]\nkey = { file = "key.b64" }\nkey_id = "k 1"\n', '[admin]\naddress = ""\n',
    '[log]\nformat = "text"\nlevel = "hookgate=debug,info"\n',
    '[listen]\naddress = "[::]:8443"\nbody_timeout = "5m"\nmax_connections = 0\n',
]]
write("config_toml", configs)
