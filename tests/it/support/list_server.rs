//! A remote allow-list endpoint: an HTTPS server (tokio-rustls + hyper 1, its own rcgen CA that
//! hookgate gets as `url_ca`) on its own thread and runtime, whose reply the test switches at
//! any time (a body in any shape, an HTTP error, a hang, a certificate hookgate does not trust).
//! It records every request head, honours `If-None-Match` against the current ETag (304), and
//! stops — dropping every open connection — when dropped. The unit tests of
//! `src/allowlist/remote/` use it too (`test_support.rs` includes this file), so it names no
//! hookgate item, only external crates.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::sync::oneshot;

/// What the list server answers from now on.
#[derive(Debug, Clone)]
pub enum ListReply {
    /// This status and body; with `etag`, a request whose `If-None-Match` equals it gets 304.
    Body {
        status: u16,
        content_type: &'static str,
        body: String,
        etag: Option<String>,
        /// Further response headers (not on a 304).
        headers: Vec<(&'static str, String)>,
        /// The body in 1 KiB chunks without Content-Length.
        chunked: bool,
    },
    /// Read the request, then never answer (the fetch must time out).
    Hang,
}

impl ListReply {
    /// 200 `application/json` with this JSON value as the body.
    pub fn json(value: serde_json::Value) -> ListReply {
        ListReply::Body {
            status: 200,
            content_type: "application/json",
            body: value.to_string(),
            etag: None,
            headers: Vec::new(),
            chunked: false,
        }
    }

    /// 200 `text/plain` with this body.
    pub fn text(body: &str) -> ListReply {
        ListReply::Body {
            status: 200,
            content_type: "text/plain",
            body: body.to_owned(),
            etag: None,
            headers: Vec::new(),
            chunked: false,
        }
    }

    /// An error status with a JSON error body that holds no entry.
    pub fn status(status: u16) -> ListReply {
        ListReply::Body {
            status,
            content_type: "application/json",
            body: r#"{"error":"internal"}"#.to_owned(),
            etag: None,
            headers: Vec::new(),
            chunked: false,
        }
    }

    /// Adds an `ETag` (quoted by the caller, e.g. `"\"v1\""`).
    pub fn with_etag(mut self, tag: &str) -> ListReply {
        if let ListReply::Body { etag, .. } = &mut self {
            *etag = Some(tag.to_owned());
        }
        self
    }

    /// Adds a response header (`Location`, `Content-Encoding`, `Last-Modified`, …).
    pub fn with_header(mut self, name: &'static str, value: &str) -> ListReply {
        if let ListReply::Body { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }

    /// Sends the body in 1 KiB chunks without Content-Length.
    pub fn chunked(mut self) -> ListReply {
        if let ListReply::Body { chunked, .. } = &mut self {
            *chunked = true;
        }
        self
    }
}

/// One request head as the list server received it.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// The request target: path and query.
    pub target: String,
    pub headers: HeaderMap,
    /// The status it was answered with (`None`: hung).
    pub answered: Option<u16>,
}

/// The list server's certificates: one CA hookgate trusts (`ca_pem`), and a second CA it does
/// not, each with a server certificate for `127.0.0.1`.
struct ListPki {
    ca_pem: String,
    trusted: Arc<rustls::ServerConfig>,
    untrusted: Arc<rustls::ServerConfig>,
}

fn list_pki() -> &'static ListPki {
    static PKI: OnceLock<ListPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (ca_pem, trusted) = server_config("list endpoint test CA");
        let (_, untrusted) = server_config("impostor CA");
        ListPki {
            ca_pem,
            trusted,
            untrusted,
        }
    })
}

