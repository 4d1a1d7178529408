//! hyper 1's HTTP/1.1 server reading a stream of request bytes: the other side of the
//! differential (`super`). Self-contained (crates only, nothing of hookgate's): the loop
//! differential of `tests/it/hardening/loop_differential.rs` compiles this same file with
//! `#[path]`, so both tests hold hookgate to one reading of hyper's.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as a reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub method: String,
    /// As `http::Uri` displays it (both readers build one).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// (lowercase name, value), sorted.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

/// A header map as (lowercase name, value) pairs, sorted: how every reader's fields compare.
pub fn sorted_fields(headers: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut fields: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    fields.sort();
    fields
}

/// The requests hyper 1's server dispatched from `stream` (written at once, then half-closed)
/// and whose bodies it read whole, in order.
pub async fn reads(stream: &[u8]) -> Vec<Message> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = {
        let seen = seen.clone();
        hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let seen = seen.clone();
            async move {
                let (parts, body) = req.into_parts();
                if let Ok(body) = body.collect().await {
                    seen.lock().expect("not poisoned").push(Message {
                        method: parts.method.to_string(),
                        target: parts.uri.to_string(),
                        version: u8::from(parts.version == http::Version::HTTP_11),
                        headers: sorted_fields(&parts.headers),
                        body: body.to_bytes().to_vec(),
                    });
                }
                // A 2xx to CONNECT would turn the connection into a tunnel.
                let status = if parts.method == http::Method::CONNECT {
                    400
                } else {
                    200
                };
                let mut resp = http::Response::builder().status(status);
                if parts.version == http::Version::HTTP_10 {
                    // Else hyper ends an HTTP/1.0 connection after the first response.
                    resp = resp.header(http::header::CONNECTION, "keep-alive");
                }
                let resp = resp.body(Empty::<Bytes>::new()).expect("a response");
                Ok::<_, Infallible>(resp)
            }
        })
    };
    // The client half-closes once it has written everything: hyper must still serve what it read.
    let conn = http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(server), service);
    let (mut rd, mut wr) = tokio::io::split(client);
    let write = async {
        let _ = wr.write_all(stream).await;
        let _ = wr.shutdown().await;
    };
    let read = async {
        let mut sink = vec![0; 16 * 1024];
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let served = async {
        let _ = conn.await;
    };
    let all = async { tokio::join!(served, write, read) };
    if tokio::time::timeout(std::time::Duration::from_secs(10), all)
        .await
        .is_err()
    {
        panic!("hyper did not finish reading {} bytes", stream.len());
    }
    let seen = seen.lock().expect("not poisoned").clone();
    seen
}
