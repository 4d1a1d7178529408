//! `FileConfig` mirrors the TOML file exactly. Every struct denies unknown keys: a misspelled
//! security key must never be silently ignored. Values validate as they deserialize.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::{from_str, Dur, HostMode, Size, TlsVersion};
use crate::allowlist::{Network, Thumbprint};
use crate::logging::LogFormat;
use crate::secret::SecretSource;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub listen: Listen,
    pub tls: Tls,
    pub thumbprints: Option<List<Thumbprint>>,
    pub source_ips: Option<List<Network>>,
    pub required_header: Option<RequiredHeader>,
    pub developer_payload: Option<DeveloperPayload>,
    #[serde(default)]
    pub request: Request,
    #[serde(default)]
    pub upstream: Upstream,
    pub identity: Option<Identity>,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub log: Log,
    /// SPEC §8: a policy per kind of webhook.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// SPEC §9: durable delivery.
    pub store: Option<Store>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Store {
    #[serde(default)]
    pub path: PathBuf,
    pub url: Option<SecretSource>,
    #[serde(default = "default_store_max_bytes")]
    pub max_bytes: Size,
    #[serde(default = "default_store_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout: Dur,
    #[serde(default = "default_retry_initial")]
    pub retry_initial: Dur,
    #[serde(default = "default_retry_max")]
    pub retry_max: Dur,
    #[serde(default = "default_give_up_after")]
    pub give_up_after: Dur,
    #[serde(default = "default_keep_delivered")]
    pub keep_delivered: Dur,
}

fn default_store_max_bytes() -> Size {
    Size(1 << 30)
}
fn default_store_concurrency() -> usize {
    16
}
fn default_attempt_timeout() -> Dur {
    Dur(std::time::Duration::from_secs(30))
}
fn default_retry_initial() -> Dur {
    Dur(std::time::Duration::from_secs(1))
}
fn default_retry_max() -> Dur {
    Dur(std::time::Duration::from_secs(600))
}
fn default_give_up_after() -> Dur {
    Dur(std::time::Duration::from_secs(72 * 3600))
}
fn default_keep_delivered() -> Dur {
    Dur(std::time::Duration::from_secs(24 * 3600))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Listen {
    pub address: SocketAddr,
    pub proxy_protocol: bool,
    pub trusted_proxies: Vec<Entry<Network>>,
    pub max_connections: usize,
    pub handshake_timeout: Dur,
    pub header_timeout: Dur,
    /// Extension: the whole body must arrive within this (a trickled body gets 408).
    pub body_timeout: Dur,
    pub idle_timeout: Dur,
    pub shutdown_grace: Dur,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            address: SocketAddr::from(([0, 0, 0, 0], 8443)),
            proxy_protocol: false,
            trusted_proxies: Vec::new(),
            max_connections: 10_000,
            handshake_timeout: Dur(std::time::Duration::from_secs(10)),
            header_timeout: Dur(std::time::Duration::from_secs(10)),
            body_timeout: Dur(std::time::Duration::from_secs(300)),
            idle_timeout: Dur(std::time::Duration::from_secs(60)),
            shutdown_grace: Dur(std::time::Duration::from_secs(25)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default)]
    pub client_ca: PathBuf,
    #[serde(default = "default_min_version")]
    pub min_version: TlsVersion,
    #[serde(default = "yes")]
    pub check_validity: bool,
}

/// One allow-list entry, parsed (and so validated) while the file is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<T>(pub T);

