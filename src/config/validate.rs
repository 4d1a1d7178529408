//! Checks that span several keys or need more than a type, each naming the key it rejects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file;
use super::{
    Config, ConfigError, Dedup, DeveloperPayload, ListConfig, RemoteConfig, RequiredHeader,
    RouteConfig, UpstreamTarget,
};
use crate::allowlist::remote::{check_url, loggable_url, redacted_url, RemoteError, UrlProblem};

pub(super) fn listen(cfg: &Config, raw: &file::Listen) -> Result<(), ConfigError> {
    if raw.proxy_protocol && raw.trusted_proxies.is_empty() {
        return Err(cfg.error(
            "listen.trusted_proxies",
            "proxy_protocol = true needs the CIDRs of the proxies allowed to send the header",
        ));
    }
    if raw.max_connections == 0 {
        return Err(cfg.error("listen.max_connections", "must be at least 1"));
    }
    for (key, d) in [
        ("listen.handshake_timeout", raw.handshake_timeout),
        ("listen.header_timeout", raw.header_timeout),
        ("listen.body_timeout", raw.body_timeout),
        ("listen.idle_timeout", raw.idle_timeout),
    ] {
        if d.0.is_zero() {
            return Err(cfg.error(key, "must be more than 0"));
        }
    }
    Ok(())
}

pub(super) fn list<T: Copy>(
    cfg: &Config,
    section: &str,
    raw: file::List<T>,
) -> Result<ListConfig<T>, ConfigError> {
    let remote = if raw.url.is_empty() {
        if !raw.url_headers.is_empty() || !raw.url_ca.as_os_str().is_empty() {
            return Err(cfg.error(
                &format!("{section}.url"),
                "url_ca and url_headers need a url",
            ));
        }
        if raw.refresh_on_unknown == Some(true) {
            return Err(cfg.error(
                &format!("{section}.refresh_on_unknown"),
                "needs a url to refresh from",
            ));
        }
        None
    } else {
        let url: http::Uri = raw.url.parse().map_err(|e| {
            cfg.error(
                &format!("{section}.url"),
                format!("{:?} is not a URL: {e}", redacted_url(&raw.url)),
            )
        })?;
        match check_url(&url) {
            Ok(()) => {}
            Err(UrlProblem::NotHttps | UrlProblem::NoHost) => {
                let why = "must be an https:// URL (allow lists are never fetched in clear text)";
                let shown = redacted_url(&raw.url);
                return Err(cfg.error(&format!("{section}.url"), format!("{shown:?} {why}")));
            }
            // In the words the fetcher gives (which `check` printed before this rule was shared).
            Err(problem) => {
                let e = RemoteError::Url {
                    url: loggable_url(&url),
                    problem,
                };
                return Err(cfg.error(&format!("{section}.url"), e.to_string()));
            }
        }
        if raw.refresh.0 < std::time::Duration::from_secs(1) {
            return Err(cfg.error(&format!("{section}.refresh"), "must be at least 1s"));
        }
        if raw.refresh_on_unknown_interval.0 < std::time::Duration::from_secs(1) {
            return Err(cfg.error(
                &format!("{section}.refresh_on_unknown_interval"),
                "must be at least 1s (it bounds how often strangers can make hookgate fetch)",
            ));
        }
        let mut headers = Vec::new();
        for (name, value) in raw.url_headers {
            let header: http::HeaderName = name.parse().map_err(|_| {
                cfg.error(
                    &format!("{section}.url_headers"),
                    format!("{name:?} is not a valid header name"),
                )
            })?;
            headers.push((header, value));
        }
        Some(RemoteConfig {
            url,
            url_ca: non_empty(raw.url_ca),
            headers,
            refresh: raw.refresh.0,
            cache: non_empty(raw.cache),
            refresh_on_unknown: raw.refresh_on_unknown.unwrap_or(true),
            refresh_on_unknown_interval: raw.refresh_on_unknown_interval.0,
        })
    };
    if raw.allow.is_empty() && raw.files.is_empty() && remote.is_none() {
        return Err(cfg.error(
            section,
            format!("[{section}] has no source: set allow, files or url (or remove the section)"),
        ));
    }
    Ok(ListConfig {
        allow: raw.allow.iter().map(|e| e.0).collect(),
        files: raw.files,
        remote,
    })
}

