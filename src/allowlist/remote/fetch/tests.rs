use super::super::test_server::{closed_port, pki, serve, serve_silent, source, Reply};
use super::*;

fn body(fetched: Fetched) -> String {
    match fetched {
        Fetched::Body(b) => String::from_utf8(b.to_vec()).expect("utf8"),
        Fetched::NotModified => panic!("expected a body, got NotModified"),
    }
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
    spec.ca_pem = Some(pki().ca_pem);
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
    let pki = pki();
    let server = serve(&pki, |_| Reply::ok(r#"["ab12"]"#)).await;
    let mut spec = RemoteSpec::new(server.url("/v2/security/client-certificates?x=1"));
    spec.ca_pem = Some(pki.ca_pem.clone());
    spec.headers = vec![(
        HeaderName::from_static("x-api-key"),
        HeaderValue::from_static("k1"),
    )];
    let mut src = RemoteSource::new(spec).expect("spec");
    assert_eq!(body(src.fetch().await.expect("fetch")), r#"["ab12"]"#);
    let seen = &server.seen()[0];
    assert_eq!(seen.uri, "/v2/security/client-certificates?x=1");
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
    let pki = pki();
    let server = serve(&pki, |seen| {
        if seen
            .headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == "\"v1\"")
        {
            Reply::status(304)
        } else {
            Reply::ok("ab12\n")
                .header("etag", "\"v1\"")
                .header("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")
        }
    })
    .await;
    let mut src = source(server.url("/ips"), &pki);
    assert_eq!(body(src.fetch().await.expect("first")), "ab12\n");
    // Not accepted yet: the next fetch must be unconditional.
    assert_eq!(body(src.fetch().await.expect("second")), "ab12\n");
    src.accept_last_body();
    assert_eq!(src.fetch().await.expect("third"), Fetched::NotModified);
    let seen = server.seen();
    assert!(!seen[1].headers.contains_key(header::IF_NONE_MATCH));
    assert_eq!(seen[2].headers[header::IF_NONE_MATCH], "\"v1\"");
    assert_eq!(
        seen[2].headers[header::IF_MODIFIED_SINCE],
        "Wed, 21 Oct 2015 07:28:00 GMT"
    );
}

#[tokio::test]
async fn treats_an_unsolicited_304_as_an_error() {
    let pki = pki();
    let server = serve(&pki, |_| Reply::status(304)).await;
    let err = source(server.url("/"), &pki)
        .fetch()
        .await
        .expect_err("304");
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
    let pki = pki();
    let other = serve(&pki, |_| Reply::ok("cd34")).await;
    let elsewhere = other.url("/final").to_string();
    let server = serve(&pki, move |seen| match seen.uri.path() {
        "/old" => Reply::status(301).header("location", "/mid"),
        "/mid" => Reply::status(307).header("location", &elsewhere),
        _ => Reply::status(404),
    })
    .await;
    let mut spec = RemoteSpec::new(server.url("/old"));
    spec.ca_pem = Some(pki.ca_pem.clone());
    spec.headers = vec![(
        HeaderName::from_static("x-api-key"),
        HeaderValue::from_static("k1"),
    )];
    let mut src = RemoteSource::new(spec).expect("spec");
    assert_eq!(body(src.fetch().await.expect("fetch")), "cd34");
    assert!(server.seen().iter().all(|s| s.headers["x-api-key"] == "k1"));
    assert_eq!(other.seen().len(), 1);
    assert!(
        !other.seen()[0].headers.contains_key("x-api-key"),
        "secret sent cross-origin"
    );
}

#[tokio::test]
async fn gives_up_after_three_redirects() {
    let pki = pki();
    let server = serve(&pki, |_| Reply::status(302).header("location", "/again")).await;
    let err = source(server.url("/"), &pki)
        .fetch()
        .await
        .expect_err("loop");
    assert!(matches!(err, FetchError::TooManyRedirects { .. }), "{err}");
    assert_eq!(
        server.seen().len(),
        4,
        "the original request plus three redirects"
    );
}

#[tokio::test]
async fn refuses_a_redirect_to_plain_http() {
    let pki = pki();
    let server = serve(&pki, |_| {
        Reply::status(302).header("location", "http://127.0.0.1:1/")
    })
    .await;
    let err = source(server.url("/"), &pki)
        .fetch()
        .await
        .expect_err("http");
    assert!(matches!(err, FetchError::BadRedirect { .. }), "{err}");
}

#[tokio::test]
async fn reports_a_server_error_status() {
    let pki = pki();
    let server = serve(&pki, |_| Reply::status(500).body("boom")).await;
    let err = source(server.url("/ips"), &pki)
        .fetch()
        .await
        .expect_err("500");
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
    let pki = pki();
    let big = "a".repeat(5000);
    let big2 = big.clone();
    let server = serve(&pki, move |seen| match seen.uri.path() {
        "/sized" => Reply::ok(&big2),
        "/exact" => Reply::ok(&big2[..4096]).chunked(),
        _ => Reply::ok(&big2).chunked(),
    })
    .await;
    for path in ["/sized", "/chunked"] {
        let mut spec = RemoteSpec::new(server.url(path));
        spec.ca_pem = Some(pki.ca_pem.clone());
        spec.max_bytes = 4096;
        let err = RemoteSource::new(spec)
            .expect("spec")
            .fetch()
            .await
            .expect_err(path);
        assert!(
            matches!(err, FetchError::TooLarge { limit: 4096, .. }),
            "{path}: {err}"
        );
    }
    let mut spec = RemoteSpec::new(server.url("/exact"));
    spec.ca_pem = Some(pki.ca_pem.clone());
    spec.max_bytes = 4096;
    let got = RemoteSource::new(spec)
        .expect("spec")
        .fetch()
        .await
        .expect("at the limit");
    assert_eq!(body(got).len(), 4096);
    assert_eq!(big.len(), 5000);
}

#[tokio::test]
async fn rejects_an_encoded_body() {
    let pki = pki();
    let server = serve(&pki, |_| Reply::ok("x").header("content-encoding", "gzip")).await;
    let err = source(server.url("/"), &pki)
        .fetch()
        .await
        .expect_err("gzip");
    assert!(matches!(err, FetchError::Encoding { .. }), "{err}");
}

#[tokio::test]
async fn times_out_on_a_silent_peer_and_on_a_hung_response() {
    let pki = pki();
    let (addr, _silent) = serve_silent().await;
    let hung = serve(&pki, |_| Reply::Hang).await;
    for url in [format!("https://{addr}/"), hung.url("/").to_string()] {
        let mut spec = RemoteSpec::new(url.parse().expect("uri"));
        spec.ca_pem = Some(pki.ca_pem.clone());
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
    let (pki, stranger) = (pki(), pki());
    let server = serve(&pki, |_| Reply::ok("ab12")).await;
    let err = source(server.url("/"), &stranger)
        .fetch()
        .await
        .expect_err("wrong CA");
    assert!(matches!(err, FetchError::Tls { .. }), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn reports_a_refused_connection() {
    let pki = pki();
    let addr = closed_port().await;
    let url = format!("https://{addr}/").parse().expect("uri");
    let err = source(url, &pki).fetch().await.expect_err("refused");
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
