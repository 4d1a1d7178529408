//! A real HTTPS server on 127.0.0.1:0 (rcgen PKI, tokio-rustls, hyper) whose replies the
//! test scripts, recording every request head it receives.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{RemoteSource, RemoteSpec};

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
pub(crate) struct Pki {
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) server: Arc<rustls::ServerConfig>,
}

pub(crate) fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("server cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki {
        ca_pem: ca.pem().into_bytes(),
        server: Arc::new(server),
    }
}

/// What the server does with one request.
pub(crate) enum Reply {
    /// Never answer (the client must time out).
    Hang,
    Send {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        chunked: bool,
    },
}

impl Reply {
    pub(crate) fn ok(body: &str) -> Self {
        Reply::status(200).body(body)
    }
    pub(crate) fn status(status: u16) -> Self {
        Reply::Send {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        }
    }
    pub(crate) fn body(mut self, text: &str) -> Self {
        if let Reply::Send { body, .. } = &mut self {
            *body = text.as_bytes().to_vec();
        }
        self
    }
    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Reply::Send { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
    /// Send the body in 1 KiB chunks without Content-Length.
    pub(crate) fn chunked(mut self) -> Self {
        if let Reply::Send { chunked, .. } = &mut self {
            *chunked = true;
        }
        self
    }
}

/// A body that is either sized (Content-Length) or chunked.
struct TestBody {
    chunks: VecDeque<Bytes>,
    sized: Option<u64>,
}

impl Body for TestBody {
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
        self.sized
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// A request head as received.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub(crate) fn url(&self, path: &str) -> Uri {
        format!("https://{}{path}", self.addr)
            .parse()
            .expect("test url")
    }
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Binds 127.0.0.1:0 first, then serves every connection with `handler`.
pub(crate) async fn serve(
    pki: &Pki,
    handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(pki.server.clone());
    let handler: Arc<Handler> = Arc::new(handler);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, handler, seen) = (acceptor.clone(), handler.clone(), seen2.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let head = Seen {
                        uri: req.uri().clone(),
                        headers: req.headers().clone(),
                    };
                    seen.lock().expect("lock").push(head.clone());
                    let reply = handler(&head);
                    async move { Ok::<_, Infallible>(respond(reply).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TestServer { addr, seen, task }
}

async fn respond(reply: Reply) -> Response<TestBody> {
    let Reply::Send {
        status,
        headers,
        body,
        chunked,
    } = reply
    else {
        return std::future::pending().await;
    };
    let body = Bytes::from(body);
    let test_body = if chunked {
        let chunks = body.chunks(1024).map(Bytes::copy_from_slice).collect();
        TestBody {
            chunks,
            sized: None,
        }
    } else {
        let sized = Some(body.len() as u64);
        TestBody {
            chunks: [body].into_iter().filter(|b| !b.is_empty()).collect(),
            sized,
        }
    };
    let mut response = Response::new(test_body);
    *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
    for (name, value) in headers {
        response
            .headers_mut()
            .append(name, value.parse().expect("header value"));
    }
    response
}

/// A TCP listener that accepts and then never speaks (no TLS handshake).
pub(crate) async fn serve_silent() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    (addr, task)
}

/// A loopback address where nothing listens (bound, then released).
pub(crate) async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// A source trusting `pki`'s CA with a short timeout.
pub(crate) fn source(url: Uri, pki: &Pki) -> RemoteSource {
    let mut spec = RemoteSpec::new(url);
    spec.ca_pem = Some(pki.ca_pem.clone());
    spec.timeout = std::time::Duration::from_secs(5);
    RemoteSource::new(spec).expect("valid spec")
}
