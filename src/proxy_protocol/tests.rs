use super::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const V1_TCP4: &[u8] = b"PROXY TCP4 203.0.113.7 192.0.2.1 56324 443\r\n";
const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 65535 0\r\n";
const V1_UNKNOWN: &[u8] = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";

fn v2(ver_cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend([ver_cmd, fam]);
    h.extend(
        u16::try_from(payload.len())
            .expect("test payload fits")
            .to_be_bytes(),
    );
    h.extend(payload);
    h
}

fn v2_tcp4(tlvs: &[u8]) -> Vec<u8> {
    let mut p = vec![203, 0, 113, 7, 192, 0, 2, 1, 0xdc, 0x04, 0x01, 0xbb];
    p.extend(tlvs);
    v2(0x21, 0x11, &p)
}

fn v2_tcp6(tlvs: &[u8]) -> Vec<u8> {
    let mut p = "2001:db8::1"
        .parse::<Ipv6Addr>()
        .expect("ip")
        .octets()
        .to_vec();
    p.extend("2001:db8::2".parse::<Ipv6Addr>().expect("ip").octets());
    p.extend([0x30, 0x39, 0x01, 0xbb]);
    p.extend(tlvs);
    v2(0x21, 0x21, &p)
}

/// An ALPN TLV ("h2") and an authority TLV, as HAProxy may send them.
const TLVS: &[u8] = b"\x01\x00\x02h2\x02\x00\x0bexample.com";

fn addr(s: &str) -> ProxiedSource {
    ProxiedSource::Address(s.parse().expect("test address"))
}

fn parsed(buf: &[u8]) -> (ProxiedSource, usize) {
    parse_proxy_header(buf)
        .expect("valid header")
        .expect("complete header")
}

#[test]
fn parses_every_valid_v1_form() {
    assert_eq!(parsed(V1_TCP4), (addr("203.0.113.7:56324"), V1_TCP4.len()));
    assert_eq!(
        parsed(V1_TCP6),
        (addr("[2001:db8::1]:65535"), V1_TCP6.len())
    );
    assert_eq!(parsed(V1_UNKNOWN), (ProxiedSource::Local, V1_UNKNOWN.len()));
    assert_eq!(parsed(b"PROXY UNKNOWN\r\n"), (ProxiedSource::Local, 15));
    let mapped = b"PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n";
    assert_eq!(parsed(mapped).0, addr("[::ffff:203.0.113.7]:1"));
}

#[test]
fn parses_a_107_byte_v1_header_but_not_more() {
    let mut max = b"PROXY UNKNOWN ".to_vec();
    max.resize(V1_MAX_LEN - 2, b'x');
    max.extend(b"\r\n");
    assert_eq!(parsed(&max), (ProxiedSource::Local, V1_MAX_LEN));
    max.insert(20, b'x');
    assert!(matches!(
        parse_proxy_header(&max),
        Err(ProxyHeaderError::V1TooLong)
    ));
}

#[test]
fn parses_every_valid_v2_form() {
    let cases = [
        (v2_tcp4(&[]), addr("203.0.113.7:56324")),
        (v2_tcp4(TLVS), addr("203.0.113.7:56324")),
        (v2_tcp6(&[]), addr("[2001:db8::1]:12345")),
        (v2_tcp6(TLVS), addr("[2001:db8::1]:12345")),
        (v2(0x20, 0x00, &[]), ProxiedSource::Local),
        (v2(0x20, 0x11, &[1; 12]), ProxiedSource::Local),
        (v2(0x21, 0x00, &[]), ProxiedSource::Local),
    ];
    for (header, want) in cases {
        assert_eq!(parsed(&header), (want, header.len()), "{header:x?}");
    }
}

#[test]
fn stops_at_the_header_end_and_ignores_what_follows() {
    for header in [V1_TCP4.to_vec(), v2_tcp4(TLVS), v2(0x20, 0, &[])] {
        let mut with_hello = header.clone();
        with_hello.extend(b"\x16\x03\x01\x02\x00\x01");
        assert_eq!(parsed(&with_hello).1, header.len());
    }
}

#[test]
fn asks_for_more_bytes_for_every_strict_prefix() {
    for header in [
        V1_TCP4.to_vec(),
        V1_TCP6.to_vec(),
        v2_tcp6(TLVS),
        v2(0x20, 0, &[]),
    ] {
        for cut in 0..header.len() {
            let got = parse_proxy_header(&header[..cut]).expect("prefix is not an error");
            assert!(got.is_none(), "cut at {cut} of {header:x?}");
        }
    }
}

