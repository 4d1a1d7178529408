use super::super::test_support::{closed_port, silent_listener, source, ListReply, ListServer};
use super::*;

fn body(fetched: Fetched) -> String {
    match fetched {
        Fetched::Body(b) => String::from_utf8(b.to_vec()).expect("utf8"),
        Fetched::NotModified => panic!("expected a body, got NotModified"),
    }
}

/// A source for `url` trusting the list server, with the extra header `x-api-key: k1`.
fn with_api_key(url: &str) -> RemoteSource {
    let mut spec = RemoteSpec::new(url.parse().expect("uri"));
    spec.ca_pem = Some(ListServer::ca_pem().as_bytes().to_vec());
    spec.headers = vec![(
        HeaderName::from_static("x-api-key"),
        HeaderValue::from_static("k1"),
    )];
    RemoteSource::new(spec).expect("spec")
}

#[test]
fn rejects_plain_http_and_credentials_in_the_url() {
    let err = |url: &str| RemoteSource::new(RemoteSpec::new(url.parse().expect("uri"))).err();
    assert!(matches!(
        err("http://example.com/ips"),
        Some(RemoteError::Url {
            problem: UrlProblem::NotHttps,
            ..
        })
    ));
    let e = err("https://user:hunter2@example.com/ips").expect("rejected");
    assert!(matches!(
        e,
        RemoteError::Url {
            problem: UrlProblem::Userinfo,
            ..
        }
    ));
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(matches!(
        err("/relative"),
        Some(RemoteError::Url {
            problem: UrlProblem::NotHttps,
            ..
        })
    ));
}

#[test]
fn rejects_a_ca_bundle_without_certificates_and_reserved_headers() {
    let mut spec = RemoteSpec::new("https://example.com/".parse().expect("uri"));
    spec.ca_pem = Some(b"not a pem".to_vec());
    assert!(matches!(
        RemoteSource::new(spec).err(),
        Some(RemoteError::Ca { .. })
    ));
    let mut spec = RemoteSpec::new("https://example.com/".parse().expect("uri"));
    spec.ca_pem = Some(ListServer::ca_pem().as_bytes().to_vec());
    spec.headers = vec![(header::HOST, HeaderValue::from_static("evil"))];
    assert!(matches!(
        RemoteSource::new(spec).err(),
        Some(RemoteError::ReservedHeader { .. })
    ));
}

#[test]
fn redacts_the_query_and_userinfo_in_logged_urls() {
    let uri: Uri = "https://u:p@api.example.com:8443/v1/ips?token=s3cret"
        .parse()
        .expect("uri");
    assert_eq!(
        loggable_url(&uri),
        "https://api.example.com:8443/v1/ips?<redacted>"
    );
}

#[test]
fn debug_of_a_spec_does_not_show_header_values() {
    let mut spec = RemoteSpec::new("https://example.com/?k=s3cret".parse().expect("uri"));
    spec.headers = vec![(
        HeaderName::from_static("x-api-key"),
        HeaderValue::from_static("s3cret"),
    )];
    let shown = format!("{spec:?}");
    assert!(
        shown.contains("x-api-key") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn resolves_every_form_of_location() {
    let base = Target::new("https://a.example/x/list?q=1".parse().expect("uri")).expect("base");
    let resolve = |loc: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::LOCATION, HeaderValue::from_str(loc).expect("value"));
        redirect_target(&base, &h).map(|t| t.uri.to_string())
    };
    assert_eq!(
        resolve("https://b.example/y").as_deref(),
        Ok("https://b.example/y")
    );
    assert_eq!(
        resolve("//c.example/z").as_deref(),
        Ok("https://c.example/z")
    );
    assert_eq!(
        resolve("/abs?v=2#frag").as_deref(),
        Ok("https://a.example/abs?v=2")
    );
    assert_eq!(resolve("rel").as_deref(), Ok("https://a.example/x/rel"));
    assert!(resolve("http://b.example/y")
        .expect_err("http")
        .contains("https"));
    assert!(redirect_target(&base, &HeaderMap::new()).is_err());
}

