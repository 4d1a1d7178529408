//! The differential corpus through the real connection loop: each stream of
//! `src/http1/differential/corpus.rs` is written over mutual TLS to the hookgate binary, and
//! what the upstream receives is held against what hyper 1's HTTP/1.1 server reads from the
//! same bytes. The unit test and the fuzz target check the pure framing (`http1::framing`);
//! this checks the glue around it (`connection::http1`, `http1::body`): how one buffer is split
//! between a head, its body and the next pipelined request, lingering discard, keep-alive,
//! `100 Continue`.
//!
//! - **The streams** are the lib's own: the builders live in
//!   `src/http1/differential/corpus/streams.rs`, which the unit test uses as a module and this
//!   file compiles again with `#[path]` (it needs only std and the three SPEC §11 limits, given
//!   below). The committed fuzz corpus is not used: libFuzzer campaigns and `cmin` have
//!   replaced the seeds, and streams over 16 KiB were never seeds.
//! - **hyper's reading** is `src/http1/differential/hyper_server.rs`, compiled here the same
//!   way: one harness, not a copy (`http1` is crate-private, and the feature-gated `fuzz_api`
//!   exports only verdicts).
//! - **The gate** lets framing decide: no required header, every method the corpus uses, all
//!   paths, and `header_timeout` 20 s: every connection must be closed by the gate within 4 s
//!   of the client's close_notify, before any of its timers (the shortest, the lingering
//!   discard, is 5 s) could be what ended it. Host rules (SPEC §3) still refuse some
//!   requests (no `Host`, `userinfo@`, `*`): those are answered, not forwarded.
//! - **Writes**: each stream whole, in writes of 1 and 7 bytes, and of 2 to 98 bytes (from a
//!   hash of the stream), each write its own flushed TLS record with TCP_NODELAY; streams over
//!   16 KiB (the limit cases, 34 of 1,640) whole and in 1,447-byte writes only. The client then
//!   sends close_notify and reads until the gate closes.
//!
//! The rule, per connection: with R₁…Rₘ the final responses in order and H₁…Hₙ hyper's
//! requests, every Rₖ is the upstream's relayed answer or hookgate's JSON error; a relayed Rₖ
//! has k ≤ n and its `X-Request-Id` names an upstream request equal to Hₖ (method, path and
//! query, body, and every header but those SPEC §4 removes or sets); an error Rₖ that keeps the
//! connection open names (in its log line) Hₖ's method and path; a response past Hₙ is an error
//! and the last; nothing follows a `Connection: close`; unless the last response is an error,
//! m = n. Across all connections every upstream request is claimed by exactly one relayed
//! response, so nothing reached the upstream that the client was not answered for, and nothing
//! after a refusal.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// SPEC §11's limits, for `streams` (in the lib it uses `http1::framing`'s).
mod framing {
    pub const MAX_REQUEST_LINE: usize = 8 * 1024;
    pub const MAX_HEAD: usize = 64 * 1024;
    pub const MAX_HEADERS: usize = 100;
}

#[path = "../../../src/http1/differential/corpus/streams.rs"]
mod streams;

#[path = "../../../src/http1/differential/hyper_server.rs"]
mod hyper_server;

use hyper_server::Message;

/// Connections in flight at once.
const PARALLEL: usize = 6;
/// From the client's close_notify to the gate's close, at most: less than any gate timer.
const CLOSED_WITHIN: Duration = Duration::from_secs(4);
/// Streams longer than this are written whole and in [`LARGE_WRITE`]-byte writes only.
const SMALL: usize = 16 * 1024;
const LARGE_WRITE: usize = 1447;

/// Removed from what the upstream receives (SPEC §4 hop-by-hop, and `Expect`), or set by
/// hookgate itself: compared on neither side.
const NOT_COMPARED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "x-request-id",
    "client-cert",
    "x-client-cert-sha256",
    "content-digest",
    "signature-input",
    "signature",
];