fn rejects(buf: &[u8]) -> ProxyHeaderError {
    match parse_proxy_header(buf) {
        Err(e) => e,
        Ok(got) => panic!("accepted {:?}: {got:?}", String::from_utf8_lossy(buf)),
    }
}

#[test]
fn rejects_malformed_v1_headers() {
    let bad: &[&[u8]] = &[
        b"PROXY TCP4  203.0.113.7 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 \r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2 3\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 +1 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 -2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 01 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 999999\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1  2\r\n",
        b"PROXY TCP4 2001:db8::1 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 ::1 1 2\r\n",
        b"PROXY TCP6 203.0.113.7 ::1 1 2\r\n",
        b"PROXY TCP6 ::1 203.0.113.7 1 2\r\n",
        b"PROXY TCP4 203.000.113.7 192.0.2.1 1 2\r\n",
        b"PROXY TCP4 203.0.113 192.0.2.1 1 2\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
        b"PROXY TCP5 203.0.113.7 192.0.2.1 1 2\r\n",
        b"PROXY tcp4 203.0.113.7 192.0.2.1 1 2\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY \r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\r\n",
        b"PROXY TCP4 203.0.113.7\t192.0.2.1 1 2\r\n",
        b"PROXY TCP4 203.0.113.7 192.0.2.1 1 \xff2\r\n",
        b"PROXY\tTCP4 203.0.113.7 192.0.2.1 1 2\r\n",
        b"proxy TCP4 203.0.113.7 192.0.2.1 1 2\r\n",
    ];
    for header in bad {
        let e = rejects(header);
        assert!(
            matches!(
                e,
                ProxyHeaderError::MalformedV1(_) | ProxyHeaderError::NotProxyHeader
            ),
            "{e}"
        );
    }
    assert!(matches!(
        rejects(&[b'P'; 200]),
        ProxyHeaderError::NotProxyHeader
    ));
    let mut endless = b"PROXY TCP4 ".to_vec();
    endless.resize(V1_MAX_LEN, b'1');
    assert!(matches!(rejects(&endless), ProxyHeaderError::V1TooLong));
}

#[test]
fn rejects_malformed_v2_headers() {
    use ProxyHeaderError as E;
    let addrs4 = [1u8; 12];
    assert!(matches!(
        rejects(&v2(0x11, 0x11, &addrs4)),
        E::BadV2Version(1)
    ));
    assert!(matches!(
        rejects(&v2(0x31, 0x11, &addrs4)),
        E::BadV2Version(3)
    ));
    assert!(matches!(
        rejects(&v2(0x22, 0x11, &addrs4)),
        E::BadV2Command(2)
    ));
    assert!(matches!(
        rejects(&v2(0x2f, 0x11, &addrs4)),
        E::BadV2Command(15)
    ));
    assert!(matches!(
        rejects(&v2(0x21, 0x41, &addrs4)),
        E::BadV2Family(0x41)
    ));
    assert!(matches!(
        rejects(&v2(0x21, 0x13, &addrs4)),
        E::BadV2Family(0x13)
    ));
    for unsupported in [0x12, 0x22, 0x31, 0x32, 0x10, 0x20] {
        let e = rejects(&v2(0x21, unsupported, &[1; 216]));
        assert!(
            matches!(e, E::UnsupportedV2Transport(_)),
            "{unsupported:#x}: {e}"
        );
    }
    let e = rejects(&v2(0x21, 0x11, &[1; 11]));
    assert!(matches!(
        e,
        E::V2AddressTooShort {
            declared: 11,
            needed: 12,
            ..
        }
    ));
    let e = rejects(&v2(0x21, 0x21, &[1; 35]));
    assert!(matches!(
        e,
        E::V2AddressTooShort {
            declared: 35,
            needed: 36,
            ..
        }
    ));
    let e = rejects(&v2(0x21, 0x21, &[1; 12]));
    assert!(matches!(e, E::V2AddressTooShort { .. }));
    assert!(matches!(
        parsed(&v2(0x21, 0x11, &[0; V2_MAX_PAYLOAD])).1,
        MAX_HEADER_LEN
    ));
    // The oversized length is refused from the fixed part alone, without its payload.
    let mut too_long = v2(0x21, 0x11, &[]);
    too_long[14..16].copy_from_slice(&4097u16.to_be_bytes());
    assert!(matches!(
        rejects(&too_long),
        E::V2TooLong { declared: 4097 }
    ));
    let mut bad_sig = v2_tcp4(&[]);
    bad_sig[11] = b'\r';
    assert!(matches!(rejects(&bad_sig), E::NotProxyHeader));
}

