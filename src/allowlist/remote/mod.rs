//! Remote allow-list sources (`url`, `url_ca`, `refresh`, `cache` of `[thumbprints]` and
//! `[source_ips]`): fetch, parse, cache and the refresh loop. Generic over the entry type; the
//! caller merges entries with the static ones and publishes them. No failure ever shrinks a list.

mod cache;
mod fetch;
mod parse;
mod schedule;

use std::collections::HashSet;
use std::hash::Hash;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

// The module's API surface for config, `check` and the allow-list owner; not every caller
// uses every item.
#[allow(unused_imports)]
pub(crate) use cache::{load_cache, store_cache};
#[allow(unused_imports)]
pub(crate) use fetch::{
    loggable_url, FetchError, Fetched, RemoteError, RemoteSource, RemoteSpec, UrlProblem,
    DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT,
};
pub(crate) use parse::{parse_entries, ParsedList};
#[allow(unused_imports)]
pub(crate) use schedule::{next_delay, random_jitter, RETRY_BASE};

/// The outcome of one refresh, named like the `result` label of
/// `hookgate_allowlist_refresh_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshResult {
    /// A body with ≥1 entry was applied, or the server confirmed the current one (304).
    Success,
    /// HTTP/TLS/timeout error, or a body with no valid entry: the list in force is unchanged.
    Failure,
}

impl RefreshResult {
    /// The metric label value.
    #[cfg(test)]
    pub(crate) fn label(self) -> &'static str {
        match self {
            RefreshResult::Success => "success",
            RefreshResult::Failure => "failure",
        }
    }
}

/// What the refresh loop calls; implemented by the allow-list owner.
pub(crate) trait RefreshHooks<T>: Send {
    /// Replaces this source's contribution with `entries` (never empty). The callee merges it
    /// with the static entries and swaps the published list atomically.
    fn apply(&mut self, entries: Vec<T>);
    /// One refresh finished: count it, and on success set the last-success timestamp.
    fn report(&mut self, result: RefreshResult);
}

/// Keeps one remote source fresh until `shutdown` turns true or its sender is dropped.
///
/// Each round: fetch; a body with ≥1 valid entry is applied, written to `cache` (a write
/// failure is only logged) and reported as success; a 304 is a success without re-applying;
/// anything else is a failure that leaves the list in force alone. If the *first* fetch fails
/// and `cache` holds a body with entries, that body is applied. Then sleep [`next_delay`].
/// Wrap the future in a span (`.instrument(info_span!("allowlist", list = "source_ips"))`)
/// to name the list in its log lines.
pub(crate) async fn run_refresh<T, P, H>(
    mut source: RemoteSource,
    cache: Option<PathBuf>,
    refresh: Duration,
    parse_one: P,
    mut hooks: H,
    mut shutdown: watch::Receiver<bool>,
) where
    T: Eq + Hash + Clone + Send,
    P: Fn(&str) -> Option<T> + Send,
    H: RefreshHooks<T>,
{
    let url = source.display_url();
    let mut in_force: Option<HashSet<T>> = None;
    let mut failures: u32 = 0;
    let mut first = true;
    loop {
        let started = Instant::now();
        let fetched = tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => return,
            fetched = source.fetch() => fetched,
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let result = match fetched {
            Ok(Fetched::NotModified) => {
                tracing::info!(%url, duration_ms, "allow list not modified");
                RefreshResult::Success
            }
            Ok(Fetched::Body(body)) => {
                let parsed = parse_entries(&body, &parse_one);
                log_skipped(&url, &parsed);
                if parsed.entries.is_empty() {
                    tracing::warn!(%url, duration_ms, skipped = parsed.skipped,
                        reason = parsed.rejected.as_deref().unwrap_or("no valid entry"),
                        "allow list refresh failed: response has no valid entry; keeping the current list");
                    RefreshResult::Failure
                } else {
                    source.accept_last_body();
                    log_applied(&url, &mut in_force, &parsed, duration_ms, "fetched");
                    hooks.apply(parsed.entries);
                    if let Some(path) = &cache {
                        write_cache(path.clone(), body, &url).await;
                    }
                    RefreshResult::Success
                }
            }
            Err(error) => {
                tracing::warn!(%url, duration_ms, %error, "allow list refresh failed; keeping the current list");
                RefreshResult::Failure
            }
        };
        if first && result == RefreshResult::Failure {
            if let Some(path) = &cache {
                apply_cache(path.clone(), &url, &parse_one, &mut hooks, &mut in_force).await;
            }
        }
        first = false;
        hooks.report(result);
        failures = match result {
            RefreshResult::Success => 0,
            RefreshResult::Failure => failures.saturating_add(1),
        };
        let delay = next_delay(refresh, failures, random_jitter());
        tracing::debug!(%url, next_in_ms = delay.as_millis() as u64, "next allow list refresh scheduled");
        tokio::select! {
            biased;
            () = shutdown_requested(&mut shutdown) => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Resolves when the flag is true or the sender is gone (both mean: stop).
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn write_cache(path: PathBuf, body: bytes::Bytes, url: &str) {
    let shown = path.display().to_string();
    let written = tokio::task::spawn_blocking(move || store_cache(&path, &body)).await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%url, cache = %shown, %error, "could not write allow list cache")
        }
        Err(error) => {
            tracing::warn!(%url, cache = %shown, %error, "allow list cache writer failed")
        }
    }
}