/// One final response as the client read it.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        let mut all = self.headers.iter().filter(|(k, _)| k == name);
        all.next().map(|(_, v)| v.as_str())
    }

    fn id(&self) -> &str {
        self.header("x-request-id").unwrap_or_default()
    }

    fn relayed(&self) -> bool {
        self.status == 200 && self.header("x-upstream") == Some("recorded")
    }

    /// hookgate's own `{"error":…,"request_id":<its X-Request-Id>}` with a 4xx.
    fn is_hookgate_error(&self) -> bool {
        let body: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_default();
        (400..500).contains(&self.status)
            && self.header("content-type") == Some("application/json")
            && body["error"].is_string()
            && body["request_id"] == self.id()
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// What one connection carried back.
struct Seen {
    responses: Vec<Response>,
    /// Why the bytes did not parse as whole responses, or the gate did not close.
    broken: Option<String>,
}

// Two threads: the client's side of 6,500 TLS connections is as much work as the gate's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_loop_forwards_only_what_hyper_reads_and_refuses_where_they_differ() {
    let started = std::time::Instant::now();
    let streams = streams::corpus();
    let singles = streams::valid().len() + streams::hostile().len();
    assert_eq!(
        streams.len(),
        5 * singles,
        "corpus() makes 5 streams of each"
    );
    let mut hyper = Vec::with_capacity(streams.len());
    for s in &streams {
        hyper.push(hyper_server::reads(s).await);
    }
    let cases: Vec<(usize, usize)> = (0..streams.len())
        .flat_map(|i| splits(&streams[i]).into_iter().map(move |w| (i, w)))
        .collect();

    let up = Upstream::start();
    let gate = GateConfig::new(&up.url)
        .remove("required_header")
        .set_toml(
            "request.methods",
            r#"["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT"]"#,
        )
        .set("listen.header_timeout", "20s")
        .start()
        .await;
    let seen = drive_all(&gate, Arc::new(streams.clone()), &cases).await;
    let driven = started.elapsed();

    let records: HashMap<String, upstream::Recorded> = up
        .requests()
        .into_iter()
        .map(|r| (r.headers["x-request-id"].to_str().unwrap().to_owned(), r))
        .collect();
    let logs = request_lines(&gate, &seen).await;
    let (mut failures, mut claimed) = (Vec::new(), Vec::new());
    let mut counts = [0usize; 3];
    for (&(i, write), seen) in cases.iter().zip(&seen) {
        match judge(&hyper[i], seen, &records, &logs, &mut claimed) {
            Ok(()) => {}
            Err(why) => failures.push(format!(
                "stream {i} in writes of {write}: {why}\n  bytes: \"{}\"\n  hyper read: {:?}\n  \
                 hookgate answered: {:?}",
                streams[i][..streams[i].len().min(400)].escape_ascii(),
                hyper[i].iter().map(brief).collect::<Vec<_>>(),
                seen.responses
                    .iter()
                    .map(|r| (r.status, r.id(), r.closes()))
                    .collect::<Vec<_>>(),
            )),
        }
        for r in &seen.responses {
            counts[match (r.relayed(), r.closes()) {
                (true, _) => 0,
                (false, false) => 1,
                (false, true) => 2,
            }] += 1;
        }
    }
    let unique: HashSet<&String> = claimed.iter().collect();
    let unclaimed: Vec<_> = records
        .values()
        .filter(|r| !unique.contains(&r.headers["x-request-id"].to_str().unwrap().to_owned()))
        .map(|r| (r.method.clone(), r.target.clone()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} connections:\n{}",
        failures.len(),
        cases.len(),
        failures[..failures.len().min(6)].join("\n")
    );
    assert!(
        unclaimed.is_empty() && unique.len() == claimed.len(),
        "forwarded without a relayed answer: {unclaimed:?}"
    );
    // Both sides of the decision are exercised.
    let [relayed, kept_open_errors, closing_errors] = counts;
    assert!(
        relayed > 2000 && closing_errors > 1000 && kept_open_errors > 500,
        "{counts:?}"
    );
    eprintln!(
        "{} streams, {} connections in {driven:?} ({:?} in all): {relayed} forwarded, \
         {kept_open_errors} refused keeping the connection, {closing_errors} refused closing it",
        streams.len(),
        cases.len(),
        started.elapsed()
    );
}

