//! The proxy side of PROXY protocol tests: v1 and v2 headers built byte by byte (HAProxy's
//! proxy-protocol.txt), a raw TLS ClientHello, the "closed before any TLS byte" assertion, and a
//! real HAProxy (`haproxy -f cfg -db`) forwarding TCP to hookgate with `send-proxy[-v2]`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::free_port;
use super::hookgate::Output;

/// `PROXY TCP4|TCP6 src dst sport dport\r\n`.
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A v2 PROXY command over TCP (family from `src`; `dst` must be the same family).
pub fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut addrs = Vec::new();
    let family = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
            0x11 // AF_INET, STREAM
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            addrs.extend_from_slice(&s.ip().octets());
            addrs.extend_from_slice(&d.ip().octets());
            0x21 // AF_INET6, STREAM
        }
        _ => panic!("v2 header needs source and destination of the same family"),
    };
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(family);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

/// A v2 LOCAL command (a proxy's own health check): no address block.
pub fn v2_local() -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    h
}

/// Connects to `addr` and writes `header` (the TLS handshake may follow on the stream).
pub async fn connect_with(addr: SocketAddr, header: &[u8]) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.expect("connect to hookgate");
    tcp.write_all(header).await.expect("write PROXY header");
    tcp
}

/// The bytes of a real TLS ClientHello for `localhost` (what a client sends first).
pub fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from("localhost").expect("name"),
    )
    .expect("client connection");
    let mut out = Vec::new();
    conn.write_tls(&mut out).expect("ClientHello");
    assert_eq!(out.first(), Some(&0x16), "a TLS handshake record");
    out
}

/// Asserts hookgate closes `tcp` without writing a single byte (no TLS, no HTTP) within 5 s:
/// the read ends in EOF or a reset. Returns how long the close took.
pub async fn expect_closed_silently(tcp: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 512];
    match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await {
        Err(_) => panic!("hookgate kept the connection open for 5s"),
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => panic!(
            "hookgate wrote {n} bytes before closing: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Ok(Err(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
            ),
            "unexpected error instead of a close: {e:?}"
        ),
    }
    started.elapsed()
}

/// A real HAProxy in TCP mode: `frontend` on a free loopback port, one backend server (hookgate)
/// with `send-proxy-v2` or `send-proxy`. Killed by PID on drop.
pub struct Haproxy {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    pub stderr: Output,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Panics (does not skip) when haproxy is missing; waits until the frontend listens.
    pub fn start(backend: SocketAddr, send_proxy: &str) -> Haproxy {
        let found = Command::new("haproxy")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "`haproxy` is required by this test (the real PROXY protocol sender) but was not found; install it: apt-get install -y haproxy"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = free_port();
        let cfg = format!(
            "global\n  maxconn 100\n\
             defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 20s\n  timeout server 20s\n\
             frontend fe\n  bind {addr}\n  default_backend gate\n\
             backend gate\n  server gate {backend} {send_proxy}\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, cfg).expect("write haproxy.cfg");
        let mut child = Command::new("haproxy")
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn haproxy");
        let stderr = Output::collect(child.stderr.take().expect("stderr"));
        let mut h = Haproxy {
            child,
            addr,
            stderr,
            _dir: dir,
        };
        h.wait_listening();
        h
    }

    /// Polls /proc/net/tcp for the frontend's LISTEN socket: probing with a connection would
    /// send a PROXY header and a dead connection to hookgate.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let needle = format!("0100007F:{:04X} 00000000:0000 0A", self.addr.port());
        loop {
            let mut table = String::new();
            std::fs::File::open(Path::new("/proc/net/tcp"))
                .and_then(|mut f| f.read_to_string(&mut table))
                .expect("read /proc/net/tcp");
            if table.contains(&needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                panic!("haproxy exited with {status}: {}", self.stderr.text());
            }
            assert!(
                Instant::now() < deadline,
                "haproxy not listening on {} within 10s: {}",
                self.addr,
                self.stderr.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
