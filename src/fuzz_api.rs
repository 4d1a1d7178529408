//! Not a stable API; for `fuzz/` only. Thin wrappers over the crate-private parsers of untrusted
//! bytes (PROXY header, remote list body, list file, config TOML), so cargo-fuzz targets can call
//! them. Each wrapper only converts types and calls the real function; hookgate never uses them.

use std::net::SocketAddr;
use std::path::Path;

use crate::allowlist::{self, Network, Thumbprint};
use crate::config::Config;
use crate::proxy_protocol::{self, ProxiedSource};

/// `proxy_protocol::parse_proxy_header`: `Ok(Some((source, len)))` with `source` `None` for a
/// header naming no client (LOCAL, AF_UNSPEC, UNKNOWN); `Ok(None)` for a strict prefix of a
/// header; `Err` carries the error's message.
pub fn parse_proxy_header(buf: &[u8]) -> Result<Option<(Option<SocketAddr>, usize)>, String> {
    match proxy_protocol::parse_proxy_header(buf) {
        Ok(Some((ProxiedSource::Address(addr), len))) => Ok(Some((Some(addr), len))),
        Ok(Some((ProxiedSource::Local, len))) => Ok(Some((None, len))),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `http1::differential`: hookgate's HTTP/1.1 framing beside hyper 1's server and client
/// (feature `differential`): `disagreement(stream, read_sizes)`, `tiling_violation(stream,
/// read_size)` and `response_disagreement(answer, to_head)` give `None` when the rule holds and
/// what broke it otherwise.
#[cfg(feature = "differential")]
pub use crate::http1::differential::{
    disagreement as http1_disagreement, response_disagreement as http1_response_disagreement,
    tiling_violation as http1_tiling_violation,
};

/// `policy::pointer::lookup` beside the full `serde_json::Value` parse it must agree with
/// (feature `differential`): `None` when both read `body` alike at `pointer` (both refuse it, or
/// both find the same value or nothing), what each said otherwise.
#[cfg(feature = "differential")]
pub fn json_pointer_disagreement(body: &[u8], pointer: &str) -> Option<String> {
    let ours = crate::policy::pointer::lookup(body, pointer).ok();
    let full = crate::policy::pointer::reference(body, pointer);
    (ours != full).then(|| format!("lookup {ours:?}, full parse {full:?}"))
}

/// The entry type of an allow list, as hookgate parses each entry of its list files and of
/// its remote list bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `[thumbprints]`: `Thumbprint`, displayed as `sha1:<hex>` / `sha256:<hex>`.
    Thumbprints,
    /// `[source_ips]`: `Network`, displayed as the truncated CIDR.
    SourceIps,
}

/// Mirror of `allowlist::remote::ParsedList` with each entry displayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedList {
    pub entries: Vec<String>,
    pub skipped: usize,
    pub skipped_samples: Vec<String>,
    pub rejected: Option<String>,
}

/// `allowlist::remote::parse_entries` with the entry parser hookgate's refresh uses for `kind`
/// (`str::parse(..).ok()`).
pub fn parse_remote_list(body: &[u8], kind: ListKind) -> ParsedList {
    match kind {
        ListKind::Thumbprints => remote_list(body, |s| s.parse().ok(), Thumbprint::to_string),
        ListKind::SourceIps => remote_list(body, |s| s.parse().ok(), network),
    }
}

fn remote_list<T>(
    body: &[u8],
    parse_one: impl Fn(&str) -> Option<T>,
    show: impl Fn(&T) -> String,
) -> ParsedList {
    let parsed = allowlist::remote::parse_entries(body, parse_one);
    ParsedList {
        entries: parsed.entries.iter().map(show).collect(),
        skipped: parsed.skipped,
        skipped_samples: parsed.skipped_samples,
        rejected: parsed.rejected,
    }
}

/// `allowlist::parse_list_text` (the body of `thumbprints.files` / `source_ips.files`) for
/// `kind`, each entry displayed; `Err` is (1-based line, message).
pub fn parse_list_text(text: &str, kind: ListKind) -> Result<Vec<String>, (usize, String)> {
    match kind {
        ListKind::Thumbprints => allowlist::parse_list_text::<Thumbprint>(text)
            .map(|pins| pins.iter().map(Thumbprint::to_string).collect()),
        ListKind::SourceIps => allowlist::parse_list_text::<Network>(text)
            .map(|nets| nets.iter().map(network).collect()),
    }
}

/// A `Network` as its CIDR (`Network` itself has no `Display`).
fn network(net: &Network) -> String {
    net.0.to_string()
}

/// Mirror of `config::ConfigError`, plus its `Display` (what `hookgate check` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
    pub display: String,
}

/// `config::Config::parse` of `text` as if read from `path` (no disk access: secrets, certs and
/// list files are only named, not read); `Ok` carries the validated config's `Debug` output.
pub fn parse_config(path: &Path, text: String) -> Result<String, ConfigError> {
    match Config::parse(path, text) {
        Ok(config) => Ok(format!("{config:?}")),
        Err(e) => Err(ConfigError {
            display: e.to_string(),
            key: e.key,
            line: e.line,
            message: e.message,
        }),
    }
}
