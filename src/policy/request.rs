//! The request checks of SPEC §3 after framing and the route (`routes`): method, required
//! header, declared body size, developerPayload. Each is pure and tested case by case.

use http::{HeaderMap, Method};

use super::Denied;
use crate::secret::{matches_any, Secret};

pub(crate) fn check_method(allowed: &[Method], method: &Method) -> Result<(), Denied> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(Denied::Method)
    }
}

/// Exactly one copy of the header, equal (in constant time) to one of the accepted values.
pub(crate) fn check_required_header(
    name: &http::HeaderName,
    values: &[Secret],
    headers: &HeaderMap,
) -> Result<(), Denied> {
    let mut copies = headers.get_all(name).iter();
    let Some(value) = copies.next() else {
        return Err(Denied::Header("required header missing"));
    };
    if copies.next().is_some() {
        return Err(Denied::Header("required header sent more than once"));
    }
    if matches_any(values, value.as_bytes()) {
        Ok(())
    } else {
        Err(Denied::Header("required header value wrong"))
    }
}

/// A declared Content-Length over the limit is refused before any body byte is read.
pub(crate) fn check_declared_length(max: u64, declared: Option<u64>) -> Result<(), Denied> {
    match declared {
        Some(n) if n > max => Err(Denied::BodyTooLarge),
        _ => Ok(()),
    }
}

/// The JSON string at `pointer` must equal one of `values`.
pub(crate) fn check_developer_payload(
    pointer: &str,
    values: &[Secret],
    body: &[u8],
) -> Result<(), Denied> {
    let Ok(found) = super::pointer::lookup(body, pointer) else {
        return Err(Denied::DeveloperPayload("body is not JSON"));
    };
    match found {
        None => Err(Denied::DeveloperPayload("developerPayload missing")),
        Some(serde_json::Value::String(s)) if matches_any(values, s.as_bytes()) => Ok(()),
        Some(_) => Err(Denied::DeveloperPayload("developerPayload value wrong")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretSource;

    fn secrets(vals: &[&str]) -> Vec<Secret> {
        vals.iter()
            .map(|v| {
                SecretSource::Inline((*v).into())
                    .resolve(std::path::Path::new("."))
                    .expect("secret")
            })
            .collect()
    }

    #[test]
    fn method_must_be_listed() {
        let allowed = [Method::POST];
        assert!(check_method(&allowed, &Method::POST).is_ok());
        assert_eq!(check_method(&allowed, &Method::GET), Err(Denied::Method));
    }

    #[test]
    fn required_header_must_be_present_once_and_match() {
        let name = http::HeaderName::from_static("x-webhook-secret");
        let vals = secrets(&["s3cret", "n3w"]);
        let mut h = HeaderMap::new();
        assert_eq!(
            check_required_header(&name, &vals, &h),
            Err(Denied::Header("required header missing"))
        );
        h.insert(&name, "wrong".parse().expect("value"));
        assert_eq!(
            check_required_header(&name, &vals, &h),
            Err(Denied::Header("required header value wrong"))
        );
        h.insert(&name, "n3w".parse().expect("value"));
        assert!(check_required_header(&name, &vals, &h).is_ok());
        h.append(&name, "s3cret".parse().expect("value"));
        assert_eq!(
            check_required_header(&name, &vals, &h),
            Err(Denied::Header("required header sent more than once"))
        );
    }

    #[test]
    fn declared_length_over_the_limit_is_too_large() {
        assert!(check_declared_length(10, Some(10)).is_ok());
        assert!(check_declared_length(10, None).is_ok());
        assert_eq!(
            check_declared_length(10, Some(11)),
            Err(Denied::BodyTooLarge)
        );
    }

    #[test]
    fn developer_payload_must_be_the_right_string_at_the_pointer() {
        let vals = secrets(&["payload-123"]);
        let ok = br#"{"status":0,"developerPayload":"payload-123"}"#;
        assert!(check_developer_payload("/developerPayload", &vals, ok).is_ok());
        let cases: [(&[u8], &str); 4] = [
            (b"not json", "body is not JSON"),
            (br#"{"status":0}"#, "developerPayload missing"),
            (
                br#"{"developerPayload":"other"}"#,
                "developerPayload value wrong",
            ),
            (
                br#"{"developerPayload":123}"#,
                "developerPayload value wrong",
            ),
        ];
        for (body, why) in cases {
            assert_eq!(
                check_developer_payload("/developerPayload", &vals, body),
                Err(Denied::DeveloperPayload(why))
            );
        }
        let nested = br#"{"meta":{"p":"payload-123"}}"#;
        assert!(check_developer_payload("/meta/p", &vals, nested).is_ok());
    }
}
