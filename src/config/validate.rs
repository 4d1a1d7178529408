//! Checks that span several keys or need more than a type, each naming the key it rejects.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::file;
use super::{
    Config, ConfigError, DeveloperPayload, ListConfig, RemoteConfig, RequiredHeader, UpstreamTarget,
};

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
        None
    } else {
        let url: http::Uri = raw.url.parse().map_err(|e| {
            cfg.error(
                &format!("{section}.url"),
                format!("{:?} is not a URL: {e}", without_query(&raw.url)),
            )
        })?;
        if url.scheme_str() != Some("https") || url.host().is_none() {
            return Err(cfg.error(
                &format!("{section}.url"),
                format!(
                    "{:?} must be an https:// URL (allow lists are never fetched in clear text)",
                    without_query(&raw.url)
                ),
            ));
        }
        if raw.refresh.0 < std::time::Duration::from_secs(1) {
            return Err(cfg.error(&format!("{section}.refresh"), "must be at least 1s"));
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

pub(super) fn developer_payload(
    cfg: &Config,
    raw: file::DeveloperPayload,
) -> Result<DeveloperPayload, ConfigError> {
    if !raw.pointer.is_empty() && !raw.pointer.starts_with('/') {
        return Err(cfg.error(
            "developer_payload.pointer",
            format!(
                "{:?} is not an RFC 6901 JSON pointer: it must start with '/'",
                raw.pointer
            ),
        ));
    }
    if raw.values.is_empty() {
        return Err(cfg.error("developer_payload.values", "needs at least one value"));
    }
    prefixes(cfg, "developer_payload.path_prefixes", &raw.path_prefixes)?;
    Ok(DeveloperPayload {
        pointer: raw.pointer,
        values: raw.values,
        path_prefixes: raw.path_prefixes,
    })
}

pub(super) fn methods(cfg: &Config, raw: &[String]) -> Result<Vec<http::Method>, ConfigError> {
    if raw.is_empty() {
        return Err(cfg.error("request.methods", "needs at least one method"));
    }
    raw.iter()
        .map(|m| {
            http::Method::from_bytes(m.as_bytes())
                .ok()
                .filter(|_| m.bytes().all(|b| b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    cfg.error(
                        "request.methods",
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
    raw: &str,
) -> Result<(UpstreamTarget, String), ConfigError> {
    let bad = |why: &str| {
        cfg.error(
            "upstream.url",
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

pub(super) fn key_id(cfg: &Config, id: &str) -> Result<(), ConfigError> {
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        return Err(cfg.error(
            "identity.key_id",
            "must be non-empty printable ASCII without '\"' or '\\'",
        ));
    }
    Ok(())
}

/// A URL for an error message: a query may hold a token, so it is not shown.
fn without_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?<redacted>"),
        None => url.to_owned(),
    }
}

fn non_empty(p: PathBuf) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then_some(p)
}
