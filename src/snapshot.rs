//! Everything built from one `Config`: the TLS acceptor, the static allow-list entries, the
//! request rules, the signer and the upstream clients. Immutable once built: a connection loads
//! the current snapshot once, so it sees one config generation from accept to close; reload
//! builds a whole new one or keeps the old. What changes between reloads (the remote list
//! entries, so the admission sets in force) is `admission`'s, owned by the gate.

use std::sync::Arc;

use base64::Engine;
use http::HeaderValue;
use tokio_rustls::TlsAcceptor;

use crate::admission::{Admission, AdmissionCell, RemoteEntries};
use crate::allowlist::remote::{
    RemoteError, RemoteSource, RemoteSpec, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT,
};
use crate::allowlist::{self, Network, Thumbprint};
use crate::config::{Config, ConfigError, ListConfig, Routing};
use crate::digest::{hex, sha256};
use crate::forward::Upstream;
use crate::identity::StripList;
use crate::metrics::Metrics;
use crate::policy::normalize::normalized;
use crate::routes::{HeaderRule, PayloadRule, Route, RouteTable};
use crate::secret::{Secret, SecretSource};
use crate::signature::IdentitySigner;
use crate::tls::{self, TlsInputs};

/// A validated remote source, ready to be started by `refresh::sync`.
pub(crate) struct RemotePlan {
    /// Identifies the source's settings (URL, CA, header values, refresh, cache): a reload
    /// restarts the refresh task only when this changes.
    pub key: String,
    /// What the refresh task builds its `RemoteSource` from (already built once, to check it).
    pub spec: RemoteSpec,
    pub refresh: std::time::Duration,
    pub cache: Option<std::path::PathBuf>,
}

pub(crate) struct Snapshot {
    pub config: Config,
    pub remote_pins: Option<RemotePlan>,
    pub remote_ips: Option<RemotePlan>,
    pub acceptor: TlsAcceptor,
    pub cert_not_after: i64,
    /// The static entries (inline and files) of `[thumbprints]` and `[source_ips]`; `None`: the
    /// section is absent. Merged with the remote entries in `admission`.
    pub pins: Option<Vec<Thumbprint>>,
    pub source_ips: Option<Vec<Network>>,
    /// SPEC §8: every route's checks and upstream.
    pub routes: RouteTable,
    pub signer: Option<IdentitySigner>,
    /// `admin.token`, resolved: the store API's bearer token.
    pub admin_token: Option<Secret>,
    /// What `check` and start-up print as `warning:` lines.
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// What this snapshot admits with `remote`'s entries merged into its lists.
    pub(crate) fn admission(&self, remote: &RemoteEntries) -> Admission {
        Admission::new(self.pins.as_deref(), self.source_ips.as_deref(), remote)
    }