#[tokio::test]
async fn fetches_a_body_with_the_expected_request_headers() {
    let server = ListServer::start(ListReply::text(r#"["ab12"]"#));
    let mut src = with_api_key(&server.url("/v2/security/client-certificates?x=1"));
    assert_eq!(body(src.fetch().await.expect("fetch")), r#"["ab12"]"#);
    let seen = &server.requests()[0];
    assert_eq!(seen.target, "/v2/security/client-certificates?x=1");
    let h = &seen.headers;
    assert_eq!(h[header::HOST], server.addr.to_string().as_str());
    assert_eq!(h[header::USER_AGENT], USER_AGENT);
    assert!(USER_AGENT.starts_with("hookgate/"));
    assert_eq!(h[header::ACCEPT], ACCEPT);
    assert_eq!(h["x-api-key"], "k1");
    assert!(!h.contains_key(header::IF_NONE_MATCH));
}

#[tokio::test]
async fn sends_validators_of_an_accepted_body_and_maps_304_to_not_modified() {
    // 304 to an If-None-Match of "v1", else the body with its validators.
    let server = ListServer::start(
        ListReply::text("ab12\n")
            .with_etag("\"v1\"")
            .with_header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    let mut src = source(&server.url("/ips"));
    assert_eq!(body(src.fetch().await.expect("first")), "ab12\n");
    // Not accepted yet: the next fetch must be unconditional.
    assert_eq!(body(src.fetch().await.expect("second")), "ab12\n");
    src.accept_last_body();
    assert_eq!(src.fetch().await.expect("third"), Fetched::NotModified);
    let seen = server.requests();
    assert!(!seen[1].headers.contains_key(header::IF_NONE_MATCH));
    assert_eq!(seen[2].headers[header::IF_NONE_MATCH], "\"v1\"");
    assert_eq!(
        seen[2].headers[header::IF_MODIFIED_SINCE],
        "Wed, 21 Oct 2015 07:28:00 GMT"
    );
}

#[tokio::test]
async fn treats_an_unsolicited_304_as_an_error() {
    let server = ListServer::start(ListReply::status(304));
    let err = source(&server.url("/")).fetch().await.expect_err("304");
    assert!(
        matches!(
            err,
            FetchError::Status {
                status: StatusCode::NOT_MODIFIED,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn follows_redirects_and_keeps_secret_headers_on_the_origin() {
    let other = ListServer::start(ListReply::text("cd34"));
    let server = ListServer::start(ListReply::status(404));
    server.set_for(
        "/old",
        ListReply::status(301).with_header("location", "/mid"),
    );
    let elsewhere = other.url("/final");
    server.set_for(
        "/mid",
        ListReply::status(307).with_header("location", &elsewhere),
    );
    let mut src = with_api_key(&server.url("/old"));
    assert_eq!(body(src.fetch().await.expect("fetch")), "cd34");
    assert!(server
        .requests()
        .iter()
        .all(|s| s.headers["x-api-key"] == "k1"));
    assert_eq!(other.requests().len(), 1);
    assert!(
        !other.requests()[0].headers.contains_key("x-api-key"),
        "secret sent cross-origin"
    );
}

#[tokio::test]
async fn gives_up_after_three_redirects() {
    let server = ListServer::start(ListReply::status(302).with_header("location", "/again"));
    let err = source(&server.url("/")).fetch().await.expect_err("loop");
    assert!(matches!(err, FetchError::TooManyRedirects { .. }), "{err}");
    assert_eq!(
        server.requests().len(),
        4,
        "the original request plus three redirects"
    );
}

#[tokio::test]
async fn refuses_a_redirect_to_plain_http() {
    let server =
        ListServer::start(ListReply::status(302).with_header("location", "http://127.0.0.1:1/"));
    let err = source(&server.url("/")).fetch().await.expect_err("http");
    assert!(matches!(err, FetchError::BadRedirect { .. }), "{err}");
}

#[tokio::test]
async fn reports_a_server_error_status() {
    let server = ListServer::start(ListReply::status(500));
    let err = source(&server.url("/ips")).fetch().await.expect_err("500");
    assert!(matches!(
        err,
        FetchError::Status {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            ..
        }
    ));
    assert!(
        err.to_string().contains(&format!("{}/ips", server.addr)),
        "{err}"
    );
}

#[tokio::test]
async fn rejects_oversize_bodies_declared_or_streamed() {
    let big = "a".repeat(5000);
    let server = ListServer::start(ListReply::text(&big).chunked());
    server.set_for("/sized", ListReply::text(&big));
    server.set_for("/exact", ListReply::text(&big[..4096]).chunked());
    let limited = |path: &str| {
        let mut spec = RemoteSpec::new(server.url(path).parse().expect("uri"));
        spec.ca_pem = Some(ListServer::ca_pem().as_bytes().to_vec());
        spec.max_bytes = 4096;
        RemoteSource::new(spec).expect("spec")
    };
    for path in ["/sized", "/chunked"] {
        let err = limited(path).fetch().await.expect_err(path);
        assert!(
            matches!(err, FetchError::TooLarge { limit: 4096, .. }),
            "{path}: {err}"
        );
    }
    let got = limited("/exact").fetch().await.expect("at the limit");
    assert_eq!(body(got).len(), 4096);
    assert_eq!(big.len(), 5000);
}

#[tokio::test]
async fn rejects_an_encoded_body() {
    let server = ListServer::start(ListReply::text("x").with_header("content-encoding", "gzip"));
    let err = source(&server.url("/")).fetch().await.expect_err("gzip");
    assert!(matches!(err, FetchError::Encoding { .. }), "{err}");
}

#[tokio::test]
async fn times_out_on_a_silent_peer_and_on_a_hung_response() {
    let silent = silent_listener();
    let addr = silent.local_addr().expect("addr");
    let hung = ListServer::start(ListReply::Hang);
    for url in [format!("https://{addr}/"), hung.url("/")] {
        let mut spec = RemoteSpec::new(url.parse().expect("uri"));
        spec.ca_pem = Some(ListServer::ca_pem().as_bytes().to_vec());
        spec.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = RemoteSource::new(spec)
            .expect("spec")
            .fetch()
            .await
            .expect_err("timeout");
        assert!(matches!(err, FetchError::Timeout { .. }), "{url}: {err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn fails_the_handshake_against_an_untrusted_ca() {
    let server = ListServer::start(ListReply::text("ab12"));
    server.use_trusted_cert(false); // a certificate from a CA the source does not trust
    let err = source(&server.url("/"))
        .fetch()
        .await
        .expect_err("wrong CA");
    assert!(matches!(err, FetchError::Tls { .. }), "{err}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn reports_a_refused_connection() {
    let url = format!("https://{}/", closed_port());
    let err = source(&url).fetch().await.expect_err("refused");
    assert!(matches!(err, FetchError::Connect { .. }), "{err}");
}

#[test]
fn redacts_url_text_the_same_way_whether_or_not_it_parses() {
    for (raw, shown) in [
        (
            "https://u:p@h.example:8443/v1?t=s",
            "https://h.example:8443/v1?<redacted>",
        ),
        ("https://h.example/a/b", "https://h.example/a/b"),
        ("https://h.example", "https://h.example"),
        ("http://user:pw@h.example?x", "http://h.example?<redacted>"),
        ("not a url?token=s", "not a url?<redacted>"),
        ("ftp://a b@c/d", "ftp://c/d"),
    ] {
        assert_eq!(redacted_url(raw), shown, "{raw}");
    }
    for raw in [
        "https://u:p@h.example:8443/v1?t=s",
        "https://h.example",
        "https://[::1]:9/x?",
    ] {
        let uri: Uri = raw.parse().expect("uri");
        assert!(!loggable_url(&uri).contains("u:p"), "{raw}");
        assert_eq!(loggable_url(&uri), redacted_url(&uri.to_string()));
    }
    assert_eq!(
        loggable_url(&"https://h.example".parse().expect("uri")),
        "https://h.example/"
    );
}