async fn apply_cache<T, P, H>(
    path: PathBuf,
    url: &str,
    parse_one: &P,
    hooks: &mut H,
    in_force: &mut Option<HashSet<T>>,
) where
    T: Eq + Hash + Clone,
    P: Fn(&str) -> Option<T>,
    H: RefreshHooks<T>,
{
    let shown = path.display().to_string();
    let body = match tokio::task::spawn_blocking(move || load_cache(&path)).await {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            tracing::warn!(%url, cache = %shown, "no allow list cache to fall back on");
            return;
        }
        Ok(Err(error)) => {
            tracing::warn!(%url, cache = %shown, %error, "could not read allow list cache");
            return;
        }
        Err(error) => {
            tracing::warn!(%url, cache = %shown, %error, "allow list cache reader failed");
            return;
        }
    };
    let parsed = parse_entries(&body, parse_one);
    if parsed.entries.is_empty() {
        tracing::warn!(%url, cache = %shown, "allow list cache holds no valid entry; not applied");
        return;
    }
    log_applied(url, in_force, &parsed, 0, "cache");
    hooks.apply(parsed.entries);
}

/// Logs a list about to be applied, with what changed since the last applied one.
fn log_applied<T: Eq + Hash + Clone>(
    url: &str,
    in_force: &mut Option<HashSet<T>>,
    parsed: &ParsedList<T>,
    duration_ms: u64,
    origin: &'static str,
) {
    let next: HashSet<T> = parsed.entries.iter().cloned().collect();
    let (entries, skipped) = (next.len(), parsed.skipped);
    match in_force.as_ref() {
        None => tracing::info!(%url, origin, entries, skipped, duration_ms, "allow list loaded"),
        Some(prev) => {
            let added = next.difference(prev).count();
            let removed = prev.difference(&next).count();
            if added + removed == 0 {
                tracing::info!(%url, origin, entries, skipped, duration_ms, "allow list unchanged");
            } else {
                tracing::info!(%url, origin, entries, skipped, duration_ms, added, removed, "allow list changed");
            }
        }
    }
    *in_force = Some(next);
}

fn log_skipped<T>(url: &str, parsed: &ParsedList<T>) {
    if parsed.skipped > 0 {
        tracing::warn!(%url, skipped = parsed.skipped, samples = ?parsed.skipped_samples,
            "allow list response has entries that do not parse; they are ignored");
    }
}

#[cfg(test)]
mod test_server {
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
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::test_server::{closed_port, pki, serve, serve_silent, source, Reply};
    use super::*;