    /// Reads every file and secret the config names and builds the whole snapshot, or fails
    /// naming the key that is wrong. Its TLS verifier reads the pins in force from `admission`.
    pub(crate) fn build(
        config: Config,
        admission: &AdmissionCell,
        metrics: &Metrics,
    ) -> Result<Snapshot, ConfigError> {
        let mut warnings = Vec::new();
        let pins = config
            .thumbprints
            .as_ref()
            .map(|l| load_list(&config, "thumbprints", l))
            .transpose()?;
        let source_ips = config
            .source_ips
            .as_ref()
            .map(|l| load_list(&config, "source_ips", l))
            .transpose()?;
        if source_ips.is_none() {
            warnings
                .push("no [source_ips] section: connections are accepted from any address".into());
        }

        let tls = &config.tls;
        let cert = config.resolve_path(&tls.cert);
        let key = config.resolve_path(&tls.key);
        let client_ca = tls.client_ca.as_ref().map(|p| config.resolve_path(p));
        let server_tls = tls::build_server_tls(TlsInputs {
            cert: &cert,
            key: &key,
            client_ca: client_ca.as_deref(),
            min_version: tls.min_version,
            check_validity: tls.check_validity,
            admission: admission.clone(),
        })
        .map_err(|e| {
            // Every TLS error names the file it is about: that file says which key to blame.
            let path = e.path();
            let k = if matches!(e, tls::TlsError::Pem(tls::pem::PemError::NoKey { .. }))
                || path == key
            {
                "tls.key"
            } else if Some(path) == client_ca.as_deref() {
                "tls.client_ca"
            } else {
                "tls.cert"
            };
            config.error(k, e.to_string())
        })?;

        let routes = build_routes(&config, metrics, &mut warnings)?;
        let signer = match &config.identity {
            Some(id) => {
                let secret = resolve_one(&config, "identity.key", &id.key, &mut warnings)?;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(secret.expose().trim_ascii())
                    .map_err(|_| {
                        config.error(
                            "identity.key",
                            "is not valid base64; generate one with `openssl rand -base64 32`",
                        )
                    })?;
                Some(
                    IdentitySigner::new(&key, &id.key_id)
                        .map_err(|e| config.error("identity.key", e.to_string()))?,
                )
            }
            None => None,
        };
        let remote_pins = match &config.thumbprints {
            Some(l) => plan_remote(&config, "thumbprints", l)?,
            None => None,
        };
        let remote_ips = match &config.source_ips {
            Some(l) => plan_remote(&config, "source_ips", l)?,
            None => None,
        };
        let admin_token = match &config.admin_token {
            Some(t) => Some(resolve_one(&config, "admin.token", t, &mut warnings)?),
            None => None,
        };
        Ok(Snapshot {
            admin_token,
            remote_pins,
            remote_ips,
            acceptor: TlsAcceptor::from(server_tls.config),
            cert_not_after: server_tls.cert_not_after,
            pins,
            source_ips,
            routes,
            signer,
            warnings,
            config,
        })
    }
}

/// Every route of the config, its secrets read, its upstream client made (a route without its
/// own `upstream` shares `[upstream]`'s connection pool).
fn build_routes(
    config: &Config,
    metrics: &Metrics,
    warnings: &mut Vec<String>,
) -> Result<RouteTable, ConfigError> {
    let shared = Arc::new(Upstream::new(&config.upstream));
    let mut routes = Vec::with_capacity(config.routes.len());
    for (i, r) in config.routes.iter().enumerate() {
        // Errors name the key where it was written: the section, or the route's own table.
        let key = |own: bool, section: &str, k: &str| match (config.routing, own) {
            (Routing::Routes, true) => format!("routes[{i}].{section}.{k}"),
            _ => format!("{section}.{k}"),
        };
        let own_header = config.routing == Routing::Routes
            && r.required_header.as_ref().map(|h| h.name.clone())
                != config.required_header.as_ref().map(|h| h.name.clone());
        let header = match &r.required_header {
            Some(h) => Some(HeaderRule {
                name: h.name.clone(),
                values: resolve_all(
                    config,
                    &key(own_header, "required_header", "values"),
                    &h.values,
                    warnings,
                )?,
                strip: h.strip,
            }),
            None => None,
        };
        let payload = match &r.developer_payload {
            Some(p) => Some(PayloadRule {
                pointer: p.pointer.clone(),
                values: resolve_all(config, "developer_payload.values", &p.values, warnings)?,
                under: p
                    .path_prefixes
                    .as_ref()
                    .map(|ps| ps.iter().map(|p| normalized(p)).collect()),
            }),
            None => None,
        };
        if config.routing == Routing::Routes && header.is_none() && payload.is_none() {
            warnings.push(format!(
                "route \"{}\" has neither required_header nor developer_payload: any customer of the sender can deliver to it",
                r.name
            ));
        }
        let allow = r
            .methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let strip = StripList::new(
            header
                .iter()
                .filter(|h| h.strip)
                .map(|h| h.name.clone())
                .chain(config.request.strip_headers.iter().cloned()),
        );
        routes.push(Route {
            methods: r.methods.clone(),
            allow: HeaderValue::try_from(allow).expect("method tokens are valid header text"),
            max_body: r.max_body,
            header,
            payload,
            strip,
            upstream: match &r.upstream {
                Some(u) => Arc::new(Upstream::new(u)),
                None => shared.clone(),
            },
            store: r.store,
            dedup: r.dedup.clone(),
            metrics: metrics.route(&r.name),
        });
        if r.store {
            metrics.store_route(&r.name);
        }
    }
    let prefixes: Vec<Vec<String>> = config
        .routes
        .iter()
        .map(|r| r.path_prefixes.clone())
        .collect();
    Ok(RouteTable::new(config.routing, routes, &prefixes))
}

