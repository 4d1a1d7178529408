//! hookgate's framing beside hyper 1's HTTP/1.1 server, over the same bytes: for the corpus
//! test below and the `request_framing` fuzz target (feature `differential`). Never built into
//! hookgate itself.
//!
//! The rule it checks: every request hookgate reads whole, hyper reads whole too, as the same
//! request (method, target, version, header fields, body); and where hookgate did not refuse,
//! hyper read no further request. Any other disagreement about where messages begin and end
//! must be a refusal by hookgate.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::framing::{self, Event, Requests, MAX_HEADERS};

mod hyper_server;
pub use hyper_server::Message;

/// What hookgate's framing made of a stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Framed {
    /// The requests read whole, before any refusal.
    pub messages: Vec<Message>,
    /// Why the stream was refused, if it was.
    pub refused: Option<String>,
}

/// Feeds `stream` to [`Requests`] in reads of `read_size` bytes.
pub fn hookgate_reads(stream: &[u8], read_size: usize) -> Framed {
    let mut requests = Requests::default();
    let mut framed = Framed::default();
    let mut current: Option<Message> = None;
    for piece in stream.chunks(read_size.max(1)) {
        requests.feed(piece, &mut |event| match event {
            Event::Head { at, len, .. } => {
                current = Some(head_of(&stream[at as usize..at as usize + len]));
            }
            Event::Data { at, len } => {
                if let Some(m) = current.as_mut() {
                    m.body
                        .extend_from_slice(&stream[at as usize..at as usize + len]);
                }
            }
            Event::End { .. } => framed.messages.extend(current.take()),
            Event::Refused { refusal, .. } => framed.refused = Some(format!("{refusal:?}")),
            Event::AfterClose(_) => {}
        });
    }
    framed
}

/// The request a head hookgate accepted describes.
fn head_of(head: &[u8]) -> Message {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (req, _) = framing::parse_head(head, &mut headers).expect("a head framing accepted");
    let target = req.path.unwrap_or_default();
    let mut fields: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    fields.sort();
    // hyper keeps one of several equal Content-Length fields (framing accepts only equal ones).
    fields.dedup_by(|a, b| a.0 == "content-length" && a == b);
    Message {
        method: req.method.unwrap_or_default().to_owned(),
        target: http::Uri::try_from(target)
            .map(|u| u.to_string())
            .unwrap_or_default(),
        version: req.version.unwrap_or_default(),
        headers: fields,
        body: Vec::new(),
    }
}

/// The requests hyper 1's server dispatched from `stream` and whose bodies it read whole.
pub fn hyper_reads(stream: &[u8]) -> Vec<Message> {
    block_on(hyper_server::reads(stream))
}

/// Runs `f` on this thread's runtime (one per fuzzing or test thread, made once).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// `None` if hookgate's framing and hyper agree on `stream` as the rule above says; else
/// what they disagree on. Read sizes must not change hookgate's reading (`splits`).
pub fn disagreement(stream: &[u8], splits: &[usize]) -> Option<String> {
    let ours = hookgate_reads(stream, stream.len());
    for &split in splits {
        let other = hookgate_reads(stream, split);
        if other != ours {
            return Some(format!(
                "reads of {split} bytes: {other:?}, one read: {ours:?}"
            ));
        }
    }
    compare(&ours, &hyper_reads(stream))
}

/// The rule itself, over what each side read.
pub fn compare(ours: &Framed, theirs: &[Message]) -> Option<String> {
    let n = ours.messages.len();
    if theirs.len() < n || theirs[..n] != ours.messages[..] {
        return Some(format!(
            "hookgate read {:?}, hyper read {theirs:?}",
            ours.messages
        ));
    }
    if ours.refused.is_none() && theirs.len() > n {
        return Some(format!(
            "hyper read requests hookgate neither read nor refused: {:?}",
            &theirs[n..]
        ));
    }
    None
}

/// `None` if hookgate's events over `stream` (in reads of `read_size`) account for every byte
/// exactly once: requests follow each other with nothing between them from the first byte, each
/// head and body inside its request, indexes in order; after them only a refused or an
/// unfinished request, or bytes after `Connection: close`.
pub fn tiling_violation(stream: &[u8], read_size: usize) -> Option<String> {
    let mut requests = Requests::default();
    let mut events = Vec::new();
    for piece in stream.chunks(read_size.max(1)) {
        requests.feed(piece, &mut |e| events.push(e));
    }
    // Where the next request must start, and where the current one's next byte may be.
    let (mut next_start, mut cursor, mut index, mut open) = (0u64, 0u64, 0u64, false);
    let mut after = 0usize;
    for e in &events {
        let ok = match *e {
            Event::Head {
                index: i, at, len, ..
            } => {
                let ok = !open && i == index && at == next_start && len > 0;
                (cursor, open) = (at + len as u64, true);
                ok
            }
            Event::Data { at, len } => {
                let ok = open && at >= cursor && len > 0;
                cursor = at + len as u64;
                ok
            }
            Event::End { index: i, at } => {
                let ok = open && i == index && at >= cursor;
                (next_start, cursor, index, open) = (at, at, index + 1, false);
                ok
            }
            Event::Refused { index: i, .. } => i == index,
            Event::AfterClose(len) => {
                after += len;
                !open
            }
        };
        if !ok {
            return Some(format!("{e:?} out of place in {events:?}"));
        }
    }
    let refused = events.iter().any(|e| matches!(e, Event::Refused { .. }));
    let refusals = events
        .iter()
        .filter(|e| matches!(e, Event::Refused { .. }))
        .count();
    if refusals > 1 || (refused && !matches!(events.last(), Some(Event::Refused { .. }))) {
        return Some(format!("events after a refusal: {events:?}"));
    }
    if after > 0 && next_start + after as u64 != stream.len() as u64 {
        return Some(format!("{after} bytes after close, {} fed", stream.len()));
    }
    if next_start > stream.len() as u64 {
        return Some(format!("requests end at {next_start} of {}", stream.len()));
    }
    None
}