/// The write sizes for `stream`: whole, 1, 7 and one of 2..=98 from its bytes (FNV-1a).
fn splits(stream: &[u8]) -> Vec<usize> {
    if stream.len() > SMALL {
        return vec![stream.len(), LARGE_WRITE];
    }
    let hash = stream.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    vec![stream.len().max(1), 1, 7, 2 + hash as usize % 97]
}

/// Drives every case, [`PARALLEL`] connections at a time; the results in case order.
async fn drive_all(gate: &Gate, streams: Arc<Vec<Vec<u8>>>, cases: &[(usize, usize)]) -> Vec<Seen> {
    let cases = Arc::new(cases.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..PARALLEL {
        let (client, addr) = (gate.client(), gate.addr);
        let (streams, cases, next) = (streams.clone(), cases.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let case = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, write)) = cases.get(case) else {
                    return done;
                };
                let tls = client.connect(addr).await.expect("handshake");
                done.push((case, drive(tls, &streams[i], write).await));
            }
        });
    }
    let mut all = Vec::with_capacity(cases.len());
    while let Some(done) = workers.join_next().await {
        all.extend(done.expect("a worker"));
    }
    all.sort_by_key(|(case, _)| *case);
    all.into_iter().map(|(_, seen)| seen).collect()
}

/// Writes `stream` in writes of `write` bytes, then close_notify; reads until the gate closes.
async fn drive(tls: client::Tls, stream: &[u8], write: usize) -> Seen {
    tls.get_ref().0.set_nodelay(true).expect("nodelay");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let writing = async {
        for piece in stream.chunks(write) {
            if wr.write_all(piece).await.is_err() || wr.flush().await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        std::time::Instant::now()
    };
    let reading = async {
        let mut bytes = Vec::new();
        // Past `header_timeout`, so a connection a timer ended is reported, not waited for.
        let read = tokio::time::timeout(Duration::from_secs(25), async {
            let mut chunk = [0u8; 16 * 1024];
            while let Ok(n @ 1..) = rd.read(&mut chunk).await {
                bytes.extend_from_slice(&chunk[..n]);
            }
        });
        let closed = read.await.ok().map(|()| std::time::Instant::now());
        (bytes, closed)
    };
    let (notified, (bytes, closed)) = tokio::join!(writing, reading);
    let (responses, mut broken) = parse_responses(&bytes);
    match closed.map(|at| at.saturating_duration_since(notified)) {
        Some(after) if after <= CLOSED_WITHIN => {}
        after => broken = Some(format!("the gate closed {after:?} after close_notify")),
    }
    Seen { responses, broken }
}

/// The final responses in `bytes` (interim `100 Continue` skipped), and what was left over.
fn parse_responses(mut bytes: &[u8]) -> (Vec<Response>, Option<String>) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut fields);
        let Ok(httparse::Status::Complete(len)) = head.parse(bytes) else {
            let left = format!("not a whole response: \"{}\"", bytes.escape_ascii());
            return (out, Some(left));
        };
        let status = head.code.unwrap_or_default();
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|h| {
                let v = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_ascii_lowercase(), v)
            })
            .collect();
        bytes = &bytes[len..];
        if status == 100 {
            continue;
        }
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let Some(body) = length.and_then(|n| bytes.get(..n)) else {
            return (out, Some(format!("a {status} without its whole body")));
        };
        bytes = &bytes[body.len()..];
        out.push(Response {
            status,
            headers,
            body: body.to_vec(),
        });
    }
    (out, None)
}