pub(super) fn required_header(
    cfg: &Config,
    raw: file::RequiredHeader,
) -> Result<RequiredHeader, ConfigError> {
    if raw.values.is_empty() {
        return Err(cfg.error("required_header.values", "needs at least one value"));
    }
    Ok(RequiredHeader {
        name: raw.name,
        values: raw.values,
        strip: raw.strip,
    })
}

/// `[developer_payload]`; `default_route`: there are no `[[routes]]`, so its `path_prefixes`
/// apply (with routes they are an error: each route says whether it checks the payload).
pub(super) fn developer_payload(
    cfg: &Config,
    raw: file::DeveloperPayload,
    default_route: bool,
) -> Result<DeveloperPayload, ConfigError> {
    let (pointer, values) = payload_parts(cfg, "developer_payload", raw.pointer, raw.values)?;
    let path_prefixes = match (raw.path_prefixes, default_route) {
        (Some(_), false) => {
            return Err(cfg.error(
                "developer_payload.path_prefixes",
                "with [[routes]], give each route its path_prefixes (and developer_payload = false where it must not apply)",
            ))
        }
        (None, false) => None,
        (p, true) => {
            let p = p.unwrap_or_else(|| vec!["/".into()]);
            prefixes(cfg, "developer_payload.path_prefixes", &p)?;
            Some(p)
        }
    };
    Ok(DeveloperPayload {
        pointer,
        values,
        path_prefixes,
    })
}

fn payload_parts(
    cfg: &Config,
    key: &str,
    pointer: String,
    values: Vec<crate::secret::SecretSource>,
) -> Result<(String, Vec<crate::secret::SecretSource>), ConfigError> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(cfg.error(
            &format!("{key}.pointer"),
            format!("{pointer:?} is not an RFC 6901 JSON pointer: it must start with '/'"),
        ));
    }
    if values.is_empty() {
        return Err(cfg.error(&format!("{key}.values"), "needs at least one value"));
    }
    Ok((pointer, values))
}

/// The one route of a config without `[[routes]]`: SPEC §2–3 as written.
pub(super) fn default_route(cfg: &Config, path_prefixes: Vec<String>) -> RouteConfig {
    RouteConfig {
        name: "default".into(),
        path_prefixes,
        methods: cfg.request.methods.clone(),
        max_body: cfg.request.max_body,
        required_header: cfg.required_header.clone(),
        developer_payload: cfg.developer_payload.clone(),
        upstream: None,
        store: false,
        dedup: None,
    }
}

/// `[store]`: exactly one of `path` (the embedded store) and `url` (PostgreSQL, SPEC §9.5).
pub(super) fn store(cfg: &Config, raw: file::Store) -> Result<super::StoreConfig, ConfigError> {
    let backend =
        match (raw.path.as_os_str().is_empty(), raw.url) {
            (false, None) => super::StoreBackend::Path(cfg.resolve_path(&raw.path)),
            (true, Some(url)) => super::StoreBackend::Url(url),
            (false, Some(_)) => return Err(cfg.error(
                "store.url",
                "set either store.path (the embedded store) or store.url (PostgreSQL), not both",
            )),
            (true, None) => {
                return Err(cfg.error(
                    "store.path",
                    "set the directory of the embedded store (or store.url for PostgreSQL)",
                ))
            }
        };
    if raw.concurrency == 0 {
        return Err(cfg.error("store.concurrency", "must be at least 1"));
    }
    if raw.max_bytes.0 == 0 {
        return Err(cfg.error("store.max_bytes", "must be more than 0 bytes"));
    }
    for (key, d) in [
        ("store.attempt_timeout", raw.attempt_timeout),
        ("store.retry_initial", raw.retry_initial),
        ("store.retry_max", raw.retry_max),
        ("store.give_up_after", raw.give_up_after),
    ] {
        if d.0.is_zero() {
            return Err(cfg.error(key, "must be more than 0"));
        }
    }
    if raw.retry_max.0 < raw.retry_initial.0 {
        return Err(cfg.error("store.retry_max", "must be at least store.retry_initial"));
    }
    Ok(super::StoreConfig {
        path: backend,
        max_bytes: raw.max_bytes.0,
        concurrency: raw.concurrency,
        attempt_timeout: raw.attempt_timeout.0,
        retry_initial: raw.retry_initial.0,
        retry_max: raw.retry_max.0,
        give_up_after: raw.give_up_after.0,
        keep_delivered: raw.keep_delivered.0,
    })
}