fn load_list<T>(config: &Config, section: &str, list: &ListConfig<T>) -> Result<Vec<T>, ConfigError>
where
    T: Copy + std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let mut entries = list.allow.clone();
    for (i, file) in list.files.iter().enumerate() {
        let path = config.resolve_path(file);
        let more: Vec<T> = allowlist::load_list_file(&path)
            .map_err(|e| config.error(&format!("{section}.files[{i}]"), e.to_string()))?;
        entries.extend(more);
    }
    Ok(entries)
}

fn resolve_one(
    config: &Config,
    key: &str,
    source: &SecretSource,
    warnings: &mut Vec<String>,
) -> Result<Secret, ConfigError> {
    if source.is_inline() {
        warnings.push(format!(
            "{key} is written inline in the config file; prefer {{ env = \"NAME\" }} or {{ file = \"PATH\" }}"
        ));
    }
    source
        .resolve(&config.dir)
        .map_err(|e| config.error(key, e.to_string()))
}

fn resolve_all(
    config: &Config,
    key: &str,
    sources: &[SecretSource],
    warnings: &mut Vec<String>,
) -> Result<Vec<Secret>, ConfigError> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| resolve_one(config, &format!("{key}[{i}]"), s, warnings))
        .collect()
}

/// Reads `url_ca`, resolves the `url_headers` secrets and builds the source (which checks the
/// URL and the CA bundle) so that `check` catches every mistake before `run`.
fn plan_remote<T>(
    config: &Config,
    section: &str,
    list: &ListConfig<T>,
) -> Result<Option<RemotePlan>, ConfigError> {
    let Some(remote) = &list.remote else {
        return Ok(None);
    };
    let mut key = format!("{}|{:?}|{:?}|", remote.url, remote.refresh, remote.cache);
    let ca_pem = match &remote.url_ca {
        Some(p) => {
            let path = config.resolve_path(p);
            let pem = crate::fsio::read(&path).map_err(|e| {
                config.error(
                    &format!("{section}.url_ca"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            key.push_str(&hex(&sha256(&pem)));
            Some(pem)
        }
        None => None,
    };
    let mut headers = Vec::new();
    for (name, source) in &remote.headers {
        let k = format!("{section}.url_headers.{name}");
        let secret = source
            .resolve(&config.dir)
            .map_err(|e| config.error(&k, e.to_string()))?;
        let mut value = http::HeaderValue::from_bytes(secret.expose())
            .map_err(|_| config.error(&k, "the value is not valid in an HTTP header"))?;
        value.set_sensitive(true);
        key.push_str(&format!("|{name}={}", hex(&sha256(secret.expose()))));
        headers.push((name.clone(), value));
    }
    let spec = RemoteSpec {
        url: remote.url.clone(),
        ca_pem,
        headers,
        timeout: DEFAULT_TIMEOUT,
        max_bytes: DEFAULT_MAX_BYTES,
    };
    RemoteSource::new(spec.clone()).map_err(|e| {
        let k = match e {
            RemoteError::Ca { .. } => "url_ca",
            RemoteError::ReservedHeader { .. } => "url_headers",
            _ => "url",
        };
        config.error(&format!("{section}.{k}"), e.to_string())
    })?;
    Ok(Some(RemotePlan {
        key: hex(&sha256(key.as_bytes())),
        spec,
        refresh: remote.refresh,
        cache: remote.cache.as_ref().map(|p| config.resolve_path(p)),
    }))
}
