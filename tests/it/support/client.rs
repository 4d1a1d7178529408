//! The client side: a tokio-rustls client presenting a chosen certificate (or a certificate with
//! a key that does not match it), HTTP/1.1 and HTTP/2 requests over it with hyper, raw HTTP/1.1
//! bytes for malformed requests, and a minimal response parser for those.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{AlertDescription, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::pki::{Identity, Pki};

/// The client's TLS stream to hookgate.
pub type Tls = TlsStream<TcpStream>;

/// A TLS client configuration: which certificate (and key) it presents, ALPN, versions.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(Pki::get().ca.der.clone()))
        .expect("CA is a valid trust anchor");
    roots
}

impl TlsClient {
    /// Presents `cert` with its own key (or no certificate); ALPN `http/1.1`; TLS 1.2 and 1.3.
    pub fn new(cert: Option<&Identity>) -> TlsClient {
        match cert {
            Some(c) => TlsClient::with_key(c, &c.key_der),
            None => TlsClient::build(None, &[&rustls::version::TLS13, &rustls::version::TLS12]),
        }
    }

    /// Presents `cert` but signs the handshake with `key_pkcs8` (which may not match it):
    /// rustls's own consistency check is bypassed, so only hookgate can notice.
    pub fn with_key(cert: &Identity, key_pkcs8: &[u8]) -> TlsClient {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .expect("a valid PKCS#8 key");
        let certified = CertifiedKey::new(vec![CertificateDer::from(cert.der.clone())], signer);
        TlsClient::build(
            Some(certified),
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    fn build(
        cert: Option<CertifiedKey>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsClient {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots());
        let mut config = match cert {
            Some(c) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(c))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsClient {
            config: Arc::new(config),
        }
    }

    /// Only TLS 1.2: the server's verdict on the client certificate then arrives inside the
    /// handshake itself (in TLS 1.3 the client finishes first and reads the alert afterwards).
    pub fn tls12_only(self) -> TlsClient {
        let resolver = self.config.client_auth_cert_resolver.clone();
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("versions")
            .with_root_certificates(roots())
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = self.config.alpn_protocols.clone();
        TlsClient {
            config: Arc::new(config),
        }
    }

    /// Offers these ALPN protocols instead (e.g. `["h2"]`).
    pub fn alpn(self, protocols: &[&str]) -> TlsClient {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        TlsClient {
            config: Arc::new(config),
        }
    }

    /// TCP connect and TLS handshake with SNI `localhost`.
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<Tls> {
        let tcp = TcpStream::connect(addr).await?;
        self.handshake(tcp).await
    }

    /// The TLS handshake over an already connected socket.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<Tls> {
        let name = ServerName::try_from("localhost").expect("valid name");
        TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
    }

    /// Expects hookgate to refuse this client inside the TLS handshake: returns the alert it
    /// sent. Fails if any HTTP response arrives. With TLS 1.3 the alert is read after the
    /// client's side of the handshake, so a request is written and the read must fail.
    pub async fn expect_alert(&self, addr: SocketAddr) -> AlertDescription {
        let err = match self.connect(addr).await {
            Err(e) => e,
            Ok(mut tls) => {
                let _ = tls
                    .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                    .await;
                let mut buf = Vec::new();
                match tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await
                {
                    Err(_) => panic!("no alert within 5s"),
                    Ok(Ok(_)) => panic!(
                        "expected a TLS alert, got {} bytes: {:?}",
                        buf.len(),
                        String::from_utf8_lossy(&buf)
                    ),
                    Ok(Err(e)) => e,
                }
            }
        };
        alert_of(&err).unwrap_or_else(|| panic!("expected a TLS alert, got: {err:?}"))
    }
}

/// The alert inside an I/O error from tokio-rustls, if that is what it is.
pub fn alert_of(err: &io::Error) -> Option<AlertDescription> {
    match err.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(a) => Some(*a),
        _ => None,
    }
}

