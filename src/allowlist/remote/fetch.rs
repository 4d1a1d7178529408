//! One HTTPS GET of a remote list URL (`url`, `url_ca`): rustls over TCP, hyper 1 HTTP/1.1,
//! conditional GET, at most 3 https-only redirects, a size cap and a whole-fetch timeout.
//! Extra request headers are secrets: marked sensitive, never logged, never sent cross-origin.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Default bound on one whole fetch (connect, TLS, redirects, body).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default response cap: far above any real list, far below memory trouble.
pub(crate) const DEFAULT_MAX_BYTES: usize = 8 << 20;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 3;
const USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));
const ACCEPT: &str = "application/json, text/plain;q=0.9";
/// Headers hookgate itself controls; letting config set them would break framing or caching.
const RESERVED: [HeaderName; 8] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::UPGRADE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
];

/// What to fetch and how; built by config from `url`, `url_ca` and friends.
#[derive(Clone)]
pub(crate) struct RemoteSpec {
    /// Must be `https://`; no `user:pass@` (send credentials in `headers`).
    pub(crate) url: Uri,
    /// Contents of the `url_ca` PEM bundle: trusted *instead of* the system roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// Extra request headers (e.g. an API key). Values are secrets.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Bound on the whole fetch.
    pub(crate) timeout: Duration,
    /// Response bodies larger than this fail the fetch.
    pub(crate) max_bytes: usize,
}

impl RemoteSpec {
    /// A spec with the system roots, no extra headers and the default limits.
    #[cfg(test)]
    pub(crate) fn new(url: Uri) -> Self {
        RemoteSpec {
            url,
            ca_pem: None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl fmt::Debug for RemoteSpec {
    // Hand-written: header values are secrets and the URL query may hold a token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSpec")
            .field("url", &loggable_url(&self.url))
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<custom CA>"))
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// A spec that cannot work; found once, at config load (`check` reports it).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    /// The URL (or its host) is unusable.
    #[error("remote list url {url}: {problem}")]
    Url { url: String, problem: UrlProblem },
    /// `url_ca` did not yield a usable trust anchor.
    #[error("url_ca for {url}: {reason}")]
    Ca { url: String, reason: String },
    /// No `url_ca` and the OS trust store is empty or unreadable.
    #[error("no system root certificates could be loaded to verify {url}; set url_ca")]
    NoSystemRoots { url: String },
    /// An extra header that hookgate must control itself.
    #[error("header {name} cannot be configured for remote list {url}; hookgate sets it")]
    ReservedHeader { url: String, name: HeaderName },
    /// rustls refused the client configuration.
    #[error("TLS client setup for {url}: {source}")]
    Tls { url: String, source: rustls::Error },
}

/// Why a URL (configured or from a redirect) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlProblem {
    #[error("must use https:// (lists decide who is trusted; plain http could be forged)")]
    NotHttps,
    #[error("has no host")]
    NoHost,
    #[error("host is not a valid DNS name or IP address")]
    BadHost,
    #[error("must not contain user:password@; send credentials in a header instead")]
    Userinfo,
}

/// A failed fetch. Every message names the (redacted) URL and never a header value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("connecting to {url}: {source}")]
    Connect { url: String, source: io::Error },
    #[error("TLS handshake with {url}: {source}")]
    Tls { url: String, source: io::Error },
    #[error("HTTP exchange with {url}: {source}")]
    Http { url: String, source: hyper::Error },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: StatusCode },
    #[error("{url} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects { url: String },
    #[error("{url} sent an unusable redirect: {reason}")]
    BadRedirect { url: String, reason: String },
    #[error("response from {url} is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error(
        "response from {url} uses Content-Encoding {encoding:?}, which hookgate does not decode"
    )]
    Encoding { url: String, encoding: String },
    #[error("fetching {url} took longer than {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// The result of a successful fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// 304 to our conditional GET: the last accepted body is still current.
    NotModified,
    /// A 2xx body, at most `max_bytes`.
    Body(Bytes),
}

/// One remote list endpoint, with the TLS trust and cache validators that persist across fetches.
pub(crate) struct RemoteSource {
    origin: Target,
    connector: TlsConnector,
    /// Sensitive-marked extra headers, sent only to `origin`.
    headers: HeaderMap,
    timeout: Duration,
    max_bytes: usize,
    /// Validators of the last body the caller accepted; sent as If-None-Match/If-Modified-Since.
    validators: Validators,
    /// Validators of the last 200, promoted by `accept_last_body`. Kept apart so a body that
    /// parsed to nothing cannot be "confirmed" by later 304s while the old list stays in force.
    pending: Option<Validators>,
}

