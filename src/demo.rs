//! `hookgate demo`: the gate on `proxy.toml.example` with the demo certificates, plus an
//! embedded echo upstream that prints every forwarded request and whether its signature and
//! Content-Digest verify. Demo secrets fill any unset secret variable.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::UpstreamTarget;
use crate::signature::{ContentDigest, Covered, IdentitySigner};
use crate::snapshot::Snapshot;
use crate::start::{init_logging, start, LogOverrides};

const DEMO_HEADER_SECRET: &str = "demo-waf-secret";
const DEMO_PAYLOAD: &str = "demo-developer-payload";
/// 32 bytes of base64, public: the demo's signing key.
const DEMO_SIGNING_KEY: &str = "ZGVtby1zaWduaW5nLWtleS1kby1ub3QtdXNlLWluLXByb2Q=";

/// `store`: the demo with one durable route (SPEC §9) in a temporary store, and an echo upstream
/// that refuses each request's first two attempts, so a newcomer sees a webhook accepted (202)
/// while the app fails, then delivered on a retry.
pub(crate) fn run(config: Option<PathBuf>, store: bool, log: &LogOverrides) -> ExitCode {
    let path = config.unwrap_or_else(|| PathBuf::from("proxy.toml.example"));
    // The curl line names the certificates next to the config the user gave.
    let certs_of = path.clone();
    let _store_dir;
    let path = if store {
        match store_config(&path) {
            Ok((dir, p)) => {
                _store_dir = dir;
                p
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        path
    };
    for (var, value) in [
        ("HOOKGATE_HEADER_SECRET", DEMO_HEADER_SECRET),
        ("HOOKGATE_DEVELOPER_PAYLOAD", DEMO_PAYLOAD),
        ("HOOKGATE_SIGNING_KEY", DEMO_SIGNING_KEY),
    ] {
        if std::env::var_os(var).is_none() {
            // Single-threaded here: no runtime has started yet.
            std::env::set_var(var, value);
        }
    }
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(crate::VERSION));
    let loaded = match crate::start::load(&path, &metrics) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            if !path.exists() {
                eprintln!(
                    "hint: run `hookgate demo` from the repository root, or pass --config FILE"
                );
            }
            return ExitCode::from(1);
        }
    };
    let log = LogOverrides {
        format: log.format.clone().or_else(|| Some("text".into())),
        level: log.level.clone(),
    };
    let snapshot = &loaded.snapshot;
    if let Err(e) = init_logging(&snapshot.config, &log) {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let UpstreamTarget::Tcp { host, port } = snapshot.config.upstream.target.clone() else {
        eprintln!("error: the demo's echo upstream needs a TCP upstream.url (http://HOST:PORT)");
        return ExitCode::from(1);
    };
    let key = std::env::var("HOOKGATE_SIGNING_KEY").unwrap_or_default();
    let key_id = snapshot.config.identity.as_ref().map(|i| i.key_id.clone());
    let runtime = match crate::start::build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async move {
        let upstream = match TcpListener::bind((host.as_str(), port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: the echo upstream cannot listen on {host}:{port} (upstream.url): {e}"
                );
                return ExitCode::from(1);
            }
        };
        let signer = key_id.and_then(|id| {
            use base64::Engine;
            let key = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .ok()?;
            IdentitySigner::new(&key, &id).ok()
        });
        tokio::spawn(echo_upstream(upstream, signer, store));
        let curl = curl_line(&loaded.snapshot, &certs_of);
        match start(loaded, metrics, path.clone(), Default::default()).await {
            Ok(running) => {
                println!(
                    "\nhookgate demo: the gate listens on {}, the echo upstream on {host}:{port}.",
                    running.address
                );
                println!("Send a webhook through it (from the repository root):\n\n{curl}\n");
                println!("Ctrl-C stops the demo.\n");
                running.wait().await;
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        }
    });
    crate::start::stop_runtime(runtime);
    code
}

fn curl_line(snap: &Snapshot, config_path: &Path) -> String {
    let dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let certs = |f: &str| {
        let p = dir.join("certs").join(f);
        p.strip_prefix("./").unwrap_or(&p).display().to_string()
    };
    let port = snap.config.listen.address.port();
    let mut line = format!(
        "curl --cacert {} --cert {} --key {} \\\n  -H 'Content-Type: application/json'",
        certs("demo-ca.pem"),
        certs("demo-client.pem"),
        certs("demo-client.key")
    );
    let path = "/webhooks/copyleaks/completed";
    let route = snap.routes.select(path);
    if let Some(h) = route.and_then(|r| r.header.as_ref()) {
        let value = String::from_utf8_lossy(h.values[0].expose()).into_owned();
        line.push_str(&format!(" -H '{}: {value}'", header_case(h.name.as_str())));
    }
    let payload = route
        .and_then(|r| r.payload.as_ref())
        .map(|p| String::from_utf8_lossy(p.values[0].expose()).into_owned())
        .unwrap_or_default();
    line.push_str(&format!(
        " \\\n  --data '{{\"status\":0,\"developerPayload\":\"{payload}\",\"scannedDocument\":{{\"scanId\":\"demo-1\",\"totalWords\":1234}},\"results\":{{\"score\":{{\"aggregatedScore\":12.5}}}}}}' \\\n  https://localhost:{port}{path}"
    ));
    line
}