/// A response as the client received it, with its body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The `X-Request-Id` hookgate set (exactly one copy).
    pub fn request_id(&self) -> String {
        let all: Vec<_> = self.headers.get_all("x-request-id").iter().collect();
        assert_eq!(all.len(), 1, "X-Request-Id on the response: {all:?}");
        all[0].to_str().expect("ASCII").to_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts one of hookgate's own error responses: this status, `Content-Type:
    /// application/json`, a body of exactly `{"error":word,"request_id":<the X-Request-Id>}`.
    pub fn assert_error(&self, status: u16, word: &str) {
        assert_eq!(
            self.status.as_u16(),
            status,
            "status; body {:?}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "content-type of an error response"
        );
        let id = self.request_id();
        assert_eq!(
            self.json(),
            serde_json::json!({"error": word, "request_id": id}),
            "error body"
        );
    }
}

/// One HTTP/1.1 connection driven by hyper (keep-alive: send several requests on it).
pub struct H1 {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl H1 {
    /// Starts HTTP/1.1 over an established TLS stream.
    pub async fn over(tls: Tls) -> H1 {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(conn);
        H1 { sender }
    }

    /// Like [`H1::send`], but `None` when the connection fails (a server killed mid-request).
    pub async fn try_send(&mut self, req: Request<Full<Bytes>>) -> Option<Reply> {
        self.sender.ready().await.ok()?;
        let resp = self.sender.send_request(req).await.ok()?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.ok()?.to_bytes();
        Some(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
        })
    }

    /// Sends one request (give it a `Host` header) and reads the whole response.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.expect("connection ready");
        let resp = self
            .sender
            .send_request(req)
            .await
            .expect("HTTP/1.1 response");
        collect(resp).await
    }
}

/// One HTTP/2 connection (ALPN `h2` must have been negotiated).
pub struct H2 {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

impl H2 {
    pub async fn over(tls: Tls) -> H2 {
        assert_eq!(
            tls.get_ref().1.alpn_protocol(),
            Some(&b"h2"[..]),
            "ALPN did not select h2"
        );
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("HTTP/2 handshake");
        tokio::spawn(conn);
        H2 { sender }
    }

    /// Sends one request (its URI must be absolute: `https://localhost/path`).
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.expect("connection ready");
        let resp = self
            .sender
            .send_request(req)
            .await
            .expect("HTTP/2 response");
        collect(resp).await
    }
}

async fn collect(resp: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

/// Builds a request: `method path` with `Host: localhost` and these headers and body.
pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(body.into())).expect("valid request")
}

/// Writes `bytes` and reads one response (or whatever arrives until EOF or `wait`).
pub async fn raw_exchange(tls: &mut Tls, bytes: &[u8], wait: Duration) -> RawReply {
    tls.write_all(bytes).await.expect("write request");
    tls.flush().await.expect("flush");
    read_raw(tls, wait).await
}

/// What came back on a raw connection.
#[derive(Debug)]
pub struct RawReply {
    /// The parsed response, if a complete head arrived.
    pub response: Option<Reply>,
    /// Everything read, for diagnostics.
    pub bytes: Vec<u8>,
    /// Whether the connection was closed (EOF or error) by the time reading stopped.
    pub closed: bool,
}

impl RawReply {
    /// The parsed response; panics showing the raw bytes if none arrived.
    pub fn expect_response(&self) -> &Reply {
        self.response.as_ref().unwrap_or_else(|| {
            panic!(
                "no complete response (closed: {}): {:?}",
                self.closed,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }
}

/// Reads one HTTP/1.1 response (Content-Length bodies only) or until EOF / `wait`.
pub async fn read_raw<S: tokio::io::AsyncRead + Unpin>(s: &mut S, wait: Duration) -> RawReply {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    let mut closed = false;
    loop {
        if let Some(reply) = parse_response(&bytes) {
            return RawReply {
                response: Some(reply),
                bytes,
                closed,
            };
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    RawReply {
        response: parse_response(&bytes),
        bytes,
        closed,
    }
}

/// A complete response head plus its Content-Length body, or None if not all there yet.
fn parse_response(bytes: &[u8]) -> Option<Reply> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = match parts.next()? {
        "HTTP/1.0" => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let status = StatusCode::from_bytes(parts.next()?.as_bytes()).ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (k, v) = line.split_once(':')?;
        headers.append(
            HeaderName::from_bytes(k.trim().as_bytes()).ok()?,
            HeaderValue::from_str(v.trim()).ok()?,
        );
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = bytes.get(end + 4..end + 4 + len)?;
    Some(Reply {
        status,
        version,
        headers,
        body: Bytes::copy_from_slice(body),
    })
}
