//! The global `tracing` subscriber: SPEC §7 JSON lines (`ts`, `level`, `msg`, then every event
//! field flattened with its own JSON type) or the stock compact text format, on stdout, filtered
//! by the configured level only (`RUST_LOG` is ignored so the config file stays authoritative).

use std::fmt::{self, Write as _};
use std::io::IsTerminal;
use std::str::FromStr;
use std::time::SystemTime;

use serde::Deserialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::EnvFilter;

/// Log line format, from `log.format` in the config (`"json"` or `"text"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// One JSON object per line (SPEC §7); the default, for log shippers.
    #[default]
    Json,
    /// Human-readable compact text, colored only when stdout is a terminal.
    Text,
}

impl FromStr for LogFormat {
    type Err = LogInitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(LogInitError::Format(other.to_owned())),
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogInitError {
    /// An unknown format name.
    #[error("log format {0:?} is not supported; use \"json\" or \"text\"")]
    Format(String),
    /// A level that is neither a level name nor a valid filter directive.
    #[error("log level {value:?} is invalid; use trace, debug, info, warn, error, off, or a filter directive such as \"info,hookgate=debug\": {reason}")]
    Level { value: String, reason: String },
    /// A global subscriber or `log` logger was already installed (init called twice).
    #[error("a global log subscriber or `log` logger is already installed")]
    AlreadyInstalled(#[source] TryInitError),
}

/// Installs the global subscriber writing `format` lines to stdout at `level`.
/// Must be called once, before the first event that should be logged.
pub(crate) fn init(format: LogFormat, level: &str) -> Result<(), LogInitError> {
    let filter = parse_filter(level)?;
    let installed = match format {
        LogFormat::Json => json_subscriber(filter, std::io::stdout).try_init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .compact()
            .with_ansi(std::io::stdout().is_terminal())
            .finish()
            .try_init(),
    };
    installed.map_err(LogInitError::AlreadyInstalled)
}

/// Parses `level` without consulting `RUST_LOG`. A bare word must be a level name: EnvFilter
/// would read a typo like `inof` as "everything from target `inof`", silently logging nothing.
/// The one rule for `log.level` and `--log-level`: `check` validates with it too.
pub(crate) fn parse_filter(level: &str) -> Result<EnvFilter, LogInitError> {
    let invalid = |reason: String| LogInitError::Level {
        value: level.to_owned(),
        reason,
    };
    let trimmed = level.trim();
    let is_directive = trimmed.contains(['=', ',', '[', ':']);
    if !is_directive
        && !["trace", "debug", "info", "warn", "error", "off"]
            .iter()
            .any(|l| trimmed.eq_ignore_ascii_case(l))
    {
        return Err(invalid("not a level name".to_owned()));
    }
    EnvFilter::builder()
        .parse(trimmed)
        .map_err(|e| invalid(e.to_string()))
}

/// Fields named like the fixed keys are renamed so a line never has duplicate JSON keys.
const RESERVED: [&str; 4] = ["ts", "level", "msg", "target"];

/// `FormatEvent` writing one flat JSON object per event. The fmt layer formats into a reused
/// thread-local `String` and hands it to stdout in a single `write_all`, so lines never interleave.
/// Span fields are not included: per-request data belongs on the access-log event itself.
pub(crate) struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write!(
            w,
            "{{\"ts\":\"{}\",\"level\":\"{}\",\"msg\":\"",
            humantime::format_rfc3339_millis(SystemTime::now()),
            level_name(meta.level())
        )?;
        // Two passes so `msg` always comes third whatever the field order of the callsite.
        let mut msg = MessageOnly {
            out: &mut w,
            result: Ok(()),
        };
        event.record(&mut msg);
        msg.result?;
        w.write_char('"')?;

        let mut fields = Fields {
            out: &mut w,
            result: Ok(()),
            log_target: None,
        };
        event.record(&mut fields);
        fields.result?;
        // `log` crate records (via tracing-log) carry their real target as a field.
        let target = fields.log_target.as_deref().unwrap_or(meta.target());
        if target != "hookgate" && !target.starts_with("hookgate::") {
            w.write_str(",\"target\":\"")?;
            Escape(&mut w).write_str(target)?;
            w.write_char('"')?;
        }
        w.write_str("}\n")
    }
}

fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::TRACE => "trace",
        tracing::Level::DEBUG => "debug",
        tracing::Level::INFO => "info",
        tracing::Level::WARN => "warn",
        tracing::Level::ERROR => "error",
    }
}

/// Writes the `message` field's text, escaped, and nothing else.
struct MessageOnly<'a, W: fmt::Write> {
    out: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> Visit for MessageOnly<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" && self.result.is_ok() {
            self.result = Escape(&mut *self.out).write_str(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && self.result.is_ok() {
            // `message` is `format_args!`, whose Debug is its Display: stream it through the
            // escaper without an intermediate String.
            self.result = write!(Escape(&mut *self.out), "{value:?}");
        }
    }
}

/// Writes `,"name":value` for every field except `message` and the `log.*` bookkeeping.
struct Fields<'a, W: fmt::Write> {
    out: &'a mut W,
    result: fmt::Result,
    log_target: Option<String>,
}

impl<W: fmt::Write> Fields<'_, W> {
    /// Writes the key and colon; false if the field is skipped or an earlier write failed.
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if self.result.is_err() || name == "message" || name.starts_with("log.") {
            return false;
        }
        let prefix = if RESERVED.contains(&name) {
            ",\"field."
        } else {
            ",\""
        };
        self.result = self
            .out
            .write_str(prefix)
            .and_then(|()| Escape(&mut *self.out).write_str(name))
            .and_then(|()| self.out.write_str("\":"));
        self.result.is_ok()
    }

    fn string(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.quoted(field, |e| e.write_fmt(value));
    }

    /// A `&str` straight through the escaper, without the formatting machinery (every access
    /// log line has seven).
    fn str(&mut self, field: &Field, value: &str) {
        self.quoted(field, |e| e.write_str(value));
    }

    /// Writes the key, then the value `write` puts through the escaper, in quotes.
    fn quoted(&mut self, field: &Field, write: impl FnOnce(&mut Escape<'_, W>) -> fmt::Result) {
        if self.key(field) {
            self.result = self
                .out
                .write_char('"')
                .and_then(|()| write(&mut Escape(&mut *self.out)))
                .and_then(|()| self.out.write_char('"'));
        }
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.key(field) {
            self.result = self.out.write_fmt(value);
        }
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !value.is_finite() {
            // NaN and infinities are not JSON numbers; null keeps the field numeric-typed.
            self.raw(field, format_args!("null"));
        } else if value.fract() == 0.0 {
            // Keep a float a float (`2.0`, not `2`) so log stores infer one type per field.
            self.raw(field, format_args!("{value:.1}"));
        } else {
            self.raw(field, format_args!("{value}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.log_target = Some(value.to_owned());
        }
        self.str(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, like anyhow's `{:#}`: the outermost message alone rarely says why.
        self.string(field, format_args!("{}", ErrorChain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format_args!("{value:?}"));
    }
}

struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// A `fmt::Write` adapter that JSON-escapes (RFC 8259 §7) everything written through it, so
/// Display/Debug values stream into the line without an intermediate String. Escapes exactly
/// what serde_json escapes: `"`, `\` and control characters below U+0020.
struct Escape<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Split only at ASCII bytes, so both slices stay on char boundaries.
            self.0.write_str(&s[start..i])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// Builds (without installing) the JSON subscriber over any writer; `init` and tests share it.
fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .event_format(JsonLines)
        .finish()
}

#[cfg(test)]
mod tests;