/// What a reader made of an upstream's response: status, header fields (as for requests), body.
pub type ResponseRead = (u16, Vec<(String, Vec<u8>)>, Vec<u8>);

/// hookgate's client reading of `bytes` as the answer to a request (`to_head`: a HEAD): the
/// final response, or `Err` with why it was refused or could not be read whole.
pub fn hookgate_reads_response(bytes: &[u8], to_head: bool) -> Result<ResponseRead, String> {
    use super::response::{parse_response, Delimit, Parsed};
    let mut rest = Bytes::copy_from_slice(bytes);
    let head = loop {
        let len = super::framing::HeadScan::default()
            .advance(&rest)
            .map_err(|r| format!("{r:?}"))?
            .ok_or("incomplete head")?;
        let head = rest.split_to(len);
        match parse_response(&head, to_head)? {
            Parsed::Interim => continue,
            Parsed::Final(head) => break head,
        }
    };
    let mut body = Vec::new();
    let mut state = match head.body {
        Delimit::Close => {
            body.extend_from_slice(&rest);
            None
        }
        Delimit::Length(n) => Some(super::framing::BodyState::new(
            super::framing::Body::Length(n),
        )),
        Delimit::Chunked => Some(super::framing::BodyState::new(
            super::framing::Body::Chunked,
        )),
    };
    if let Some(state) = state.as_mut() {
        let mut at = 0;
        while !state.is_done() {
            if at == rest.len() {
                return Err("incomplete body".into());
            }
            let step = state.take(&rest[at..]).map_err(|r| format!("{r:?}"))?;
            body.extend_from_slice(&rest[at + step.data.start..at + step.data.end]);
            at += step.used;
        }
    }
    let mut fields = hyper_server::sorted_fields(&head.headers);
    fields.dedup_by(|a, b| a.0 == "content-length" && a == b);
    Ok((head.status.as_u16(), fields, body))
}

/// hyper 1's client reading of `bytes` as the answer to a GET (or HEAD) it sent.
pub fn hyper_reads_response(bytes: &[u8], to_head: bool) -> Result<ResponseRead, String> {
    block_on(hyper_reads_response_async(bytes, to_head))
}

async fn hyper_reads_response_async(bytes: &[u8], to_head: bool) -> Result<ResponseRead, String> {
    let (client, mut server) = tokio::io::duplex(64 * 1024);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(client))
            .await
            .map_err(|e| e.to_string())?;
    let upstream = async {
        let mut sink = vec![0; 4096];
        // The request head, then the canned answer, then the end.
        let _ = server.read(&mut sink).await;
        let _ = server.write_all(bytes).await;
        let _ = server.shutdown().await;
        while let Ok(n) = server.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let exchange = async {
        let req = http::Request::builder()
            .method(if to_head { "HEAD" } else { "GET" })
            .uri("/")
            .header("host", "upstream")
            .body(Empty::<Bytes>::new())
            .expect("a request");
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if resp.status().is_informational() {
            return Err("an informational final answer".to_owned());
        }
        let status = resp.status().as_u16();
        let mut fields = hyper_server::sorted_fields(resp.headers());
        fields.dedup_by(|a, b| a.0 == "content-length" && a == b);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, fields, body.to_bytes().to_vec()))
    };
    let driven = async {
        let conn = async {
            let _ = conn.await;
        };
        tokio::join!(exchange, conn).0
    };
    let all = async { tokio::join!(driven, upstream).0 };
    tokio::time::timeout(std::time::Duration::from_secs(10), all)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "hyper did not finish reading a {}-byte response",
                bytes.len()
            )
        })
}

/// `None` if every response hookgate's client reads whole, hyper's client reads the same.
pub fn response_disagreement(bytes: &[u8], to_head: bool) -> Option<String> {
    let ours = hookgate_reads_response(bytes, to_head).ok()?;
    match hyper_reads_response(bytes, to_head) {
        Ok(theirs) if theirs == ours => None,
        theirs => Some(format!("hookgate read {ours:?}, hyper {theirs:?}")),
    }
}

#[cfg(test)]
mod corpus;
