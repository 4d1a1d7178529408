//! Where each HTTP/1.1 request on a connection begins and ends: the one framing decision
//! (RFC 9112 §2, §6, §7), over bytes, with no I/O.
//!
//! It accepts a strict subset of what RFC 9112 allows, and a subset of what hyper 1 accepts:
//! CRLF only (a bare LF or CR is refused, never taken for a line end), Content-Length as digits only (repeats must be equal), Transfer-Encoding
//! exactly `chunked` (not with Content-Length, not in HTTP/1.0), chunk sizes of at most 16 hex
//! digits, chunk extensions as `;token[=token|"quoted"]` with no whitespace, trailer fields as
//! `token:value` lines, and the size limits of SPEC §11. Each byte is checked once, when it
//! arrives, and a stream that leaves the subset is refused at that byte, so no other parser can
//! reach the end of a message hookgate has not decided on (`differential/corpus.rs` and the
//! `request_framing` fuzz target hold it to that against hyper 1.12 as locked in Cargo.lock).

use std::ops::Range;

/// SPEC §11: a head over 64 KiB, or with more than 100 fields, is refused with 431.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
pub(crate) const MAX_HEADERS: usize = 100;
/// SPEC §11: a request line over 8 KiB is refused with 414.
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Chunk extensions in one body, in bytes (hyper allows 16 KiB; webhooks send none).
const MAX_EXTENSIONS: usize = 1024;
/// The trailer section of one body (hyper allows 16 KiB and 100 fields).
const MAX_TRAILER_BYTES: usize = 8 * 1024;
const MAX_TRAILERS: usize = 32;
/// 18 decimal digits stay below every parser's overflow; 16 hex digits fill a u64.
const MAX_LENGTH_DIGITS: usize = 18;
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// Why a stream was refused; the connection closes after the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 400 `bad_request`: malformed or ambiguous; the detail is for the log.
    Malformed(&'static str),
    /// 414 `uri_too_long`: a request line over [`MAX_REQUEST_LINE`].
    UriTooLong,
    /// 431 `header_too_large`: a head over [`MAX_HEAD`] or with more than [`MAX_HEADERS`] fields.
    HeaderTooLarge,
}

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// Exactly this many bytes follow the head (0: no body).
    Length(u64),
    Chunked,
}

/// The framing decision for one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    pub body: Body,
    /// Whether another request may follow this one (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
}

/// Finds the end of a request head at the start of a growing buffer, checking each byte once.
#[derive(Debug, Default, Clone)]
pub(crate) struct HeadScan {
    /// Bytes of the buffer already checked.
    checked: usize,
    /// Where the line being checked starts.
    line_start: usize,
    /// The request line has ended.
    past_request_line: bool,
}

impl HeadScan {
    /// Checks the bytes of `buf` not seen before (`buf` starts with those seen by earlier
    /// calls). `Ok(Some(len))`: the head is `buf[..len]`, ending with an empty line;
    /// `Ok(None)`: not yet complete.
    pub(crate) fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, Refusal> {
        let start = self.checked;
        for (i, &b) in buf.iter().enumerate().skip(start) {
            if i >= MAX_HEAD {
                return Err(Refusal::HeaderTooLarge);
            }
            let after_cr = i > 0 && buf[i - 1] == b'\r';
            if after_cr && b != b'\n' {
                return Err(Refusal::Malformed("bare CR in the request head"));
            }
            if b == b'\n' {
                if !after_cr {
                    return Err(Refusal::Malformed("bare LF in the request head"));
                }
                let empty = i - 1 == self.line_start;
                if !self.past_request_line {
                    // RFC 9112 §2.2: empty lines before the request line are ignored (an old
                    // client's CRLF after a body), as httparse does.
                    self.past_request_line = !empty;
                } else if empty {
                    self.checked = i + 1;
                    return Ok(Some(i + 1));
                }
                self.line_start = i + 1;
            } else if !self.past_request_line
                && b != b'\r'
                && i - self.line_start >= MAX_REQUEST_LINE
            {
                return Err(Refusal::UriTooLong);
            }
        }
        self.checked = buf.len();
        Ok(None)
    }
}