#[test]
fn rejects_a_tls_client_hello_and_plain_http() {
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    for start in [
        &hello[..],
        &hello[..1],
        b"POST /hook HTTP/1.1\r\n",
        b"\r\n\r\n\0\r\nQUIX",
    ] {
        assert!(matches!(rejects(start), ProxyHeaderError::NotProxyHeader));
    }
}

/// What HAProxy 2.6.12 (Debian 12) sent with `send-proxy`, `send-proxy-v2` and
/// `send-proxy-v2 proxy-v2-options crc32c,unique-id`, each followed by the client's first
/// bytes `\x16\x03\x01AFTER`; captured with a raw TCP listener behind a TCP-mode backend.
const HAPROXY_CAPTURES: [(&str, &str); 5] = [
    ("50524f58592054435034203132372e302e302e31203132372e302e302e312034313931302035393139350d0a1603014146544552", "127.0.0.1:41910"),
    ("50524f58592054435036203a3a31203a3a312034303839342035393139350d0a1603014146544552", "[::1]:40894"),
    ("0d0a0d0a000d0a515549540a2111000c7f0000017f00000190f2acaf1603014146544552", "127.0.0.1:37106"),
    ("0d0a0d0a000d0a515549540a212100240000000000000000000000000000000100000000000000000000000000000001b3c8acaf1603014146544552", "[::1]:46024"),
    ("0d0a0d0a000d0a515549540a2111003f7f0000017f000001bae6b48b03000434bdbf6e05002937463030303030313a424145365f37463030303030313a423438425f36423042373243305f303030341603014146544552", "127.0.0.1:47846"),
];

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("test hex"))
        .collect()
}

#[test]
fn parses_headers_captured_from_haproxy() {
    for (hex, client) in HAPROXY_CAPTURES {
        let bytes = unhex(hex);
        let after = b"\x16\x03\x01AFTER".len();
        assert_eq!(parsed(&bytes), (addr(client), bytes.len() - after), "{hex}");
    }
}

/// A connected pair over real loopback TCP: (client side, accepted server side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr"));
    let (client, accepted) = tokio::join!(client, listener.accept());
    let client = client.expect("connect");
    client.set_nodelay(true).expect("nodelay");
    (client, accepted.expect("accept").0)
}

/// Writes `bytes` in `chunk`-sized writes with pauses, so the reader sees partial headers.
async fn trickle(client: &mut TcpStream, bytes: &[u8], chunk: usize) {
    for part in bytes.chunks(chunk) {
        client.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn reads_a_trickled_header_and_leaves_the_next_bytes_unread() {
    let after = b"\x16\x03\x01\x00\x05hello";
    let cases = [
        (V1_TCP4.to_vec(), addr("203.0.113.7:56324"), 1),
        (V1_UNKNOWN.to_vec(), ProxiedSource::Local, 3),
        (v2_tcp4(TLVS), addr("203.0.113.7:56324"), 1),
        (v2_tcp6(TLVS), addr("[2001:db8::1]:12345"), 5),
        (v2(0x20, 0x00, &[]), ProxiedSource::Local, 7),
    ];
    for (header, want, chunk) in cases {
        let (mut client, mut server) = tcp_pair().await;
        let writer = tokio::spawn(async move {
            // The last header byte shares a segment with what follows, as a ClientHello
            // sent right behind the header would.
            let (head, last) = header.split_at(header.len() - 1);
            trickle(&mut client, head, chunk).await;
            trickle(&mut client, &[last, &after[..]].concat(), 32).await;
            client.shutdown().await.expect("shutdown");
            client
        });
        assert_eq!(read_proxy_header(&mut server).await.expect("header"), want);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.expect("read rest");
        assert_eq!(rest, after);
        drop(writer.await.expect("writer"));
    }
}

#[tokio::test]
async fn reads_a_header_sent_together_with_the_client_hello() {
    let (mut client, mut server) = tcp_pair().await;
    let mut bytes = v2_tcp4(TLVS);
    bytes.extend(b"\x16\x03\x01");
    client.write_all(&bytes).await.expect("write");
    let source = read_proxy_header(&mut server).await.expect("header");
    assert_eq!(
        source
            .client_addr("127.0.0.1:1".parse().expect("ip"))
            .port(),
        56324
    );
    let mut next = [0u8; 3];
    let read = tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut next));
    read.await
        .expect("bytes after the header still unread")
        .expect("read");
    assert_eq!(&next, b"\x16\x03\x01");
}