/// A CA named `cn` and a rustls server config with a `127.0.0.1`/`localhost` leaf it signed.
fn server_config(cn: &str) -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.distinguished_name.push(DnType::CommonName, cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params");
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = leaf
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("sign list server certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server certificate and key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

struct State {
    reply: Mutex<ListReply>,
    /// Replies for one path each, before `reply`.
    replies_for: Mutex<HashMap<String, ListReply>>,
    trusted_cert: Mutex<bool>,
    requests: Mutex<Vec<ListRequest>>,
}

/// A running list server on `127.0.0.1:0`.
pub struct ListServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ListServer {
    /// Starts serving `reply` with the trusted certificate.
    pub fn start(reply: ListReply) -> ListServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind list server");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            reply: Mutex::new(reply),
            replies_for: Mutex::new(HashMap::new()),
            trusted_cert: Mutex::new(true),
            requests: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("list server runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    _ = accept_loop(listener, st) => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here drops every connection task: hung fetches see a close.
        });
        ListServer {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// The PEM of the CA that signs the trusted certificate (what `url_ca` names).
    pub fn ca_pem() -> &'static str {
        &list_pki().ca_pem
    }

    /// Answers `reply` from the next request on.
    pub fn set(&self, reply: ListReply) {
        *self.state.reply.lock().expect("lock") = reply;
    }

    /// Answers `reply` to requests for `path` (query aside) from the next request on; other
    /// paths keep the reply of `start` / `set`.
    pub fn set_for(&self, path: &str, reply: ListReply) {
        let mut replies = self.state.replies_for.lock().expect("lock");
        replies.insert(path.to_owned(), reply);
    }

    /// From the next connection on, presents a certificate from a CA hookgate does not trust
    /// (`false`), or the trusted one again (`true`).
    pub fn use_trusted_cert(&self, trusted: bool) {
        *self.state.trusted_cert.lock().expect("lock") = trusted;
    }

    /// Every request received so far (after a completed TLS handshake).
    pub fn requests(&self) -> Vec<ListRequest> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived (a request only counts after a completed TLS
    /// handshake); panics after `within`.
    pub async fn wait_requests(&self, n: usize, within: Duration) -> Vec<ListRequest> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.requests();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "list server: {} requests within {within:?}, wanted {n}",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ListServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<State>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let trusted = *state.trusted_cert.lock().expect("lock");
        let pki = list_pki();
        let config = if trusted {
            pki.trusted.clone()
        } else {
            pki.untrusted.clone()
        };
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(tls) = tokio_rustls::TlsAcceptor::from(config).accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<ListBody>, Infallible> {
    let reply = match state
        .replies_for
        .lock()
        .expect("lock")
        .get(req.uri().path())
    {
        Some(reply) => reply.clone(),
        None => state.reply.lock().expect("lock").clone(),
    };
    let (status, content_type, body, etag, headers, chunked) = match reply {
        ListReply::Hang => {
            state.requests.lock().expect("lock").push(ListRequest {
                target: req.uri().to_string(),
                headers: req.headers().clone(),
                answered: None,
            });
            return std::future::pending().await;
        }
        ListReply::Body {
            status,
            content_type,
            body,
            etag,
            headers,
            chunked,
        } => (status, content_type, body, etag, headers, chunked),
    };
    let not_modified = etag.as_deref().is_some_and(|tag| {
        req.headers()
            .get(http::header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    });
    let status = if not_modified { 304 } else { status };
    state.requests.lock().expect("lock").push(ListRequest {
        target: req.uri().to_string(),
        headers: req.headers().clone(),
        answered: Some(status),
    });
    let body = if not_modified {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut resp = Response::new(ListBody::new(body, chunked && !not_modified));
    *resp.status_mut() = StatusCode::from_u16(status).expect("status");
    if !not_modified {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        for (name, value) in headers {
            let value = value.parse().expect("header value");
            resp.headers_mut().append(name, value);
        }
    }
    if let Some(tag) = etag {
        resp.headers_mut()
            .insert(http::header::ETAG, tag.parse().expect("etag value"));
    }
    Ok(resp)
}

/// A response body: its bytes with their exact length (Content-Length), or in 1 KiB chunks of
/// unknown total length (hyper sends those chunked).
struct ListBody {
    chunks: VecDeque<Bytes>,
    exact: Option<u64>,
}

impl ListBody {
    fn new(body: Bytes, chunked: bool) -> ListBody {
        if chunked {
            let chunks = body.chunks(1024).map(Bytes::copy_from_slice).collect();
            return ListBody {
                chunks,
                exact: None,
            };
        }
        ListBody {
            exact: Some(body.len() as u64),
            chunks: [body].into_iter().filter(|b| !b.is_empty()).collect(),
        }
    }
}

impl Body for ListBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        self.exact
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
