//! Configuration: the TOML file (`file`) validated into typed values (`Config`). Every error
//! names the file, the key path and, where known, the line, and says what was expected.

mod file;
pub(crate) mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::allowlist::{Network, SourceNetworks, Thumbprint};
use crate::logging::LogFormat;
use crate::secret::SecretSource;
pub(crate) use values::{HostMode, TlsVersion};

/// A configuration mistake, located in the file.
#[derive(Debug, Clone)]
pub(crate) struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// Loading `config` did not finish in time (a file it names is on a hung mount, say).
    pub(crate) fn stuck(config: &Path, stuck: &crate::fsio::Stuck) -> ConfigError {
        ConfigError {
            file: config.to_owned(),
            key: String::new(),
            line: None,
            message: stuck.to_string(),
        }
    }
}

/// The validated configuration. Secrets are still sources here; they are resolved (and so
/// re-read on every reload) when a `Snapshot` is built.
#[derive(Debug)]
pub(crate) struct Config {
    pub path: PathBuf,
    /// Relative paths in the file are relative to this directory.
    pub dir: PathBuf,
    text: String,
    pub listen: Listen,
    pub tls: Tls,
    pub thumbprints: Option<ListConfig<Thumbprint>>,
    pub source_ips: Option<ListConfig<Network>>,
    pub required_header: Option<RequiredHeader>,
    pub developer_payload: Option<DeveloperPayload>,
    pub request: RequestRules,
    pub upstream: Upstream,
    pub identity: Option<Identity>,
    pub routing: Routing,
    /// At least one; the `default` route alone under [`Routing::Default`].
    pub routes: Vec<RouteConfig>,
    pub store: Option<StoreConfig>,
    pub admin: Option<SocketAddr>,
    /// `admin.token`: authorises the store API (SPEC §9.6).
    pub admin_token: Option<SecretSource>,
    pub log_format: LogFormat,
    pub log_level: String,
}

#[derive(Debug)]
pub(crate) struct Listen {
    pub address: SocketAddr,
    pub proxy_protocol: bool,
    pub trusted_proxies: SourceNetworks,
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    /// The whole body must arrive within this (extension, default 5 min).
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
}

#[derive(Debug)]
pub(crate) struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub min_version: TlsVersion,
    pub check_validity: bool,
}

/// One allow list: static entries, files, and an optional remote source.
#[derive(Debug)]
pub(crate) struct ListConfig<T> {
    pub allow: Vec<T>,
    pub files: Vec<PathBuf>,
    pub remote: Option<RemoteConfig>,
}

#[derive(Debug, Clone)]
pub(crate) struct RemoteConfig {
    pub url: http::Uri,
    pub url_ca: Option<PathBuf>,
    pub headers: Vec<(http::HeaderName, SecretSource)>,
    pub refresh: Duration,
    pub cache: Option<PathBuf>,
    /// SPEC §10: refused as unknown → an early refresh, at most once per interval.
    pub refresh_on_unknown: bool,
    pub refresh_on_unknown_interval: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct RequiredHeader {
    pub name: http::HeaderName,
    pub values: Vec<SecretSource>,
    pub strip: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct DeveloperPayload {
    pub pointer: String,
    pub values: Vec<SecretSource>,
    /// Where on its route it applies: `Some` for the `default` route (its section's
    /// `path_prefixes`), `None` on a `[[routes]]` route (the whole route).
    pub path_prefixes: Option<Vec<String>>,
}

/// One route of SPEC §8 with every default filled in. Without `[[routes]]` the config has one,
/// named `default`, built from `[request]`, `[required_header]`, `[developer_payload]` and
/// `[upstream]`.
#[derive(Debug)]
pub(crate) struct RouteConfig {
    pub name: String,
    /// As written. `[[routes]]` are selected on the normalized path (longest prefix); the
    /// `default` route by a plain prefix match on the path as received (SPEC §3).
    pub path_prefixes: Vec<String>,
    pub methods: Vec<http::Method>,
    pub max_body: u64,
    pub required_header: Option<RequiredHeader>,
    pub developer_payload: Option<DeveloperPayload>,
    /// `None`: `[upstream]` (and its connection pool).
    pub upstream: Option<Upstream>,
    /// SPEC §9: `true` for `delivery = "store"` (needs `[store]`).
    pub store: bool,
    /// SPEC §9.4: what makes two requests the same, and for how long it is remembered.
    pub dedup: Option<(Dedup, Duration)>,
}

/// The dedup key of a store route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dedup {
    /// The normalized path (SPEC §8).
    Path,
    /// The body's SHA-256.
    Body,
    /// The value at this JSON pointer (a request without it is stored normally).
    Pointer(String),
}

/// Where the store lives: exactly one of `store.path` and `store.url` (SPEC §9, §9.5).
#[derive(Debug, Clone)]
pub(crate) enum StoreBackend {
    /// The embedded store's directory (resolved against the config's directory).
    Path(PathBuf),
    /// PostgreSQL shared by every replica: a secret (`postgres://user:pass@host:port/db?...`),
    /// resolved when the store is opened or probed, never logged.
    Url(SecretSource),
}

/// Same key, same source: a change of either waits for a restart (SPEC §9.8). Compares where a
/// secret comes from (an env name, a file path), not its value.
impl PartialEq for StoreBackend {
    fn eq(&self, other: &StoreBackend) -> bool {
        match (self, other) {
            (StoreBackend::Path(a), StoreBackend::Path(b)) => a == b,
            (StoreBackend::Url(a), StoreBackend::Url(b)) => match (a, b) {
                (SecretSource::Inline(a), SecretSource::Inline(b)) => a == b,
                (SecretSource::Env { env: a }, SecretSource::Env { env: b }) => a == b,
                (SecretSource::File { file: a }, SecretSource::File { file: b }) => a == b,
                _ => false,
            },
            _ => false,
        }
    }
}

/// `[store]` (SPEC §9), validated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoreConfig {
    /// `store.path` or `store.url`. Named `path` because the reload compares `store.path` under
    /// this name to log a change that waits for a restart; it covers both keys.
    pub path: StoreBackend,
    pub max_bytes: u64,
    pub concurrency: usize,
    pub attempt_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub give_up_after: Duration,
    pub keep_delivered: Duration,
}

