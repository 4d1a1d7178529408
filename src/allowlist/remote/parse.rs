//! Turns a remote list response (JSON array, JSON object holding arrays, array of objects, or
//! plain text) into entries. Liberal in the shapes it accepts, strict in what becomes an entry:
//! only strings the caller's `parse_one` accepts, and never scalar fields of a wrapper object.

use serde_json::Value;

/// How many rejected strings are kept for the log; enough to diagnose, bounded against spam.
const MAX_SAMPLES: usize = 5;
/// Each sample is cut to this many characters so a hostile body cannot flood the log.
const SAMPLE_CHARS: usize = 80;

/// The result of parsing one response body.
///
/// `entries.is_empty()` means the body is unusable and the refresh must count as failed;
/// `rejected` then says why when the body as a whole was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedList<T> {
    /// Every accepted entry, in body order (duplicates kept; the merge dedups).
    pub(crate) entries: Vec<T>,
    /// How many candidate entries did not parse.
    pub(crate) skipped: usize,
    /// Up to 5 of the skipped candidates, each at most 80 characters, control characters
    /// replaced, for the log.
    pub(crate) skipped_samples: Vec<String>,
    /// Why the whole body was rejected (not UTF-8, invalid JSON), if it was.
    pub(crate) rejected: Option<String>,
}

impl<T> ParsedList<T> {
    fn empty() -> Self {
        ParsedList {
            entries: Vec::new(),
            skipped: 0,
            skipped_samples: Vec::new(),
            rejected: None,
        }
    }

    fn rejected(reason: String) -> Self {
        ParsedList {
            rejected: Some(reason),
            ..Self::empty()
        }
    }

    fn skip(&mut self, candidate: &str) {
        self.skipped += 1;
        if self.skipped_samples.len() < MAX_SAMPLES {
            self.skipped_samples.push(sample(candidate));
        }
    }
}

/// Parses a remote list body. JSON when the first non-whitespace byte (after an optional UTF-8
/// BOM) is `[` or `{`, plain text otherwise; invalid JSON is a failure (zero entries), never
/// re-read as text, so an error page cannot smuggle lines in.
///
/// JSON rules: in an array, a string is an entry (or skipped), an object is an *item* whose
/// string fields (searched recursively) hold entries — fields that do not parse are just not
/// entries, but an item yielding none is skipped — and any other scalar is skipped. In an object
/// that is not an array item, only nested arrays/objects are searched: its own scalar fields
/// (`"status":"ok"`, `"clientIp":"…"`) are metadata, never entries.
pub(crate) fn parse_entries<T>(
    body: &[u8],
    parse_one: impl Fn(&str) -> Option<T>,
) -> ParsedList<T> {
    let Ok(text) = std::str::from_utf8(body) else {
        return ParsedList::rejected("response body is not UTF-8".to_owned());
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        match serde_json::from_str::<Value>(trimmed) {
            Ok(value) => {
                let mut out = ParsedList::empty();
                walk_container(&value, &parse_one, &mut out);
                out
            }
            // serde_json's message holds line/column only, never body text.
            Err(e) => ParsedList::rejected(format!("response body is not valid JSON: {e}")),
        }
    } else {
        parse_text(text, &parse_one)
    }
}

/// The lines of a list file (`allowlist::list_lines`), but a line that does not parse is skipped.
fn parse_text<T>(text: &str, parse_one: &impl Fn(&str) -> Option<T>) -> ParsedList<T> {
    let mut out = ParsedList::empty();
    for (_, line) in crate::allowlist::list_lines(text) {
        match parse_one(line) {
            Some(entry) => out.entries.push(entry),
            None => out.skip(line),
        }
    }
    out
}

/// Searches a wrapper value (top level or a field of a wrapper object) for arrays.
fn walk_container<T>(
    value: &Value,
    parse_one: &impl Fn(&str) -> Option<T>,
    out: &mut ParsedList<T>,
) {
    match value {
        Value::Array(items) => items
            .iter()
            .for_each(|item| walk_item(item, parse_one, out)),
        Value::Object(fields) => fields
            .values()
            .for_each(|v| walk_container(v, parse_one, out)),
        // Scalars of a wrapper object are metadata, not entries.
        _ => {}
    }
}