#[derive(Debug, Clone, Default)]
struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl Validators {
    fn from_response(headers: &HeaderMap) -> Self {
        Validators {
            etag: headers.get(header::ETAG).cloned(),
            last_modified: headers.get(header::LAST_MODIFIED).cloned(),
        }
    }

    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A validated https URL, ready to connect to.
#[derive(Clone)]
struct Target {
    uri: Uri,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    host_header: HeaderValue,
    path: PathAndQuery,
}

impl Target {
    fn new(uri: Uri) -> Result<Self, UrlProblem> {
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(UrlProblem::NotHttps);
        }
        let authority = uri.authority().ok_or(UrlProblem::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(UrlProblem::Userinfo);
        }
        // http::Uri keeps the brackets of an IPv6 literal; connect and SNI want them off.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(UrlProblem::NoHost);
        }
        let server_name = ServerName::try_from(host.clone()).map_err(|_| UrlProblem::BadHost)?;
        let host_header =
            HeaderValue::from_str(authority.as_str()).map_err(|_| UrlProblem::BadHost)?;
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Ok(Target {
            port: authority.port_u16().unwrap_or(443),
            uri,
            host,
            server_name,
            host_header,
            path,
        })
    }

    fn same_origin(&self, other: &Target) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }
}

impl RemoteSource {
    /// Validates the spec and builds the TLS client (loads the system roots when no CA given).
    pub(crate) fn new(spec: RemoteSpec) -> Result<Self, RemoteError> {
        let url = loggable_url(&spec.url);
        let origin = Target::new(spec.url).map_err(|problem| RemoteError::Url {
            url: url.clone(),
            problem,
        })?;
        let mut headers = HeaderMap::new();
        for (name, mut value) in spec.headers {
            if RESERVED.contains(&name) {
                return Err(RemoteError::ReservedHeader { url, name });
            }
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(RemoteSource {
            origin,
            connector: build_connector(&url, spec.ca_pem.as_deref())?,
            headers,
            timeout: spec.timeout,
            max_bytes: spec.max_bytes,
            validators: Validators::default(),
            pending: None,
        })
    }

    /// The configured URL in log-safe form (query redacted).
    pub(crate) fn display_url(&self) -> String {
        loggable_url(&self.origin.uri)
    }

    /// Marks the body of the last `Fetched::Body` as accepted (it parsed to ≥1 entry), so the
    /// next fetch is conditional on it. Call it only for bodies now in force.
    pub(crate) fn accept_last_body(&mut self) {
        if let Some(v) = self.pending.take() {
            self.validators = v;
        }
    }

    /// Fetches the list once, within the spec's timeout.
    pub(crate) async fn fetch(&mut self) -> Result<Fetched, FetchError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.fetch_following_redirects()).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url: self.display_url(),
                timeout,
            }),
        }
    }

    async fn fetch_following_redirects(&mut self) -> Result<Fetched, FetchError> {
        self.pending = None;
        let mut target = self.origin.clone();
        let mut redirects = 0;
        loop {
            let url = loggable_url(&target.uri);
            let (response, _conn) = self.send(&target).await?;
            let status = response.status();
            if is_followed_redirect(status) {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects {
                        url: self.display_url(),
                    });
                }
                target = redirect_target(&target, response.headers())
                    .map_err(|reason| FetchError::BadRedirect { url, reason })?;
                continue;
            }
            // A 304 we did not ask for cannot confirm anything.
            if status == StatusCode::NOT_MODIFIED && !self.validators.is_empty() {
                return Ok(Fetched::NotModified);
            }
            if !status.is_success() {
                return Err(FetchError::Status { url, status });
            }
            if let Some(encoding) = response.headers().get(header::CONTENT_ENCODING) {
                let encoding = String::from_utf8_lossy(encoding.as_bytes()).into_owned();
                if !encoding.trim().eq_ignore_ascii_case("identity") {
                    return Err(FetchError::Encoding { url, encoding });
                }
            }
            let validators = Validators::from_response(response.headers());
            let body = read_limited(response, self.max_bytes, &url).await?;
            if status == StatusCode::OK {
                self.pending = Some(validators);
            }
            return Ok(Fetched::Body(body));
        }
    }

    /// One request on a fresh connection (a daily fetch gains nothing from pooling). The
    /// returned guard keeps the connection driven until the body has been read.
    async fn send(&self, target: &Target) -> Result<(Response<Incoming>, AbortOnDrop), FetchError> {
        let url = || loggable_url(&target.uri);
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| FetchError::Connect { url: url(), source })?;
        let tls = self
            .connector
            .connect(target.server_name.clone(), tcp)
            .await
            .map_err(|source| FetchError::Tls { url: url(), source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| FetchError::Http { url: url(), source })?;
        let guard = AbortOnDrop(tokio::spawn(async move {
            // Errors surface through send_request / the body; nothing to add here.
            let _ = conn.await;
        }));
        let response = sender
            .send_request(self.build_request(target))
            .await
            .map_err(|source| FetchError::Http { url: url(), source })?;
        Ok((response, guard))
    }

    fn build_request(&self, target: &Target) -> Request<Empty<Bytes>> {
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = Uri::from(target.path.clone());
        let h = request.headers_mut();
        h.insert(header::HOST, target.host_header.clone());
        h.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        h.insert(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        // Secrets go only to the configured origin, like curl drops Authorization on a
        // cross-host redirect: a redirect must not be able to harvest them.
        if target.same_origin(&self.origin) {
            for name in self.headers.keys() {
                h.remove(name); // configured User-Agent/Accept replace the defaults
                for value in self.headers.get_all(name) {
                    h.append(name.clone(), value.clone());
                }
            }
        }
        if let Some(etag) = &self.validators.etag {
            h.insert(header::IF_NONE_MATCH, etag.clone());
        }
        if let Some(date) = &self.validators.last_modified {
            h.insert(header::IF_MODIFIED_SINCE, date.clone());
        }
        request
    }
}

