//! The value at a JSON pointer (RFC 6901) in a request body, found in one pass without building
//! the document: only the value the pointer names is built, every other value is parsed by
//! serde_json's own rules and dropped (a string without escapes is read in place, not copied).
//! The answers are those of `serde_json::from_slice::<Value>(body)?.pointer(pointer)`, duplicate
//! keys included (the last one counts): the developerPayload check and the dedup key of SPEC §9.4
//! both ask this, and a differential test (and the `json_pointer` fuzz target) holds it to the
//! full parse. Building the whole `Value` cost a 256 KiB webhook ~60 µs (`DEVPAYLOAD=1
//! bench-results/profile.sh BIN C`: 470 -> 412 µs CPU/request): a heap copy of every string
//! and map, and page faults for the big ones.
//!
//! This holds while serde_json's `arbitrary_precision` and `raw_value` features are off: with
//! them `Value` reads the keys `$serde_json::private::Number` / `RawValue` as markers (and
//! refuses bodies this lookup would accept). A test fails if a dependency turns either on.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The value at `pointer` in the JSON document `body`: `Err` if `body` is not JSON, `Ok(None)`
/// if the pointer names nothing in it.
pub(crate) fn lookup(body: &[u8], pointer: &str) -> Result<Option<Value>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    // Not empty and not starting with `/`: it names nothing, as `Value::pointer` reads it.
    let found = if pointer.is_empty() || pointer.starts_with('/') {
        Find { rest: pointer }.deserialize(&mut de)?
    } else {
        Skip.deserialize(&mut de)?;
        None
    };
    de.end()?;
    Ok(found)
}

/// The first reference token of `rest` (which starts with `/`) with `~1` read as `/` and `~0`
/// as `~`, in `Value::pointer`'s order, and what follows it. Borrowed unless it has a `~`: a
/// request's lookup allocates nothing for the pointer.
fn first_token(rest: &str) -> (Cow<'_, str>, &str) {
    let rest = &rest[1..];
    let end = rest.find('/').unwrap_or(rest.len());
    let (token, after) = rest.split_at(end);
    let token = if token.contains('~') {
        Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(token)
    };
    (token, after)
}

/// An array index token as `Value::pointer` reads it: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Reads one value, keeping only what `rest` (the part of the pointer still to follow: empty,
/// or starting with `/`) names inside it.
struct Find<'p> {
    rest: &'p str,
}