/// Parses a complete head (as [`HeadScan`] delimited it) and decides its framing.
pub(crate) fn parse_head<'h, 'b>(
    head: &'b [u8],
    headers: &'h mut [httparse::Header<'b>; MAX_HEADERS],
) -> Result<(httparse::Request<'h, 'b>, Framing), Refusal> {
    let mut req = httparse::Request::new(headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(len)) if len == head.len() => {}
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeaderTooLarge),
        Err(httparse::Error::Token) if req.method.is_some() => {
            return Err(Refusal::Malformed("malformed request target"))
        }
        // `Partial`, or a length other than the scan's, cannot happen for a head ending in an
        // empty line with CRLF only; refused all the same.
        _ => return Err(Refusal::Malformed("malformed request head")),
    }
    let target = req.path.unwrap_or_default();
    if http::Uri::try_from(target).is_err() {
        return Err(Refusal::Malformed("malformed request target"));
    }
    let http11 = req.version == Some(1);
    let mut fields = FramingFields::default();
    for h in req.headers.iter() {
        fields
            .see(h.name.as_bytes(), h.value, http11)
            .map_err(Refusal::Malformed)?;
    }
    let body = fields
        .body()
        .map_err(Refusal::Malformed)?
        .unwrap_or(Body::Length(0));
    let keep_alive = fields.keep_alive(http11);
    Ok((req, Framing { body, keep_alive }))
}

/// The fields that decide where a message ends and whether another follows, read by one set of
/// rules for requests and for upstream responses (`http1::response`).
#[derive(Debug, Default)]
pub(crate) struct FramingFields<'b> {
    /// The first Content-Length, as sent: a repeat must be byte for byte the same (`2` and
    /// `02` are one number, but not one field value).
    length: Option<(u64, &'b [u8])>,
    codings: u32,
    chunked: bool,
    close: bool,
    keep_alive_token: bool,
}

impl<'b> FramingFields<'b> {
    /// Reads one header field; `Err` names what makes the framing ambiguous.
    pub(crate) fn see(
        &mut self,
        name: &[u8],
        value: &'b [u8],
        http11: bool,
    ) -> Result<(), &'static str> {
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = content_length(value).map_err(|_| "malformed Content-Length")?;
            if self.length.is_some_and(|(_, first)| first != value) {
                return Err("conflicting Content-Length values");
            }
            self.length = Some((n, value));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if !http11 {
                return Err("Transfer-Encoding in HTTP/1.0");
            }
            self.codings += 1;
            self.chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") && is_visible_ascii(value) {
            // hyper reads Connection only when it is visible ASCII; so does this.
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive_token |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    /// How the body is delimited by the fields; `None` when neither length field was sent.
    pub(crate) fn body(&self) -> Result<Option<Body>, &'static str> {
        match (self.codings, self.length) {
            (0, n) => Ok(n.map(|(n, _)| Body::Length(n))),
            (_, Some(_)) => Err("Content-Length together with Transfer-Encoding"),
            // `gzip, chunked` would reach the other side still compressed, without its coding.
            (1, None) if self.chunked => Ok(Some(Body::Chunked)),
            _ => Err("Transfer-Encoding other than chunked alone"),
        }
    }

    /// Whether another message may follow: HTTP/1.1 unless `close`, HTTP/1.0 with `keep-alive`.
    pub(crate) fn keep_alive(&self, http11: bool) -> bool {
        !self.close && (http11 || self.keep_alive_token)
    }
}

/// Digits only: no sign, no whitespace, no lists (`5, 5`) that parsers read differently.
fn content_length(v: &[u8]) -> Result<u64, Refusal> {
    if v.is_empty() || v.len() > MAX_LENGTH_DIGITS || !v.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::Malformed("malformed Content-Length"));
    }
    Ok(v.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// What one [`Chunked::decode`] call found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    /// Bytes of the input consumed (framing and data).
    pub used: usize,
    /// The chunk data among them, as a range of the input (empty if none).
    pub data: Range<usize>,
    /// The body ended with the last byte consumed.
    pub done: bool,
}