/// How a request's route is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Routing {
    /// No `[[routes]]`: the one `default` route, SPEC §2–3 exactly.
    Default,
    /// `[[routes]]`: the longest normalized prefix wins (SPEC §8).
    Routes,
}

#[derive(Debug)]
pub(crate) struct RequestRules {
    /// The default of every route.
    pub methods: Vec<http::Method>,
    /// The default of every route.
    pub max_body: u64,
    /// Process-wide bound on buffered request bodies (bodies are read whole before forwarding).
    pub max_buffered: u64,
    /// `request.strip_headers`: removed in every spelling, like the SPEC §4 list.
    pub strip_headers: Vec<http::HeaderName>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UpstreamTarget {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub target: UpstreamTarget,
    /// Prepended to the client's path; empty or "/BASE" without a trailing slash.
    pub base: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub host: HostMode,
}

#[derive(Debug)]
pub(crate) struct Identity {
    pub key: SecretSource,
    pub key_id: String,
}

impl Config {
    /// Reads and validates the file; resolves nothing else from disk.
    pub(crate) fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::fsio::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            key: String::new(),
            line: None,
            message: format!("cannot read the config file: {e}"),
        })?;
        Config::parse(path, text)
    }

    pub(crate) fn parse(path: &Path, text: String) -> Result<Config, ConfigError> {
        let raw: file::FileConfig =
            serde_path_to_error::deserialize(toml::Deserializer::new(&text)).map_err(|e| {
                let span = e.inner().span();
                let line = span.clone().map(|s| line_at(&text, s.start));
                let mut message = e.inner().message().trim().to_owned();
                if message.is_empty() {
                    // The toml crate gives no words for some lexical errors (a control
                    // character in a comment): name the character it points at.
                    let at = span.and_then(|s| text.get(s.start..).and_then(|t| t.chars().next()));
                    message = match at {
                        Some(c) => format!("invalid TOML: {c:?} is not allowed here"),
                        None => "invalid TOML".to_owned(),
                    };
                }
                ConfigError {
                    file: path.to_owned(),
                    key: e.path().to_string().trim_start_matches('.').to_owned(),
                    line,
                    message,
                }
            })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut cfg = Config {
            path: path.to_owned(),
            dir,
            text,
            listen: Listen {
                address: raw.listen.address,
                proxy_protocol: raw.listen.proxy_protocol,
                trusted_proxies: SourceNetworks::new(
                    raw.listen.trusted_proxies.iter().map(|e| e.0),
                ),
                max_connections: raw.listen.max_connections,
                handshake_timeout: raw.listen.handshake_timeout.0,
                header_timeout: raw.listen.header_timeout.0,
                body_timeout: raw.listen.body_timeout.0,
                idle_timeout: raw.listen.idle_timeout.0,
                shutdown_grace: raw.listen.shutdown_grace.0,
            },
            tls: Tls {
                cert: raw.tls.cert,
                key: raw.tls.key,
                client_ca: non_empty(raw.tls.client_ca),
                min_version: raw.tls.min_version,
                check_validity: raw.tls.check_validity,
            },
            thumbprints: None,
            source_ips: None,
            required_header: None,
            developer_payload: None,
            request: RequestRules {
                methods: Vec::new(),
                max_body: raw.request.max_body.0,
                max_buffered: raw.request.max_buffered.0,
                strip_headers: raw
                    .request
                    .strip_headers
                    .iter()
                    .map(|e| e.0.clone())
                    .collect(),
            },
            upstream: Upstream {
                target: UpstreamTarget::Unix(PathBuf::new()),
                base: String::new(),
                connect_timeout: raw.upstream.connect_timeout.0,
                timeout: raw.upstream.timeout.0,
                host: raw.upstream.host,
            },
            identity: raw.identity.map(|i| Identity {
                key: i.key,
                key_id: i.key_id,
            }),
            routing: Routing::Default,
            routes: Vec::new(),
            store: None,
            admin_token: raw.admin.token.clone(),
            admin: None,
            log_format: raw.log.format,
            log_level: raw.log.level,
        };
        validate::listen(&cfg, &raw.listen)?;
        cfg.thumbprints = raw
            .thumbprints
            .map(|l| validate::list(&cfg, "thumbprints", l))
            .transpose()?;
        cfg.source_ips = raw
            .source_ips
            .map(|l| validate::list(&cfg, "source_ips", l))
            .transpose()?;
        cfg.required_header = raw
            .required_header
            .map(|h| validate::required_header(&cfg, h))
            .transpose()?;
        cfg.developer_payload = raw
            .developer_payload
            .map(|p| validate::developer_payload(&cfg, p, raw.routes.is_empty()))
            .transpose()?;
        cfg.request.methods = validate::methods(&cfg, "request.methods", &raw.request.methods)?;
        if cfg.request.max_body == 0 {
            return Err(cfg.error("request.max_body", "must be more than 0 bytes"));
        }
        if cfg.request.max_buffered < cfg.request.max_body {
            return Err(cfg.error(
                "request.max_buffered",
                "must be at least request.max_body, or no maximum-size body could ever be read",
            ));
        }
        (cfg.upstream.target, cfg.upstream.base) =
            validate::upstream_url(&cfg, "upstream.url", &raw.upstream.url)?;
        cfg.store = raw.store.map(|s| validate::store(&cfg, s)).transpose()?;
        (cfg.routing, cfg.routes) = if raw.routes.is_empty() {
            let prefixes = raw
                .request
                .path_prefixes
                .unwrap_or_else(|| vec!["/".into()]);
            validate::prefixes(&cfg, "request.path_prefixes", &prefixes)?;
            (
                Routing::Default,
                vec![validate::default_route(&cfg, prefixes)],
            )
        } else {
            if raw.request.path_prefixes.is_some() {
                return Err(cfg.error(
                    "request.path_prefixes",
                    "with [[routes]], give each route its path_prefixes",
                ));
            }
            (Routing::Routes, validate::routes(&cfg, raw.routes)?)
        };
        cfg.admin = validate::admin(&cfg, &raw.admin.address)?;
        validate::log_level(&cfg)?;
        if let Some(id) = &cfg.identity {
            validate::key_id(&cfg, &id.key_id)?;
        }
        if cfg.thumbprints.is_none() && cfg.tls.client_ca.is_none() {
            return Err(cfg.error(
                "thumbprints",
                "no client authentication is configured, so any client would be admitted: \
                 add a [thumbprints] section and/or set tls.client_ca",
            ));
        }
        Ok(cfg)
    }

    /// A located error for `key` (a dotted path such as `tls.cert`).
    pub(crate) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            key: key.to_owned(),
            line: line_of_key(&self.text, key),
            message: message.into(),
        }
    }

    /// A path from the file, relative to the config's directory.
    pub(crate) fn resolve_path(&self, p: &Path) -> PathBuf {
        self.dir.join(p)
    }
}