impl<'de, T> Deserialize<'de> for Entry<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d).map(Entry)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "T: std::str::FromStr, T::Err: std::fmt::Display"))]
pub(crate) struct List<T> {
    #[serde(default = "Vec::new")]
    pub allow: Vec<Entry<T>>,
    #[serde(default)]
    pub files: Vec<PathBuf>,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub url_ca: PathBuf,
    /// Extension: extra request headers for `url` (e.g. a bearer token), values are secrets.
    #[serde(default)]
    pub url_headers: BTreeMap<String, SecretSource>,
    #[serde(default = "default_refresh")]
    pub refresh: Dur,
    #[serde(default)]
    pub cache: PathBuf,
    /// SPEC §10: a refusal as unknown starts an early refresh (default: true with a `url`).
    pub refresh_on_unknown: Option<bool>,
    #[serde(default = "default_refresh_on_unknown_interval")]
    pub refresh_on_unknown_interval: Dur,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequiredHeader {
    #[serde(default = "default_header_name", deserialize_with = "from_str")]
    pub name: http::HeaderName,
    pub values: Vec<SecretSource>,
    #[serde(default = "yes")]
    pub strip: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeveloperPayload {
    #[serde(default = "default_pointer")]
    pub pointer: String,
    pub values: Vec<SecretSource>,
    /// `None` when not written: `["/"]` without `[[routes]]`, an error with them.
    pub path_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Request {
    pub methods: Vec<String>,
    /// `None` when not written: `["/"]` without `[[routes]]`, an error with them.
    pub path_prefixes: Option<Vec<String>>,
    pub max_body: Size,
    /// Extension: the most request-body bytes buffered at once, over all requests.
    pub max_buffered: Size,
    /// Extension of SPEC §4: more inbound headers to remove before forwarding.
    pub strip_headers: Vec<Entry<http::HeaderName>>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            methods: vec!["POST".into(), "PUT".into()],
            path_prefixes: None,
            max_body: Size(16 << 20),
            max_buffered: Size(256 << 20),
            strip_headers: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Upstream {
    pub url: String,
    pub connect_timeout: Dur,
    pub timeout: Dur,
    pub host: HostMode,
}

impl Default for Upstream {
    fn default() -> Self {
        Upstream {
            url: "http://127.0.0.1:8080".into(),
            connect_timeout: Dur(std::time::Duration::from_secs(2)),
            timeout: Dur(std::time::Duration::from_secs(30)),
            host: HostMode::Preserve,
        }
    }
}

/// One `[[routes]]` entry (SPEC §8); what it leaves out comes from the sections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    pub name: String,
    pub path_prefixes: Vec<String>,
    pub methods: Option<Vec<String>>,
    pub max_body: Option<Size>,
    pub required_header: Option<Toggle<RouteHeader>>,
    pub developer_payload: Option<Toggle<RoutePayload>>,
    pub upstream: Option<RouteUpstream>,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub dedup: String,
    pub dedup_window: Option<Dur>,
}

/// `true`/`false`, or a table that replaces the section on one route.
#[derive(Debug)]
pub(crate) enum Toggle<T> {
    On(bool),
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Toggle<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("true, false or a table")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Toggle<T>, E> {
                Ok(Toggle::On(b))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Toggle<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Toggle::Table)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A route's own required header.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteHeader {
    #[serde(default = "default_header_name", deserialize_with = "from_str")]
    pub name: http::HeaderName,
    pub values: Vec<SecretSource>,
    #[serde(default = "yes")]
    pub strip: bool,
}

/// A route's own developerPayload (it applies to the whole route).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutePayload {
    #[serde(default = "default_pointer")]
    pub pointer: String,
    pub values: Vec<SecretSource>,
}

/// A route's upstream: the keys of `[upstream]`, each defaulting to `[upstream]`'s value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteUpstream {
    pub url: Option<String>,
    pub connect_timeout: Option<Dur>,
    pub timeout: Option<Dur>,
    pub host: Option<HostMode>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Delivery {
    #[default]
    Forward,
    Store,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Identity {
    pub key: SecretSource,
    #[serde(default = "default_key_id")]
    pub key_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Admin {
    pub address: String,
    /// SPEC §9.6: the bearer token of the store API (a secret); without it the API is 404.
    pub token: Option<SecretSource>,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: "127.0.0.1:9901".into(),
            token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Log {
    pub format: LogFormat,
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_min_version() -> TlsVersion {
    TlsVersion::Tls12
}
fn default_refresh() -> Dur {
    Dur(std::time::Duration::from_secs(24 * 3600))
}
fn default_refresh_on_unknown_interval() -> Dur {
    Dur(std::time::Duration::from_secs(300))
}
fn default_header_name() -> http::HeaderName {
    http::HeaderName::from_static("x-webhook-secret")
}
fn default_pointer() -> String {
    "/developerPayload".into()
}
fn default_key_id() -> String {
    "hookgate-1".into()
}