#[tokio::test]
async fn fails_on_eof_in_the_middle_of_the_header() {
    for header in [V1_TCP6.to_vec(), v2_tcp6(&[]), v2_tcp6(&[])[..10].to_vec()] {
        let (mut client, mut server) = tcp_pair().await;
        let half = header.len() / 2;
        trickle(&mut client, &header[..half], 3).await;
        client.shutdown().await.expect("shutdown");
        let e = read_proxy_header(&mut server).await.expect_err("truncated");
        assert!(matches!(e, ProxyHeaderError::UnexpectedEof { received } if received == half));
    }
}

#[tokio::test]
async fn rejects_a_client_hello_at_once_without_waiting_for_more() {
    let (mut client, mut server) = tcp_pair().await;
    client
        .write_all(b"\x16\x03\x01\x02\x00")
        .await
        .expect("write");
    let got = tokio::time::timeout(Duration::from_secs(5), read_proxy_header(&mut server));
    let e = got.await.expect("no waiting").expect_err("not a header");
    assert!(matches!(e, ProxyHeaderError::NotProxyHeader));
    drop(client);
}

#[tokio::test]
async fn waits_for_the_rest_of_an_incomplete_header() {
    let (mut client, mut server) = tcp_pair().await;
    client.write_all(&V1_TCP4[..20]).await.expect("write");
    let got = tokio::time::timeout(Duration::from_millis(100), read_proxy_header(&mut server));
    assert!(
        got.await.is_err(),
        "an incomplete header must keep the reader waiting"
    );
    drop(client);
}

/// xorshift64*: deterministic, dependency-free randomness for the fuzz test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn mutate(rng: &mut Rng, buf: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(buf.len() + 1);
        match rng.below(6) {
            0 if at < buf.len() => buf[at] ^= 1 << rng.below(8),
            1 => buf.truncate(at),
            2 => (0..=rng.below(8)).for_each(|_| buf.insert(at, rng.byte())),
            3 if at < buf.len() => drop(buf.remove(at)),
            4 if at < buf.len() => buf[at] = rng.byte(),
            // Valid-looking lengths and separators steer mutations into deep paths.
            _ => buf.insert(
                at,
                *b" \r\n0.:\x00\x10".get(rng.below(8)).expect("in range"),
            ),
        }
    }
}

fn check_invariants(rng: &mut Rng, buf: &[u8]) {
    if let Ok(Some((source, n))) = parse_proxy_header(buf) {
        assert!(n <= buf.len(), "length {n} beyond {} bytes", buf.len());
        // The header alone decides the result, and every shorter prefix asks for more: the
        // reader relies on this to consume Ok(None) bytes safely.
        assert_eq!(parsed(&buf[..n]), (source, n));
        let cut = rng.below(n);
        assert!(
            matches!(parse_proxy_header(&buf[..cut]), Ok(None)),
            "{buf:x?} cut {cut}"
        );
    }
}

#[test]
fn survives_200k_random_mutations_and_random_bytes() {
    let seeds = [
        V1_TCP4.to_vec(),
        V1_TCP6.to_vec(),
        V1_UNKNOWN.to_vec(),
        v2_tcp4(&[]),
        v2_tcp4(TLVS),
        v2_tcp6(&[]),
        v2_tcp6(TLVS),
        v2(0x20, 0x00, &[]),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for i in 0..240_000 {
        let mut buf = if i % 8 == 7 {
            (0..rng.below(64)).map(|_| rng.byte()).collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        mutate(&mut rng, &mut buf);
        check_invariants(&mut rng, &buf);
        accepted += usize::from(matches!(parse_proxy_header(&buf), Ok(Some(_))));
    }
    // Some mutations must stay valid, or the fuzzer is only exercising the first check.
    assert!(accepted > 1_000, "only {accepted} mutated headers parsed");
}