/// The rule of the module doc, for one connection; the ids of the relayed requests go to
/// `claimed`.
fn judge(
    hyper: &[Message],
    seen: &Seen,
    records: &HashMap<String, upstream::Recorded>,
    logs: &HashMap<String, (String, String)>,
    claimed: &mut Vec<String>,
) -> Result<(), String> {
    if let Some(why) = &seen.broken {
        return Err(why.clone());
    }
    let (m, n) = (seen.responses.len(), hyper.len());
    for (k, r) in seen.responses.iter().enumerate() {
        let last = k + 1 == m;
        let theirs = hyper.get(k);
        if r.closes() && !last {
            return Err(format!(
                "response {k} said Connection: close, more followed"
            ));
        }
        if r.relayed() {
            let Some(theirs) = theirs else {
                return Err(format!(
                    "response {k}: forwarded a request hyper did not read"
                ));
            };
            let Some(ours) = records.get(r.id()) else {
                return Err(format!(
                    "response {k}: relayed, but no upstream request {}",
                    r.id()
                ));
            };
            same_request(ours, theirs).map_err(|why| format!("request {k}: {why}"))?;
            claimed.push(r.id().to_owned());
        } else if !r.is_hookgate_error() {
            return Err(format!(
                "response {k} is neither relayed nor hookgate's: {r:?}"
            ));
        } else if theirs.is_none() && !last {
            return Err(format!(
                "response {k} past hyper's requests, and more followed"
            ));
        } else if let (Some(theirs), false) = (theirs, r.closes()) {
            // Refused by policy, the connection kept: it must have read hyper's request here.
            let logged = logs
                .get(r.id())
                .ok_or(format!("no log line for {}", r.id()))?;
            let want = (theirs.method.clone(), uri(theirs).path().to_owned());
            if *logged != want {
                return Err(format!(
                    "response {k} refused {logged:?}, hyper read {want:?}"
                ));
            }
        }
    }
    let refused_last = seen.responses.last().is_some_and(|r| !r.relayed());
    if !refused_last && m != n {
        return Err(format!(
            "{m} answered, hyper read {n}, and hookgate refused nothing"
        ));
    }
    Ok(())
}

/// What the upstream received against what hyper read.
fn same_request(ours: &upstream::Recorded, theirs: &Message) -> Result<(), String> {
    let target = uri(theirs);
    let target = target.path_and_query().map_or("", |pq| pq.as_str());
    if (ours.method.as_str(), ours.target.as_str()) != (theirs.method.as_str(), target) {
        return Err(format!("{} {} forwarded", ours.method, ours.target));
    }
    if ours.body[..] != theirs.body[..] {
        return Err(format!("body {:?} forwarded", ours.body));
    }
    // SPEC §4 removes each of these in every spelling: any case, `_` for `-`.
    let spelled = |name: &[u8]| {
        String::from_utf8_lossy(name)
            .to_ascii_lowercase()
            .replace('_', "-")
    };
    let named: Vec<String> = theirs
        .headers
        .iter()
        .filter(|(k, _)| spelled(k.as_bytes()) == "connection")
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|o| spelled(o.trim_ascii()))
        .collect();
    let kept = |k: &str| {
        let k = spelled(k.as_bytes());
        !NOT_COMPARED.contains(&k.as_str()) && !named.contains(&k)
    };
    let mut want: Vec<(String, Vec<u8>)> = theirs
        .headers
        .iter()
        .filter(|(k, _)| kept(k))
        .cloned()
        .collect();
    let mut got = hyper_server::sorted_fields(&ours.headers);
    got.retain(|(k, _)| kept(k));
    want.sort();
    if want != got {
        return Err(format!("headers {got:?} forwarded, hyper read {want:?}"));
    }
    Ok(())
}

fn uri(m: &Message) -> http::Uri {
    m.target.parse().unwrap_or_default()
}

fn brief(m: &Message) -> String {
    format!("{} {} ({} body bytes)", m.method, m.target, m.body.len())
}

/// `request_id` → (method, path) of the access-log lines of every answered request that kept
/// its connection open (a line is written once its response has gone out: polled for 5 s).
async fn request_lines(gate: &Gate, seen: &[Seen]) -> HashMap<String, (String, String)> {
    let wanted: HashSet<&str> = seen
        .iter()
        .flat_map(|s| &s.responses)
        .filter(|r| !r.relayed() && !r.closes())
        .map(Response::id)
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines: HashMap<String, (String, String)> = gate
            .stdout
            .json()
            .into_iter()
            .filter(|v| v["msg"] == "request")
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("request_id"), (s("method"), s("path")))
            })
            .collect();
        if wanted.iter().all(|id| lines.contains_key(*id)) || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