/// One element of an array.
fn walk_item<T>(item: &Value, parse_one: &impl Fn(&str) -> Option<T>, out: &mut ParsedList<T>) {
    match item {
        Value::String(s) => match parse_one(s.trim()) {
            Some(entry) => out.entries.push(entry),
            None => out.skip(s),
        },
        Value::Array(_) => walk_container(item, parse_one, out),
        Value::Object(_) => {
            let before = out.entries.len();
            collect_object_strings(item, parse_one, out);
            if out.entries.len() == before {
                out.skip(&item.to_string());
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => out.skip(&item.to_string()),
    }
}

/// Every string inside an array item (fields, nested objects and arrays) that parses is an
/// entry; the rest are descriptive fields (`"name":"prod"`) and are not counted as skipped.
fn collect_object_strings<T>(
    value: &Value,
    parse_one: &impl Fn(&str) -> Option<T>,
    out: &mut ParsedList<T>,
) {
    match value {
        Value::String(s) => out.entries.extend(parse_one(s.trim())),
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_object_strings(v, parse_one, out)),
        Value::Object(fields) => fields
            .values()
            .for_each(|v| collect_object_strings(v, parse_one, out)),
        _ => {}
    }
}

/// A log-safe excerpt: at most `SAMPLE_CHARS` characters, control characters replaced so a
/// body cannot forge log lines.
fn sample(candidate: &str) -> String {
    candidate
        .chars()
        .take(SAMPLE_CHARS)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in entry parser: a "thumbprint" is 4+ hex digits, colons ignored, lowercased.
    fn hex(s: &str) -> Option<String> {
        let cleaned: String = s.chars().filter(|c| *c != ':').collect();
        (cleaned.len() >= 4 && cleaned.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| cleaned.to_ascii_lowercase())
    }

    fn parse(body: &str) -> ParsedList<String> {
        parse_entries(body.as_bytes(), hex)
    }

    #[test]
    fn accepts_a_json_array_of_strings_and_counts_junk() {
        let got = parse(r#"["AB:CD:EF:01", "nope", " 1234 ", "zz"]"#);
        assert_eq!(got.entries, ["abcdef01", "1234"]);
        assert_eq!(got.skipped, 2);
        assert_eq!(got.skipped_samples, ["nope", "zz"]);
        assert_eq!(got.rejected, None);
    }

    #[test]
    fn finds_arrays_nested_anywhere_in_an_object() {
        assert_eq!(parse(r#"{"certificates":["ab12cd"]}"#).entries, ["ab12cd"]);
        let got = parse(r#"{"status":"ok","data":{"ips":["beef"],"v6":["cafe"]}}"#);
        let mut entries = got.entries;
        entries.sort();
        assert_eq!(entries, ["beef", "cafe"]);
    }

    #[test]
    fn ignores_scalar_fields_of_a_wrapper_object() {
        // "clientIp" would parse, but it describes the response, not the list.
        let got = parse(r#"{"clientIp":"abcd","list":["1234"],"count":1}"#);
        assert_eq!(got.entries, ["1234"]);
        assert_eq!(got.skipped, 0);
        assert!(parse(r#"{"error":"unauthorized"}"#).entries.is_empty());
    }

    #[test]
    fn takes_parsing_string_fields_of_array_objects() {
        let got = parse(
            r#"[{"thumbprint":"AB:CD:01","name":"prod"},
                {"name":"staging","meta":{"sha1":"fe:dc"}},
                {"name":"none here"}, 7, null]"#,
        );
        assert_eq!(got.entries, ["abcd01", "fedc"]);
        assert_eq!(got.skipped, 3, "the empty object, the number and null");
        assert_eq!(got.skipped_samples[0], r#"{"name":"none here"}"#);
    }

    #[test]
    fn reads_plain_text_with_comments_and_blank_lines() {
        let got = parse("# list\r\n\r\n  abcd  \nef01 # prod\nbad line\n\t\n");
        assert_eq!(got.entries, ["abcd", "ef01"]);
        assert_eq!(got.skipped, 1);
        assert_eq!(got.skipped_samples, ["bad line"]);
    }

    #[test]
    fn strips_a_utf8_bom_before_choosing_json() {
        assert_eq!(parse("\u{feff}  [\"abcd\"]").entries, ["abcd"]);
    }

    #[test]
    fn rejects_invalid_json_instead_of_reading_it_as_text() {
        let got = parse("[\"abcd\",\nabcd");
        assert!(got.entries.is_empty());
        assert!(got.rejected.expect("rejected").contains("not valid JSON"));
        // An HTML error page is text with no valid entries.
        assert!(parse("<html>502 Bad Gateway</html>").entries.is_empty());
    }

    #[test]
    fn rejects_a_body_that_is_not_utf8() {
        let got = parse_entries(b"abcd\n\xff\xfe\n", hex);
        assert!(got.entries.is_empty());
        assert_eq!(got.rejected.as_deref(), Some("response body is not UTF-8"));
    }

    #[test]
    fn yields_nothing_for_empty_bodies() {
        for body in ["", "   \n", "[]", "{}", "# only a comment\n"] {
            let got = parse(body);
            assert!(got.entries.is_empty(), "{body:?}");
            assert_eq!(got.skipped, 0, "{body:?}");
        }
    }

    #[test]
    fn bounds_and_sanitises_skipped_samples() {
        let long = "x".repeat(500);
        let body = format!("[\"{long}\",\"a\\u001bb\",\"c\",\"d\",\"e\",\"f\",\"g\"]");
        let got = parse(&body);
        assert_eq!(got.skipped, 7);
        assert_eq!(got.skipped_samples.len(), 5);
        assert_eq!(got.skipped_samples[0].chars().count(), 80);
        assert_eq!(got.skipped_samples[1], "a\u{fffd}b");
    }
}
