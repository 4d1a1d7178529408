//! Micro-benchmarks of the per-connection and per-request pure functions (issue 7), so a
//! regression shows up without the full `../shared/bench` harness. Run with
//! `cargo bench --bench hot_paths` (add a filter such as `-- pins` to run one group).
//! Inputs are synthetic but sized like real traffic; each setup asserts the case it claims.

use std::net::IpAddr;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use hookgate::bench_api as api;
use http::{HeaderMap, HeaderName, HeaderValue};

fn main() {
    // Most cases take well under a microsecond, so divan keeps one iteration per sample; 500
    // samples (instead of 100) steady the median. `--sample-count N` on the command line wins.
    divan::Divan::default()
        .sample_count(500)
        .config_with_args()
        .main();
}

/// Deterministic pseudo-random bytes (xorshift64), standing in for a certificate's DER: the
/// functions under test only hash, compare or base64 it.
fn fake_der(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An ECDSA P-256 client certificate is ~450 bytes of DER: ~600 bytes of base64 in `Client-Cert`.
fn leaf_der() -> Vec<u8> {
    fake_der(450, 1)
}

fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for &(name, value) in pairs {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    map
}

/// A realistic 12-header inbound webhook request, with three forged identity headers and a
/// hop-by-hop `Connection`.
fn inbound_headers() -> HeaderMap {
    header_map(&[
        ("host", "hooks.example.com"),
        (
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        ),
        ("content-type", "application/json; charset=utf-8"),
        ("content-length", "1024"),
        ("accept", "*/*; q=0.5, application/xml"),
        ("accept-encoding", "gzip"),
        ("connection", "keep-alive"),
        ("x-webhook-secret", "whsec_7fQm2LrX9vTn4KpB8dZs1YcW6hJa3EuG"),
        (
            "stripe-signature",
            "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
        ),
        ("x-forwarded-for", "203.0.113.66"),
        ("client-cert", ":Zm9yZ2VkIGNlcnRpZmljYXRl:"),
        (
            "x-client-cert-sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
    ])
}

const REQUEST_ID: &str = "3f2b8c1e-9d4a-4e6b-a7c5-1b2d3e4f5a6b";

mod pins {
    use super::*;

    /// `n` SHA-256 pins, the leaf's among them when `with_leaf`.
    fn sha256_pins(n: usize, leaf: &[u8], with_leaf: bool) -> Vec<String> {
        let mut pins: Vec<String> = (0..n as u64)
            .map(|i| api::hex(&api::sha256(&fake_der(450, 1000 + i))))
            .collect();
        if with_leaf {
            pins[n / 2] = api::hex(&api::sha256(leaf));
        }
        pins
    }

    fn set(pins: &[String]) -> api::PinSet {
        api::PinSet::new(pins.iter().map(String::as_str))
    }

    #[divan::bench(args = [3, 100])]
    fn sha256_hit(bencher: Bencher, n: usize) {
        let leaf = leaf_der();
        let leaf256 = api::sha256(&leaf);
        let pins = set(&sha256_pins(n, &leaf, true));
        assert!(pins.is_pinned(&leaf256, &leaf));
        bencher.bench_local(|| black_box(&pins).is_pinned(black_box(&leaf256), black_box(&leaf)));
    }

    /// No SHA-1 pins: a miss is one binary search, no hashing.
    #[divan::bench(args = [3, 100])]
    fn miss(bencher: Bencher, n: usize) {
        let leaf = leaf_der();
        let leaf256 = api::sha256(&leaf);
        let pins = set(&sha256_pins(n, &leaf, false));
        assert!(!pins.is_pinned(&leaf256, &leaf));
        bencher.bench_local(|| black_box(&pins).is_pinned(black_box(&leaf256), black_box(&leaf)));
    }

    /// The leaf is pinned by SHA-1 only: the SHA-256 search misses, then SHA-1 of the DER.
    #[divan::bench(args = [3, 100])]
    fn sha1_pin_hit(bencher: Bencher, n: usize) {
        let leaf = leaf_der();
        let leaf256 = api::sha256(&leaf);
        let mut pins = sha256_pins(n - 1, &leaf, false);
        pins.push(api::hex(&api::sha1(&leaf)));
        let pins = set(&pins);
        assert!(pins.is_pinned(&leaf256, &leaf));
        bencher.bench_local(|| black_box(&pins).is_pinned(black_box(&leaf256), black_box(&leaf)));
    }

    /// The worst case: a SHA-1 pin exists but neither digest matches.
    #[divan::bench(args = [3, 100])]
    fn sha1_pins_miss(bencher: Bencher, n: usize) {
        let leaf = leaf_der();
        let leaf256 = api::sha256(&leaf);
        let mut pins = sha256_pins(n - 1, &leaf, false);
        pins.push(api::hex(&api::sha1(&fake_der(450, 7))));
        let pins = set(&pins);
        assert!(!pins.is_pinned(&leaf256, &leaf));
        bencher.bench_local(|| black_box(&pins).is_pinned(black_box(&leaf256), black_box(&leaf)));
    }
}

mod networks {
    use super::*;

    /// `n` scattered ranges as a sender publishes them (3/4 IPv4 of mixed prefix lengths, 1/4
    /// IPv6 /48s), and one IPv4 and one IPv6 address inside a middle range.
    fn published(n: usize) -> (api::SourceNetworks, IpAddr, IpAddr) {
        let v4 = n * 3 / 4;
        let mut cidrs = Vec::with_capacity(n);
        for i in 0..v4 {
            let prefix = [20, 22, 24, 24, 24, 26, 28, 32][i % 8];
            // First octets 20..=169 only, so the miss address (198.51.100.7) is outside.
            let (a, b, c) = (20 + (i * 7) % 150, (i * 37) % 256, (i * 11) % 256);
            cidrs.push(format!("{a}.{b}.{c}.0/{prefix}"));
        }
        for i in v4..n {
            cidrs.push(format!("2001:db8:{i:x}::/48"));
        }
        let nets = api::SourceNetworks::new(cidrs.iter().map(String::as_str));
        let hit4 = cidrs[v4 / 2]
            .split('/')
            .next()
            .expect("cidr")
            .parse()
            .expect("ip");
        let hit6 = format!("2001:db8:{:x}::1", v4 + (n - v4) / 2)
            .parse()
            .expect("ip");
        (nets, hit4, hit6)
    }

    #[divan::bench(args = [50, 200])]
    fn ipv4_hit(bencher: Bencher, n: usize) {
        let (nets, hit4, _) = published(n);
        assert!(nets.contains(hit4));
        bencher.bench_local(|| black_box(&nets).contains(black_box(hit4)));
    }

    #[divan::bench(args = [50, 200])]
    fn ipv4_miss(bencher: Bencher, n: usize) {
        let (nets, _, _) = published(n);
        let miss: IpAddr = "198.51.100.7".parse().expect("ip");
        assert!(!nets.contains(miss));
        bencher.bench_local(|| black_box(&nets).contains(black_box(miss)));
    }

    #[divan::bench(args = [50, 200])]
    fn ipv6_hit(bencher: Bencher, n: usize) {
        let (nets, _, hit6) = published(n);
        assert!(nets.contains(hit6));
        bencher.bench_local(|| black_box(&nets).contains(black_box(hit6)));
    }

    /// `::ffff:a.b.c.d` from a dual-stack `[::]` listener, matched against the IPv4 ranges.
    #[divan::bench(args = [50, 200])]
    fn ipv4_mapped_hit(bencher: Bencher, n: usize) {
        let (nets, hit4, _) = published(n);
        let IpAddr::V4(v4) = hit4 else {
            unreachable!("hit4 is IPv4")
        };
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert!(nets.contains(mapped));
        bencher.bench_local(|| black_box(&nets).contains(black_box(mapped)));
    }
}

mod signature {
    use super::*;

    /// Signature base + HMAC-SHA256 with the values hookgate really sets.
    #[divan::bench]
    fn sign(bencher: Bencher) {
        let leaf = leaf_der();
        let client_cert = format!(":{}:", STANDARD.encode(&leaf));
        assert!((600..=620).contains(&client_cert.len()));
        let cert_sha256 = api::hex(&api::sha256(&leaf));
        let digest = api::content_digest([&b"{}"[..]]);
        let signer = api::IdentitySigner::new(&[0x42; 32], "hookgate-1");
        let covered = api::Covered {
            method: "POST",
            path: "/webhooks/stripe",
            query: Some("source=live"),
            content_digest: digest.as_bytes(),
            client_cert: client_cert.as_bytes(),
            client_cert_sha256: cert_sha256.as_bytes(),
            forwarded_for: b"203.0.113.7",
            forwarded: b"for=203.0.113.7;proto=https",
            forwarded_proto: b"https",
            request_id: REQUEST_ID.as_bytes(),
        };
        bencher
            .bench_local(|| black_box(&signer).sign(black_box(&covered), black_box(1_700_000_000)));
    }

    /// Streaming `Content-Digest` over the body in 16 KiB chunks (one TLS record each).
    #[divan::bench(args = [1024, 256 * 1024])]
    fn content_digest(bencher: Bencher, len: usize) {
        let body = fake_der(len, 3);
        bencher
            .counter(BytesCount::new(len))
            .bench_local(|| api::content_digest(black_box(&body).chunks(16 * 1024)));
    }
}

mod identity {
    use super::*;

    #[divan::bench]
    fn strip_inbound(bencher: Bencher) {
        let inbound = inbound_headers();
        bencher
            .with_inputs(|| inbound.clone())
            .bench_local_refs(api::strip_inbound);
    }

    /// The whole rewrite: strip, then set the seven identity headers.
    #[divan::bench]
    fn strip_then_apply(bencher: Bencher) {
        let inbound = inbound_headers();
        let leaf = leaf_der();
        let identity = api::ClientIdentity::new("203.0.113.7".parse().expect("ip"), &leaf);
        let request_id = HeaderValue::from_static(REQUEST_ID);
        let digest = api::content_digest([&b"{}"[..]]);
        let mut check = inbound.clone();
        api::strip_inbound(&mut check);
        identity.apply(&mut check, &request_id, digest.clone());
        assert_eq!(
            check.len(),
            8 + 7,
            "8 inbound headers kept, 7 identity headers set"
        );
        assert_eq!(check["x-forwarded-for"], "203.0.113.7");
        bencher
            .with_inputs(|| (inbound.clone(), digest.clone()))
            .bench_local_values(|(mut headers, digest)| {
                api::strip_inbound(&mut headers);
                identity.apply(&mut headers, &request_id, digest);
                headers // dropped outside the timing
            });
    }
}

mod request_checks {
    use super::*;

    #[divan::bench(args = ["/webhooks/stripe", "/api/v2/hooks/shop%2D42/orders%20create"])]
    fn check_path(path: &str) -> Result<(), &'static str> {
        api::check_path(black_box(path))
    }

    /// One accepted value, or two during a secret rotation (every value is compared).
    #[divan::bench(args = [1, 2])]
    fn required_header_hit(bencher: Bencher, values: usize) {
        let headers = inbound_headers();
        let accepted = [
            "whsec_7fQm2LrX9vTn4KpB8dZs1YcW6hJa3EuG",
            "whsec_next_rotation_value_012345678901",
        ];
        let check =
            api::RequiredHeader::new("x-webhook-secret", accepted[..values].iter().copied());
        assert_eq!(check.check(&headers), Ok(()));
        bencher.bench_local(|| black_box(&check).check(black_box(&headers)));
    }

    /// A wrong value of the right length: the full constant-time comparison (a length mismatch
    /// returns early and would time nothing).
    #[divan::bench]
    fn required_header_wrong(bencher: Bencher) {
        let headers = inbound_headers();
        let check = api::RequiredHeader::new(
            "x-webhook-secret",
            ["whsec_00000000000000000000000000000000"],
        );
        assert!(check.check(&headers).is_err());
        bencher.bench_local(|| black_box(&check).check(black_box(&headers)));
    }
}

mod http1_framing {
    use super::*;

    /// A typical 1 KiB webhook delivery: a ~400-byte head and a JSON body with Content-Length.
    fn request_1k() -> Vec<u8> {
        let head_without_length = "POST /webhooks/stripe?source=live HTTP/1.1\r\n\
             Host: hooks.example.com\r\n\
             User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n\
             Content-Type: application/json; charset=utf-8\r\n\
             Accept: */*; q=0.5, application/xml\r\n\
             Accept-Encoding: gzip\r\n\
             Connection: keep-alive\r\n\
             X-Webhook-Secret: whsec_7fQm2LrX9vTn4KpB8dZs1YcW6hJa3EuG\r\n\
             Stripe-Signature: t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd\r\n";
        let head_len = head_without_length.len() + "Content-Length: 600\r\n\r\n".len();
        let body_len = 1024 - head_len;
        let mut body =
            String::from("{\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"data\":{\"note\":\"");
        body.push_str(&"x".repeat(body_len - body.len() - 3));
        body.push_str("\"}}");
        let wire = format!("{head_without_length}Content-Length: {body_len}\r\n\r\n{body}");
        assert_eq!(wire.len(), 1024);
        wire.into_bytes()
    }

    /// `read_size` 16384: the whole request in one read; 256: the head spans reads.
    #[divan::bench(args = [16384, 256])]
    fn request_1k_in_reads_of(bencher: Bencher, read_size: usize) {
        let wire = request_1k();
        let mut reader = api::HeadReader::new(read_size);
        assert!(!reader.inspect(&wire));
        let ambiguous = String::from_utf8(wire.clone()).expect("ascii").replacen(
            "Connection:",
            "Transfer-Encoding: chunked\r\nConnection:",
            1,
        );
        assert!(
            reader.inspect(ambiguous.as_bytes()),
            "the wrapper drives the real framing decision"
        );
        bencher.bench_local(|| reader.inspect(black_box(&wire)));
    }
}