/// `[[routes]]` (SPEC §8), each default taken from the sections.
pub(super) fn routes(cfg: &Config, raw: Vec<file::Route>) -> Result<Vec<RouteConfig>, ConfigError> {
    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    let mut seen_prefixes: Vec<(String, String)> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("routes[{i}].{k}");
        let name_ok = (1..=32).contains(&r.name.len())
            && r.name
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if !name_ok {
            return Err(cfg.error(
                &key("name"),
                format!(
                    "{:?} must be 1-32 characters of a-z, 0-9, '_' and '-'",
                    r.name
                ),
            ));
        }
        if r.name == "none" {
            return Err(cfg.error(
                &key("name"),
                "\"none\" is the route label of requests that match no route; choose another name",
            ));
        }
        if routes.iter().any(|o| o.name == r.name) {
            return Err(cfg.error(&key("name"), format!("route {:?} is defined twice", r.name)));
        }
        prefixes(cfg, &key("path_prefixes"), &r.path_prefixes)?;
        for p in &r.path_prefixes {
            let normal = crate::policy::normalize::normalized(p);
            if let Some((other, _)) = seen_prefixes.iter().find(|(_, n)| *n == normal) {
                return Err(cfg.error(
                    &key("path_prefixes"),
                    format!(
                        "{p:?} normalizes to {normal:?}, like a prefix of route {other:?}: a path could not tell them apart"
                    ),
                ));
            }
            seen_prefixes.push((r.name.clone(), normal));
        }
        let methods = match &r.methods {
            Some(m) => self::methods(cfg, &key("methods"), m)?,
            None => cfg.request.methods.clone(),
        };
        let max_body =
            match r.max_body {
                Some(s) if s.0 == 0 => {
                    return Err(cfg.error(&key("max_body"), "must be more than 0 bytes"))
                }
                Some(s) if s.0 > cfg.request.max_buffered => return Err(cfg.error(
                    &key("max_body"),
                    "is more than request.max_buffered, so no maximum-size body could ever be read",
                )),
                Some(s) => s.0,
                None => cfg.request.max_body,
            };
        let required_header = match r.required_header {
            None => cfg.required_header.clone(),
            Some(file::Toggle::On(false)) => None,
            Some(file::Toggle::On(true)) => Some(cfg.required_header.clone().ok_or_else(|| {
                cfg.error(
                    &key("required_header"),
                    "is true but there is no [required_header] section",
                )
            })?),
            Some(file::Toggle::Table(h)) => {
                if h.values.is_empty() {
                    return Err(
                        cfg.error(&key("required_header.values"), "needs at least one value")
                    );
                }
                Some(RequiredHeader {
                    name: h.name,
                    values: h.values,
                    strip: h.strip,
                })
            }
        };
        let whole_route = |p: &DeveloperPayload| DeveloperPayload {
            path_prefixes: None,
            ..p.clone()
        };
        let developer_payload = match r.developer_payload {
            None => cfg.developer_payload.as_ref().map(whole_route),
            Some(file::Toggle::On(false)) => None,
            Some(file::Toggle::On(true)) => Some(
                cfg.developer_payload
                    .as_ref()
                    .map(whole_route)
                    .ok_or_else(|| {
                        cfg.error(
                            &key("developer_payload"),
                            "is true but there is no [developer_payload] section",
                        )
                    })?,
            ),
            Some(file::Toggle::Table(p)) => {
                let (pointer, values) =
                    payload_parts(cfg, &key("developer_payload"), p.pointer, p.values)?;
                Some(DeveloperPayload {
                    pointer,
                    values,
                    path_prefixes: None,
                })
            }
        };
        let upstream = match r.upstream {
            None => None,
            Some(u) => {
                let mut up = cfg.upstream.clone();
                if let Some(url) = &u.url {
                    (up.target, up.base) = upstream_url(cfg, &key("upstream.url"), url)?;
                }
                if let Some(d) = u.connect_timeout {
                    up.connect_timeout = d.0;
                }
                if let Some(d) = u.timeout {
                    up.timeout = d.0;
                }
                if let Some(h) = u.host {
                    up.host = h;
                }
                Some(up)
            }
        };
        let store = r.delivery == file::Delivery::Store;
        if store && cfg.store.is_none() {
            return Err(cfg.error(
                &key("delivery"),
                "\"store\" needs a [store] section (SPEC §9)",
            ));
        }
        if !store && (!r.dedup.is_empty() || r.dedup_window.is_some()) {
            let k = if r.dedup.is_empty() {
                "dedup_window"
            } else {
                "dedup"
            };
            return Err(cfg.error(&key(k), "only applies to a route with delivery = \"store\""));
        }
        let dedup = match r.dedup.as_str() {
            "" => None,
            "path" => Some(Dedup::Path),
            "body" => Some(Dedup::Body),
            p if p.starts_with('/') => Some(Dedup::Pointer(p.to_owned())),
            other => {
                return Err(cfg.error(
                    &key("dedup"),
                    format!("{other:?} is not \"\", \"path\", \"body\" or a JSON pointer (\"/scannedDocument/scanId\")"),
                ))
            }
        };
        let dedup_window = r
            .dedup_window
            .map_or(Duration::from_secs(72 * 3600), |d| d.0);
        if dedup.is_some() && dedup_window.is_zero() {
            return Err(cfg.error(&key("dedup_window"), "must be more than 0"));
        }
        routes.push(RouteConfig {
            name: r.name,
            path_prefixes: r.path_prefixes,
            methods,
            max_body,
            required_header,
            developer_payload,
            upstream,
            store,
            dedup: dedup.map(|d| (d, dedup_window)),
        });
    }
    Ok(routes)
}