fn non_empty(p: PathBuf) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then_some(p)
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Finds the line of `section.key` (or `section.key[n]`), or of the `[section]` header.
/// For an array of tables, `routes[N].key` is the key in the N-th `[[routes]]` (from 0).
fn line_of_key(text: &str, path: &str) -> Option<usize> {
    let (section, table, key) = match path.strip_prefix("routes[") {
        Some(rest) => {
            let (n, key) = rest.split_once(']').unwrap_or((rest, ""));
            (
                "routes",
                n.parse::<usize>().ok(),
                key.trim_start_matches('.'),
            )
        }
        None => {
            let path = path.split('[').next().unwrap_or(path);
            let (section, key) = path.split_once('.').unwrap_or((path, ""));
            (section, None, key)
        }
    };
    let key = key.split(['.', '[']).next().unwrap_or_default();
    let mut in_section = false;
    let mut header_line = None;
    let mut seen_tables = 0;
    for (idx, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_section = t.trim_start_matches('[').trim_end_matches(']').trim() == section;
            if in_section && t.starts_with("[[") {
                in_section = table.map_or(true, |n| n == seen_tables);
                seen_tables += 1;
            }
            if in_section {
                header_line = Some(idx + 1);
            }
            continue;
        }
        if in_section && !key.is_empty() {
            if let Some(rest) = t.strip_prefix(key) {
                if rest.trim_start().starts_with('=') {
                    return Some(idx + 1);
                }
            }
        }
    }
    header_line
}

mod validate;

#[cfg(test)]
mod tests;