    const REFRESH: Duration = Duration::from_millis(50);

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Event {
        Applied(Vec<String>),
        Reported(RefreshResult),
    }

    struct Recorder(mpsc::UnboundedSender<Event>);

    impl RefreshHooks<String> for Recorder {
        fn apply(&mut self, mut entries: Vec<String>) {
            entries.sort();
            let _ = self.0.send(Event::Applied(entries));
        }
        fn report(&mut self, result: RefreshResult) {
            let _ = self.0.send(Event::Reported(result));
        }
    }

    fn hex(s: &str) -> Option<String> {
        (s.len() >= 4 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
    }

    fn applied(entries: &[&str]) -> Event {
        Event::Applied(entries.iter().map(|s| s.to_string()).collect())
    }

    const SUCCESS: Event = Event::Reported(RefreshResult::Success);
    const FAILURE: Event = Event::Reported(RefreshResult::Failure);

    struct Running {
        events: mpsc::UnboundedReceiver<Event>,
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    }

    impl Running {
        fn start(source: RemoteSource, cache: Option<PathBuf>) -> Running {
            let (tx, events) = mpsc::unbounded_channel();
            let (stop, shutdown) = watch::channel(false);
            let task = tokio::spawn(run_refresh(
                source,
                cache,
                REFRESH,
                hex,
                Recorder(tx),
                shutdown,
            ));
            Running { events, stop, task }
        }

        async fn next(&mut self) -> Event {
            tokio::time::timeout(Duration::from_secs(10), self.events.recv())
                .await
                .expect("an event in time")
                .expect("the loop is running")
        }

        /// Events up to and including the first one equal to `last`.
        async fn until(&mut self, last: &Event) -> Vec<Event> {
            let mut seen = Vec::new();
            while seen.last() != Some(last) {
                seen.push(self.next().await);
            }
            seen
        }

        async fn stops_within_a_second(self) {
            tokio::time::timeout(Duration::from_secs(1), self.task)
                .await
                .expect("the loop stops promptly")
                .expect("the loop does not panic");
        }
    }

    #[tokio::test]
    async fn applies_and_keeps_the_last_good_list_across_failures() {
        let pki = pki();
        let mode = Arc::new(Mutex::new(0));
        let m = mode.clone();
        let server = serve(&pki, move |_| match *m.lock().expect("lock") {
            0 => Reply::ok("aaaa\n"),
            1 => Reply::status(500),
            2 => Reply::ok(r#"["zz", "not hex"]"#),
            _ => Reply::ok(r#"{"data":{"ips":["bbbb","cccc"]}}"#),
        })
        .await;
        let mut run = Running::start(source(server.url("/ips"), &pki), None);
        assert_eq!(run.next().await, applied(&["aaaa"]));
        assert_eq!(run.next().await, SUCCESS);

        for failing_mode in [1, 2] {
            *mode.lock().expect("lock") = failing_mode;
            let mut events = run.until(&FAILURE).await;
            events.extend([run.next().await, run.next().await]);
            // A refresh already under way may still see mode 0; nothing else may be applied.
            let bad: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, Event::Applied(_)) && **e != applied(&["aaaa"]))
                .collect();
            assert!(bad.is_empty(), "mode {failing_mode}: {events:?}");
            assert_eq!(
                events[events.len() - 2..],
                [FAILURE, FAILURE],
                "mode {failing_mode}"
            );
        }

        *mode.lock().expect("lock") = 3;
        let events = run.until(&applied(&["bbbb", "cccc"])).await;
        assert!(events
            .iter()
            .all(|e| !matches!(e, Event::Applied(_)) || e == events.last().expect("last")));
        assert_eq!(run.next().await, SUCCESS);
        run.stop.send(true).expect("loop listening");
        run.stops_within_a_second().await;
    }

    #[tokio::test]
    async fn reports_not_modified_as_success_without_reapplying() {
        let pki = pki();
        let server = serve(&pki, |seen| {
            if seen.headers.contains_key(http::header::IF_NONE_MATCH) {
                Reply::status(304)
            } else {
                Reply::ok("aaaa").header("etag", "\"v1\"")
            }
        })
        .await;
        let mut run = Running::start(source(server.url("/"), &pki), None);
        assert_eq!(run.next().await, applied(&["aaaa"]));
        for _ in 0..4 {
            assert_eq!(run.next().await, SUCCESS);
        }
        assert!(server.seen().len() >= 4);
        assert!(server.seen()[1..]
            .iter()
            .all(|s| s.headers.contains_key(http::header::IF_NONE_MATCH)));
    }

    #[tokio::test]
    async fn never_lets_a_304_confirm_a_body_that_had_no_entries() {
        let pki = pki();
        let server = serve(&pki, |seen| {
            if seen.headers.contains_key(http::header::IF_NONE_MATCH) {
                Reply::status(304)
            } else {
                Reply::ok("junk only\n").header("etag", "\"bad\"")
            }
        })
        .await;
        let mut run = Running::start(source(server.url("/"), &pki), None);
        for _ in 0..3 {
            assert_eq!(run.next().await, FAILURE);
        }
        assert!(server
            .seen()
            .iter()
            .all(|s| !s.headers.contains_key(http::header::IF_NONE_MATCH)));
    }

    #[tokio::test]
    async fn applies_the_cache_at_start_when_the_server_is_down() {
        let pki = pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("thumbprints.cache");
        store_cache(&cache, b"# last good\naaaa\nbbbb\n").expect("seed cache");
        let url = format!("https://{}/", closed_port().await)
            .parse()
            .expect("uri");
        let mut run = Running::start(source(url, &pki), Some(cache));
        assert_eq!(run.next().await, applied(&["aaaa", "bbbb"]));
        assert_eq!(run.next().await, FAILURE);
        // Later failures neither re-apply the cache nor clear the list.
        assert_eq!(run.next().await, FAILURE);
        assert_eq!(run.next().await, FAILURE);
        drop(run.stop);
        tokio::time::timeout(Duration::from_secs(1), run.task)
            .await
            .expect("stops")
            .expect("ok");
    }

    #[tokio::test]
    async fn prefers_a_fresh_fetch_over_the_cache_and_rewrites_the_cache() {
        let pki = pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("ips.cache");
        store_cache(&cache, b"aaaa\n").expect("seed cache");
        let server = serve(&pki, |_| Reply::ok("[\"cccc\"]")).await;
        let mut run = Running::start(source(server.url("/"), &pki), Some(cache.clone()));
        assert_eq!(run.next().await, applied(&["cccc"]));
        assert_eq!(run.next().await, SUCCESS);
        assert_eq!(std::fs::read(&cache).expect("cache"), b"[\"cccc\"]");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "no temp file left"
        );
    }

    #[tokio::test]
    async fn keeps_refreshing_when_the_cache_cannot_be_written() {
        let pki = pki();
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("missing-dir").join("ips.cache");
        let server = serve(&pki, |_| Reply::ok("aaaa")).await;
        let mut run = Running::start(source(server.url("/"), &pki), Some(cache));
        assert_eq!(run.next().await, applied(&["aaaa"]));
        assert_eq!(run.next().await, SUCCESS);
        assert_eq!(run.next().await, applied(&["aaaa"]));
    }

    #[tokio::test]
    async fn stops_mid_fetch_when_the_shutdown_sender_is_dropped() {
        let pki = pki();
        let (addr, _silent) = serve_silent().await;
        let url = format!("https://{addr}/").parse().expect("uri");
        let run = Running::start(source(url, &pki), None);
        tokio::time::sleep(Duration::from_millis(100)).await; // let the fetch start and hang
        drop(run.stop);
        tokio::time::timeout(Duration::from_secs(1), run.task)
            .await
            .expect("stops")
            .expect("ok");
    }

    #[test]
    fn labels_match_the_metric() {
        assert_eq!(RefreshResult::Success.label(), "success");
        assert_eq!(RefreshResult::Failure.label(), "failure");
    }
}