pub(super) fn methods(
    cfg: &Config,
    key: &str,
    raw: &[String],
) -> Result<Vec<http::Method>, ConfigError> {
    if raw.is_empty() {
        return Err(cfg.error(key, "needs at least one method"));
    }
    raw.iter()
        .map(|m| {
            http::Method::from_bytes(m.as_bytes())
                .ok()
                .filter(|_| m.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    cfg.error(
                        key,
                        format!(
                            "{m:?} is not an HTTP method: write it in upper case, e.g. \"POST\""
                        ),
                    )
                })
        })
        .collect()
}

pub(super) fn prefixes(cfg: &Config, key: &str, list: &[String]) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(cfg.error(key, "needs at least one prefix (\"/\" matches every path)"));
    }
    match list.iter().find(|p| !p.starts_with('/')) {
        Some(p) => Err(cfg.error(key, format!("{p:?} must start with '/'"))),
        None => Ok(()),
    }
}

/// `http://HOST:PORT[/BASE]` or `unix:/PATH`.
pub(super) fn upstream_url(
    cfg: &Config,
    key: &str,
    raw: &str,
) -> Result<(UpstreamTarget, String), ConfigError> {
    let bad = |why: &str| {
        cfg.error(
            key,
            format!("{raw:?} {why}; expected http://HOST:PORT[/BASE] or unix:/PATH/TO.sock"),
        )
    };
    if let Some(path) = raw.strip_prefix("unix:") {
        if !path.starts_with('/') {
            return Err(bad("needs an absolute socket path"));
        }
        return Ok((UpstreamTarget::Unix(PathBuf::from(path)), String::new()));
    }
    let uri: http::Uri = raw.parse().map_err(|_| bad("is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad(
            "must use http:// (hookgate speaks plain HTTP/1.1 to the upstream)",
        ));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    let host = uri.host().ok_or_else(|| bad("has no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let base = uri.path().trim_end_matches('/').to_owned();
    Ok((
        UpstreamTarget::Tcp {
            host,
            port: uri.port_u16().unwrap_or(80),
        },
        base,
    ))
}

pub(super) fn admin(cfg: &Config, raw: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse().map(Some).map_err(|_| {
        cfg.error(
            "admin.address",
            format!("{raw:?} is not a socket address like \"127.0.0.1:9901\" (\"\" disables the admin listener)"),
        )
    })
}

/// The same rule `run` applies when it installs the logger (`logging::parse_filter`).
pub(super) fn log_level(cfg: &Config) -> Result<(), ConfigError> {
    crate::logging::parse_filter(&cfg.log_level)
        .map(|_| ())
        .map_err(|e| cfg.error("log.level", e.to_string()))
}

/// The signer's rule (`signature::check_key_id`), reported in config's words.
pub(super) fn key_id(cfg: &Config, id: &str) -> Result<(), ConfigError> {
    crate::signature::check_key_id(id).map_err(|_| {
        cfg.error(
            "identity.key_id",
            "must be non-empty printable ASCII without '\"' or '\\'",
        )
    })
}

fn non_empty(p: PathBuf) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then_some(p)
}