fn header_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

async fn echo_upstream(listener: TcpListener, signer: Option<IdentitySigner>, refuse_twice: bool) {
    let signer = std::sync::Arc::new(signer);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let signer = signer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let signer = signer.clone();
                async move {
                    let attempt = req
                        .headers()
                        .get("hookgate-attempt")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u32>().ok());
                    let resp = echo(req, signer.as_ref().as_ref()).await;
                    Ok::<_, Infallible>(match attempt {
                        Some(n) if refuse_twice && n < 3 => {
                            println!("    echo upstream: answering 503 to attempt {n}, to show the retries");
                            let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
                            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
                            r
                        }
                        _ => resp,
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn echo(req: Request<Incoming>, signer: Option<&IdentitySigner>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = format!(
        "\n--- echo upstream received: {} {}\n",
        parts.method, parts.uri
    );
    for (name, value) in &parts.headers {
        let v = value.to_str().unwrap_or("<binary>");
        let v = if v.len() > 72 {
            format!("{}…({} chars)", &v[..72], v.len())
        } else {
            v.to_owned()
        };
        out.push_str(&format!("    {name}: {v}\n"));
    }
    let digest_ok = {
        let mut d = ContentDigest::new();
        d.update(&body);
        parts.headers.get("content-digest") == Some(&d.finish())
    };
    let signature = match signer {
        Some(s) => {
            if verify(s, &parts) {
                "verified"
            } else {
                "INVALID"
            }
        }
        None => "not configured",
    };
    out.push_str(&format!(
        "    body: {} bytes; Content-Digest: {}; signature: {signature}\n",
        body.len(),
        if digest_ok { "matches" } else { "MISMATCH" }
    ));
    println!("{out}");
    Response::new(Full::new(Bytes::from_static(b"{\"received\":true}\n")))
}

/// The demo config with every route durable: `[store]` in a temporary directory and one
/// `[[routes]]` over `/` with `delivery = "store"`; relative paths made absolute, as the file
/// is written elsewhere.
fn store_config(example: &Path) -> Result<(tempfile_dir::Dir, PathBuf), String> {
    let text = std::fs::read_to_string(example)
        .map_err(|e| format!("cannot read {}: {e}", example.display()))?;
    let base = std::fs::canonicalize(
        example
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .map_err(|e| e.to_string())?;
    let dir = tempfile_dir::Dir::new()?;
    let mut out = String::new();
    for line in text.lines() {
        // With [[routes]], [request] and [developer_payload] keep no path_prefixes (SPEC §8).
        if line.trim_start().starts_with("path_prefixes") {
            continue;
        }
        out.push_str(&line.replace("= \"certs/", &format!("= \"{}/certs/", base.display())));
        out.push('\n');
    }
    out.push_str(&format!(
        "\n[store]\npath = \"{}\"\nretry_initial = \"2s\"\n\n[[routes]]\nname = \"demo\"\npath_prefixes = [\"/\"]\ndelivery = \"store\"\n",
        dir.path().join("store").display()
    ));
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, out).map_err(|e| e.to_string())?;
    println!(
        "hookgate demo --store: every route stores first (store in {}); the echo upstream refuses \
         each webhook's first two attempts, so watch it be accepted (202) and delivered on the third.",
        dir.path().display()
    );
    Ok((dir, path))
}

/// A directory under the system's temporary directory, removed when dropped.
mod tempfile_dir {
    pub(crate) struct Dir(std::path::PathBuf);

    impl Dir {
        pub(crate) fn new() -> Result<Dir, String> {
            let mut raw = [0u8; 8];
            let _ = aws_lc_rs::rand::fill(&mut raw);
            let p =
                std::env::temp_dir().join(format!("hookgate-demo-{}", crate::digest::hex(&raw)));
            std::fs::create_dir(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
            Ok(Dir(p))
        }

        pub(crate) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Recomputes the signature from what arrived (same key, same `created`) and compares.
fn verify(signer: &IdentitySigner, parts: &http::request::Parts) -> bool {
    let h = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| v.as_bytes())
            .unwrap_or_default()
    };
    let input = String::from_utf8_lossy(h("signature-input")).into_owned();
    let Some(created) = input
        .split(";created=")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return false;
    };
    let (want_input, want_sig) = signer.sign(
        &Covered {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            content_digest: h("content-digest"),
            client_cert: h("client-cert"),
            client_cert_sha256: h("x-client-cert-sha256"),
            forwarded_for: h("x-forwarded-for"),
            forwarded: h("forwarded"),
            forwarded_proto: h("x-forwarded-proto"),
            request_id: h("x-request-id"),
            stored: parts
                .headers
                .get("hookgate-attempt")
                .map(|attempt| (attempt.as_bytes(), h("hookgate-received-at"))),
        },
        created,
    );
    want_input.as_bytes() == h("signature-input") && want_sig.as_bytes() == h("signature")
}
