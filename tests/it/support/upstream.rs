//! A recording upstream: a hyper 1 HTTP/1.1 server on its own thread and runtime (so a test that
//! blocks, e.g. on `curl`, never stalls it) that records every request's head and body and
//! answers as told: respond, delay, or close the connection without a response.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// The request target exactly as received (path and query).
    pub target: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Which accepted connection (0, 1, ...) carried it: equal ids mean a reused connection.
    pub connection: usize,
}

impl Recorded {
    /// The only value of header `name`; panics if it is absent or repeated.
    pub fn header(&self, name: &str) -> &str {
        let all: Vec<&HeaderValue> = self.headers.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "upstream header {name}: {all:?}");
        all[0].to_str().expect("header is ASCII")
    }
}

/// What the upstream does with the next requests.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Answer at once.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Record the request, wait, then answer 200 (to trigger `upstream.timeout`).
    Delay(Duration),
    /// Record the request, then close the connection without any response.
    Close,
}

impl Behavior {
    /// `status` with these headers and a `{}` body (a store delivery's answer).
    pub fn respond(status: u16, headers: &[(&str, &str)]) -> Behavior {
        Behavior::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            body: Bytes::from_static(b"{}"),
        }
    }
}

impl Default for Behavior {
    /// 200 `application/json` `{"upstream":"ok"}` with an `X-Upstream: recorded` header.
    fn default() -> Self {
        Behavior::Respond {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-upstream".into(), "recorded".into()),
            ],
            body: Bytes::from_static(br#"{"upstream":"ok"}"#),
        }
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    connections: AtomicUsize,
    behavior: Mutex<Behavior>,
}

/// A running recording upstream; stops when dropped.
pub struct Upstream {
    /// `http://127.0.0.1:PORT` or `unix:/PATH`: what goes into `upstream.url`.
    pub url: String,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

impl Upstream {
    /// Listens on `127.0.0.1:0`.
    pub fn start() -> Upstream {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr: SocketAddr = l.local_addr().expect("local addr");
        Upstream::spawn(Listener::Tcp(l), format!("http://{addr}"))
    }

    /// Listens on a Unix socket at `path`.
    pub fn start_unix(path: &Path) -> Upstream {
        let l = std::os::unix::net::UnixListener::bind(path).expect("bind unix upstream");
        Upstream::spawn(Listener::Unix(l), format!("unix:{}", path.display()))
    }

    /// A URL whose port nothing listens on (bound, then released): connecting is refused.
    pub fn closed_port_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("local addr");
        drop(l);
        format!("http://{addr}")
    }

    fn spawn(listener: Listener, url: String) -> Upstream {
        let state = Arc::new(State::default());
        let (stop, stopped) = oneshot::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("upstream runtime");
            rt.block_on(async move {
                tokio::select! {
                    _ = accept_loop(listener, st) => {}
                    _ = stopped => {}
                }
            });
        });
        Upstream {
            url,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Changes what the upstream does from the next request on.
    pub fn set_behavior(&self, b: Behavior) {
        *self.state.behavior.lock().expect("lock") = b;
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// The only request received; panics (listing them) if there is not exactly one.
    pub fn single(&self) -> Recorded {
        let all = self.requests();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one upstream request: {all:#?}"
        );
        all.into_iter().next().expect("one")
    }

    /// Asserts the upstream saw no request at all.
    pub fn assert_untouched(&self) {
        let all = self.requests();
        assert!(all.is_empty(), "the upstream must not see this: {all:#?}");
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: Listener, state: Arc<State>) {
    match listener {
        Listener::Tcp(l) => {
            l.set_nonblocking(true).expect("nonblocking");
            let l = tokio::net::TcpListener::from_std(l).expect("tokio listener");
            while let Ok((s, _)) = l.accept().await {
                serve(TokioIo::new(s), state.clone());
            }
        }
        Listener::Unix(l) => {
            l.set_nonblocking(true).expect("nonblocking");
            let l = tokio::net::UnixListener::from_std(l).expect("tokio listener");
            while let Ok((s, _)) = l.accept().await {
                serve(TokioIo::new(s), state.clone());
            }
        }
    }
}

fn serve<S>(io: TokioIo<S>, state: Arc<State>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = state.connections.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| handle(req, state.clone(), connection));
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await;
    });
}

#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("told to close the connection")
    }
}

impl std::error::Error for Closed {}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    connection: usize,
) -> Result<Response<Full<Bytes>>, Closed> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Closed)?.to_bytes();
    state.requests.lock().expect("lock").push(Recorded {
        method: parts.method,
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |pq| pq.to_string()),
        version: parts.version,
        headers: parts.headers,
        body,
        connection,
    });
    let behavior = state.behavior.lock().expect("lock").clone();
    let (status, headers, body) = match behavior {
        Behavior::Respond {
            status,
            headers,
            body,
        } => (status, headers, body),
        Behavior::Delay(d) => {
            tokio::time::sleep(d).await;
            (200, Vec::new(), Bytes::from_static(b"late"))
        }
        // An error from the service makes hyper drop the connection without a response.
        Behavior::Close => return Err(Closed),
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).expect("status");
    for (k, v) in headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(&v).expect("value"),
        );
    }
    Ok(resp)
}

/// A path for a Unix socket inside `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("upstream.sock")
}