/// A chunked body (RFC 9112 §7.1), decoded byte by byte so reads may split it anywhere.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: Chunk,
    extension_bytes: usize,
    trailer_bytes: usize,
    trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` read so far).
    Size {
        digits: u8,
        size: u64,
    },
    /// Inside `;name[=value]` after a chunk size.
    Extension {
        size: u64,
        part: Ext,
    },
    /// The LF after a chunk-size line.
    SizeLf {
        size: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// The start of a trailer field line, or of the empty line that ends the body.
    LineStart,
    /// Inside a trailer field line.
    Trailer {
        in_name: bool,
    },
    TrailerLf,
    EndLf,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Right after `;`: a name must start.
    NameStart,
    Name,
    /// Right after `=`: a token or a quoted string must start.
    ValueStart,
    Token,
    Quoted,
    QuotedEscape,
    /// After the closing quote.
    QuotedEnd,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: Chunk::Size { digits: 0, size: 0 },
            extension_bytes: 0,
            trailer_bytes: 0,
            trailers: 0,
        }
    }
}

impl Chunked {
    /// Consumes framing bytes of `buf` up to and including the first run of chunk data, or to
    /// the end of the body, or to the end of `buf`.
    pub(crate) fn decode(&mut self, buf: &[u8]) -> Result<Decoded, Refusal> {
        let mut i = 0;
        while i < buf.len() {
            if let Chunk::Data(left) = self.state {
                let take = left.min((buf.len() - i) as u64) as usize;
                self.state = if take as u64 == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take as u64)
                };
                return Ok(Decoded {
                    used: i + take,
                    data: i..i + take,
                    done: false,
                });
            }
            self.state = self.step(buf[i])?;
            i += 1;
            if self.state == Chunk::Done {
                return Ok(Decoded {
                    used: i,
                    data: i..i,
                    done: true,
                });
            }
        }
        Ok(Decoded {
            used: i,
            data: i..i,
            done: self.state == Chunk::Done,
        })
    }

    fn step(&mut self, b: u8) -> Result<Chunk, Refusal> {
        const BAD_SIZE: Refusal = Refusal::Malformed("malformed chunk size line");
        const BAD_TRAILER: Refusal = Refusal::Malformed("malformed trailer field");
        let next = match self.state {
            Chunk::Size { digits, size } => match (hex(b), b) {
                (Some(d), _) if digits < MAX_CHUNK_SIZE_DIGITS => Chunk::Size {
                    digits: digits + 1,
                    size: size << 4 | d,
                },
                (None, b';') if digits > 0 => Chunk::Extension {
                    size,
                    part: Ext::NameStart,
                },
                (None, b'\r') if digits > 0 => Chunk::SizeLf { size },
                _ => return Err(BAD_SIZE),
            },
            Chunk::Extension { size, part } => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSIONS {
                    return Err(Refusal::Malformed("chunk extensions over 1 KiB"));
                }
                match extension(part, b) {
                    Some(part) => Chunk::Extension { size, part },
                    None if b == b'\r'
                        && matches!(part, Ext::Name | Ext::Token | Ext::QuotedEnd) =>
                    {
                        Chunk::SizeLf { size }
                    }
                    None => return Err(Refusal::Malformed("malformed chunk extension")),
                }
            }
            Chunk::SizeLf { size } => match b {
                b'\n' if size == 0 => Chunk::LineStart,
                b'\n' => Chunk::Data(size),
                _ => return Err(BAD_SIZE),
            },
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size { digits: 0, size: 0 },
            Chunk::DataCr | Chunk::DataLf => {
                return Err(Refusal::Malformed("chunk data not followed by CRLF"))
            }
            Chunk::LineStart => match b {
                b'\r' => Chunk::EndLf,
                _ if is_tchar(b) => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(Refusal::Malformed("more than 32 trailer fields"));
                    }
                    self.trailer_byte()?;
                    Chunk::Trailer { in_name: true }
                }
                _ => return Err(BAD_TRAILER),
            },
            Chunk::Trailer { in_name } => {
                self.trailer_byte()?;
                match (in_name, b) {
                    (true, b':') => Chunk::Trailer { in_name: false },
                    (true, _) if is_tchar(b) => Chunk::Trailer { in_name: true },
                    (false, b'\r') => Chunk::TrailerLf,
                    (false, _) if is_field_value_byte(b) => Chunk::Trailer { in_name: false },
                    _ => return Err(BAD_TRAILER),
                }
            }
            Chunk::TrailerLf if b == b'\n' => {
                self.trailer_byte()?;
                Chunk::LineStart
            }
            Chunk::EndLf if b == b'\n' => Chunk::Done,
            Chunk::TrailerLf | Chunk::EndLf => return Err(BAD_TRAILER),
            // `decode` never steps through data or past the end.
            Chunk::Data(_) | Chunk::Done => return Err(BAD_SIZE),
        };
        Ok(next)
    }

    fn trailer_byte(&mut self) -> Result<(), Refusal> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(Refusal::Malformed("trailer section over 8 KiB"));
        }
        Ok(())
    }
}

/// The next part of a chunk extension after byte `b`, or `None` where `b` cannot continue it.
fn extension(part: Ext, b: u8) -> Option<Ext> {
    Some(match (part, b) {
        (Ext::NameStart | Ext::Name, _) if is_tchar(b) => Ext::Name,
        (Ext::Name, b'=') => Ext::ValueStart,
        (Ext::Name | Ext::Token | Ext::QuotedEnd, b';') => Ext::NameStart,
        (Ext::ValueStart, b'"') => Ext::Quoted,
        (Ext::ValueStart | Ext::Token, _) if is_tchar(b) => Ext::Token,
        (Ext::Quoted, b'"') => Ext::QuotedEnd,
        (Ext::Quoted, b'\\') => Ext::QuotedEscape,
        (Ext::Quoted, _) if is_qdtext(b) => Ext::Quoted,
        (Ext::QuotedEscape, _) if b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80 => {
            Ext::Quoted
        }
        _ => return None,
    })
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

fn is_visible_ascii(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// RFC 9110 §5.6.2 tchar.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.5 field-vchar, SP and HTAB.
fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80
}

/// RFC 9110 §5.6.4 qdtext.
fn is_qdtext(b: u8) -> bool {
    b == b'\t'
        || b == b' '
        || b == 0x21
        || (0x23..=0x5b).contains(&b)
        || (0x5d..=0x7e).contains(&b)
        || b >= 0x80
}

/// Where a request's body stands: the one body decoder, used by a connection
/// (`http1::body::BodyReader`) and by [`Requests`].
#[derive(Debug, Clone)]
pub(crate) enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Done,
}

impl BodyState {
    pub(crate) fn new(body: Body) -> Self {
        match body {
            Body::Length(0) => BodyState::Done,
            Body::Length(n) => BodyState::Length(n),
            Body::Chunked => BodyState::Chunked(Chunked::default()),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyState::Done)
    }

    /// Consumes the body bytes at the start of `buf`, up to and including the first run of
    /// data (a Content-Length body is all data).
    pub(crate) fn take(&mut self, buf: &[u8]) -> Result<Decoded, Refusal> {
        let step = match self {
            BodyState::Done => Decoded {
                used: 0,
                data: 0..0,
                done: true,
            },
            BodyState::Length(left) => {
                let take = (*left).min(buf.len() as u64);
                *left -= take;
                Decoded {
                    used: take as usize,
                    data: 0..take as usize,
                    done: *left == 0,
                }
            }
            BodyState::Chunked(chunked) => chunked.decode(buf)?,
        };
        if step.done {
            *self = BodyState::Done;
        }
        Ok(step)
    }
}

/// One connection's requests in arrival order, fed as bytes arrive: the framing decision
/// applied to a stream. What the bytes were is reported to `on` as [`Event`]s.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    state: State,
    /// A head that spans reads (bodies are never copied).
    head: Vec<u8>,
    scan: HeadScan,
    /// The index of the request being read (0-based).
    index: u64,
    /// Bytes fed so far: event positions count from the stream's first byte.
    fed: u64,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Head,
    Body {
        body: BodyState,
        keep_alive: bool,
    },
    /// The last request asked to close: later bytes belong to no request.
    Closed,
    Refused,
}

/// What [`Requests::feed`] found, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Request `index` has a complete head of `len` bytes from stream position `at`, framed
    /// as `framing`.
    Head {
        index: u64,
        at: u64,
        len: usize,
        framing: Framing,
    },
    /// `len` bytes of body data of the current request, from stream position `at`.
    Data { at: u64, len: usize },
    /// Request `index` ended; its last byte is just before stream position `at`.
    End { index: u64, at: u64 },
    /// The stream was refused while reading request `index`; nothing after it is a request.
    Refused { index: u64, refusal: Refusal },
    /// The stream ended by `Connection: close`; `len` bytes were fed after it.
    AfterClose(usize),
}

impl Requests {
    pub(crate) fn feed(&mut self, mut data: &[u8], on: &mut impl FnMut(Event)) {
        while !data.is_empty() {
            let at = self.fed;
            let used = match &mut self.state {
                State::Refused => return,
                State::Closed => {
                    on(Event::AfterClose(data.len()));
                    return;
                }
                State::Head => match self.take_head(data) {
                    Ok(Some((used, len, framing))) => {
                        on(Event::Head {
                            index: self.index,
                            at: at + used as u64 - len as u64,
                            len,
                            framing,
                        });
                        let body = BodyState::new(framing.body);
                        self.state = match body.is_done() {
                            true => self.end(framing.keep_alive, at + used as u64, on),
                            false => State::Body {
                                body,
                                keep_alive: framing.keep_alive,
                            },
                        };
                        used
                    }
                    Ok(None) => data.len(),
                    Err(refusal) => return self.refuse(refusal, on),
                },
                State::Body { body, keep_alive } => match body.take(data) {
                    Ok(step) => {
                        if !step.data.is_empty() {
                            on(Event::Data {
                                at: at + step.data.start as u64,
                                len: step.data.len(),
                            });
                        }
                        if step.done {
                            let keep_alive = *keep_alive;
                            self.state = self.end(keep_alive, at + step.used as u64, on);
                        }
                        step.used
                    }
                    Err(refusal) => return self.refuse(refusal, on),
                },
            };
            self.fed += used as u64;
            data = &data[used..];
        }
    }

    /// The bytes of `data` a head used, its length and its framing, once it is complete.
    fn take_head(&mut self, data: &[u8]) -> Result<Option<(usize, usize, Framing)>, Refusal> {
        let already = self.head.len();
        let (buf, len) = if already == 0 {
            match self.scan.advance(data)? {
                Some(len) => (data, len),
                None => {
                    self.head.extend_from_slice(data);
                    return Ok(None);
                }
            }
        } else {
            // Never more than the limit allows, so a long stream is not copied whole.
            let room = (MAX_HEAD + 1).saturating_sub(already);
            self.head.extend_from_slice(&data[..data.len().min(room)]);
            match self.scan.advance(&self.head)? {
                Some(len) => (&self.head[..], len),
                None => return Ok(None),
            }
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (_, framing) = parse_head(&buf[..len], &mut headers)?;
        // Not `clear`: a long head's room is not kept for the life of the connection.
        self.head = Vec::new();
        self.scan = HeadScan::default();
        Ok(Some((len - already, len, framing)))
    }

    fn end(&mut self, keep_alive: bool, at: u64, on: &mut impl FnMut(Event)) -> State {
        on(Event::End {
            index: self.index,
            at,
        });
        self.index += 1;
        if keep_alive {
            State::Head
        } else {
            State::Closed
        }
    }

    fn refuse(&mut self, refusal: Refusal, on: &mut impl FnMut(Event)) {
        self.state = State::Refused;
        self.head = Vec::new();
        on(Event::Refused {
            index: self.index,
            refusal,
        });
    }
}

#[cfg(test)]
mod tests;