impl<'de> DeserializeSeed<'de> for Find<'_> {
    type Value = Option<Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.rest.is_empty() {
            return serde::Deserialize::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Find<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let (token, rest) = first_token(self.rest);
        let mut found = None;
        while let Some(is_token) = map.next_key_seed(KeyIs(&token))? {
            if is_token {
                // A later copy of the key replaces an earlier one, as in a `Value` map.
                found = map.next_value_seed(Find { rest })?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let (token, rest) = first_token(self.rest);
        let wanted = index(&token);
        let mut found = None;
        let mut i = 0;
        loop {
            if Some(i) == wanted {
                match seq.next_element_seed(Find { rest })? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element_seed(Skip)?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    // A scalar has nothing inside it for the pointer to name.
    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }
}

/// Whether an object key equals the token (escapes in the key decoded first).
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Parses one value as `Value` would (numbers in range, escapes and UTF-8 checked, depth
/// limited) and keeps nothing of it. Not `IgnoredAny`: serde_json skips those without checking
/// number ranges, `\u` surrogates or UTF-8, so a body `Value` refuses would pass.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The full parse this module must agree with (tests and the fuzz target): `None` if `body`
/// is not JSON.
#[cfg(any(test, feature = "differential"))]
pub fn reference(body: &[u8], pointer: &str) -> Option<Option<Value>> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .map(|doc| doc.pointer(pointer).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_json_reads_its_private_marker_keys_as_plain_keys() {
        // Feature unification could turn on `arbitrary_precision` or `raw_value`, under which
        // `Value` treats these keys specially and the lookup would no longer agree with it.
        for key in [
            "$serde_json::private::Number",
            "$serde_json::private::RawValue",
        ] {
            let body = format!(r#"{{"{key}":"1","developerPayload":"s"}}"#);
            let full: Value = serde_json::from_str(&body).expect("an ordinary object");
            assert!(full.get(key).is_some_and(Value::is_string), "{key}");
            assert_eq!(
                lookup(body.as_bytes(), "/developerPayload").ok(),
                reference(body.as_bytes(), "/developerPayload")
            );
        }
    }

    /// Documents and pointers where a streaming lookup could go wrong: duplicates, escapes in
    /// keys and pointers, indexes, scalars on the way, and bodies only a full parse refuses.
    #[test]
    fn finds_what_the_full_parse_finds_and_refuses_what_it_refuses() {
        let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let docs: Vec<Vec<u8>> = [
            r#"{"developerPayload":"p-1","data":"xxxx"}"#,
            r#"{"developerPayload":"first","developerPayload":"last"}"#,
            r#"{"developerPayload":"first","developerPayload":7}"#,
            r#"{"meta":{"p":"a"},"meta":{"q":"b"}}"#,
            r#"{"meta":{"p":"a"},"meta":{"p":"b"},"x":[1,2]}"#,
            r#"{"develop\u0065rPayload":"escaped key"}"#,
            r#"{"a/b":{"m~n":"slash and tilde"},"":{"":"empty keys"}}"#,
            r#"{"~1":"tilde one","/":"slash","~":{"0":"tilde then zero"}}"#,
            r#"{"list":["zero",{"p":"one"},"two"],"n":null}"#,
            r#"["top", {"developerPayload":"in an array"}]"#,
            r#""just a string""#,
            r#"{"developerPayload":"\ud83d\ude00 pair","t":true,"f":false}"#,
            r#"{"developerPayload":"ok","n":-1.5e3,"big":18446744073709551616}"#,
            // Only a full parse refuses these; the lookup must refuse them too.
            r#"{"developerPayload":"ok","x":"\ud800"}"#,
            r#"{"developerPayload":"ok","x":1e400}"#,
            r#"{"developerPayload":"ok","x":"bad \q escape"}"#,
            r#"{"developerPayload":"ok"} trailing"#,
            r#"{"developerPayload":"ok",}"#,
            r#"{"developerPayload":"ok""#,
            "",
            "  ",
        ]
        .iter()
        .map(|d| d.as_bytes().to_vec())
        .chain([
            b"{\"developerPayload\":\"ok\",\"x\":\"\xff\"}".to_vec(),
            b"{\"\xc3\x28\":1,\"developerPayload\":\"ok\"}".to_vec(),
            b"{\"developerPayload\":\"ok\",\"x\":\"tab\tinside\"}".to_vec(),
            deep(127).into_bytes(),
            deep(128).into_bytes(),
            deep(129).into_bytes(),
            format!(
                r#"{{"developerPayload":"ok","data":"{}"}}"#,
                "x".repeat(300_000)
            )
            .into_bytes(),
        ])
        .collect();
        let pointers = [
            "",
            "/developerPayload",
            "/meta/p",
            "/meta/q",
            "/meta",
            "/a~1b/m~0n",
            "/a~1b/m~n",
            "/~01",
            "/~1",
            "/~0/0",
            "/~",
            "//",
            "/",
            "/list/0",
            "/list/1/p",
            "/list/01",
            "/list/+1",
            "/list/-",
            "/list/3",
            "/1/developerPayload",
            "/n/x",
            "/x/0",
            "developerPayload",
            "/developerPayload/0",
        ];
        let mut compared = 0;
        for doc in &docs {
            for p in pointers {
                assert_eq!(
                    lookup(doc, p).ok(),
                    reference(doc, p),
                    "pointer {p:?} in {:?}",
                    String::from_utf8_lossy(&doc[..doc.len().min(80)])
                );
                compared += 1;
            }
        }
        assert_eq!(compared, docs.len() * pointers.len());
    }
}