/// Aborts the connection task when the fetch ends, however it ends (including timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn is_followed_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Resolves `Location` against the current URL (absolute, `//host/..`, `/path` or relative).
fn redirect_target(base: &Target, headers: &HeaderMap) -> Result<Target, String> {
    let location = headers
        .get(header::LOCATION)
        .ok_or("no Location header")?
        .to_str()
        .map_err(|_| "Location is not ASCII")?;
    let location = location.split('#').next().unwrap_or_default().trim();
    let authority = base.uri.authority().map_or("", |a| a.as_str());
    let absolute = if location.starts_with("//") {
        format!("https:{location}")
    } else if location.starts_with('/') {
        format!("https://{authority}{location}")
    } else if location.contains("://") {
        location.to_owned()
    } else {
        let dir = base.uri.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("https://{authority}{dir}/{location}")
    };
    let uri: Uri = absolute
        .parse()
        .map_err(|_| "Location is not a valid URI".to_owned())?;
    let shown = loggable_url(&uri);
    Target::new(uri).map_err(|problem| format!("target {shown} {problem}"))
}

async fn read_limited(
    response: Response<Incoming>,
    limit: usize,
    url: &str,
) -> Result<Bytes, FetchError> {
    let too_large = || FetchError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    let declared = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large()); // refuse before reading a byte
    }
    let mut body = response.into_body();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| FetchError::Http {
            url: url.to_owned(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

fn build_connector(url: &str, ca_pem: Option<&[u8]>) -> Result<TlsConnector, RemoteError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let ca_err = |reason: String| RemoteError::Ca {
                url: url.to_owned(),
                reason,
            };
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| ca_err(format!("not a valid PEM bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_err(format!("certificate rejected: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_err("contains no CERTIFICATE block".to_owned()));
            }
        }
        None => {
            // Unreadable individual roots are tolerated, as every TLS client does; none at all is not.
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(RemoteError::NoSystemRoots {
                    url: url.to_owned(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| RemoteError::Tls {
            url: url.to_owned(),
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// `https://host:port/path`, with any query replaced by `?<redacted>`: list URLs sometimes
/// carry an API token in the query, and this string goes to logs and error messages.
pub(crate) fn loggable_url(uri: &Uri) -> String {
    // Display writes `scheme://authority` + path (`/` when empty) + `?query`.
    redacted_url(&uri.to_string())
}

/// [`loggable_url`] of URL text that may not even parse (config shows it in its errors):
/// a query becomes `?<redacted>` and `user:password@` is dropped.
pub(crate) fn redacted_url(raw: &str) -> String {
    let (base, query) = match raw.split_once('?') {
        Some((base, _)) => (base, "?<redacted>"),
        None => (raw, ""),
    };
    let Some((scheme, rest)) = base.split_once("://") else {
        return format!("{base}{query}");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}{query}")
}

/// The rule for a list URL, configured or from a redirect: `https://`, a usable host, no
/// userinfo. Config validation applies it too, so `check` refuses what a fetch would.
pub(crate) fn check_url(uri: &Uri) -> Result<(), UrlProblem> {
    Target::new(uri.clone()).map(|_| ())
}

#[cfg(test)]
mod tests;
