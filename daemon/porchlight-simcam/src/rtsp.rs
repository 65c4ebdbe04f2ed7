//! RTSP/1.0 (RFC 2326) message framing: parsing requests and interleaved
//! data from the connection's read buffer, and formatting responses.

use std::fmt::Write as _;

/// Largest accepted request head (request line plus headers).
pub(crate) const MAX_HEAD_LEN: usize = 8 * 1024;
/// Largest accepted request body (e.g. `GET_PARAMETER` parameter lists).
pub(crate) const MAX_BODY_LEN: usize = 64 * 1024;
/// Most headers accepted in one request.
const MAX_HEADERS: usize = 64;

/// A parsed request head. The body, if any, is skipped.
#[derive(Debug)]
pub(crate) struct Request {
    pub method: String,
    pub uri: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// Returns the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `CSeq` header, echoed in the response.
    pub fn cseq(&self) -> Option<&str> {
        self.header("CSeq")
    }
}

/// One item read from the connection.
#[derive(Debug)]
pub(crate) enum Item {
    /// A complete request; `len` bytes (head and body) were consumed.
    Request { req: Request, len: usize },
    /// Interleaved binary data (`$`); `len` bytes were consumed.
    Interleaved { channel: u8, len: usize },
}

/// Why a request is rejected with `400 Bad Request`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParseError {
    #[error("request head exceeds {MAX_HEAD_LEN} bytes")]
    HeadTooLarge,
    #[error("request body exceeds {MAX_BODY_LEN} bytes")]
    BodyTooLarge,
    #[error("request head is not UTF-8")]
    NotUtf8,
    #[error("malformed request line")]
    BadRequestLine,
    #[error("unsupported protocol version {0:?}")]
    BadVersion(String),
    #[error("malformed header line")]
    BadHeader,
    #[error("too many headers")]
    TooManyHeaders,
    #[error("bad Content-Length")]
    BadContentLength,
}

/// A parse failure together with the `CSeq`, when it could be recovered,
/// so the `400` response can still be matched by the client.
#[derive(Debug)]
pub(crate) struct BadRequest {
    pub error: ParseError,
    pub cseq: Option<String>,
}

/// Tries to parse one item from the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed. On error, the connection
/// can't be resynchronized and should be closed after replying `400`.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<Item>, BadRequest> {
    let bad = |error| BadRequest { error, cseq: None };
    // Tolerate blank lines between requests (RFC 2326 section 4 allows CRLF keepalives).
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let rest = &buf[skip..];
    if rest.is_empty() {
        return Ok(None);
    }
    if rest[0] == b'$' {
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = 4 + usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if rest.len() < len {
            return Ok(None);
        }
        return Ok(Some(Item::Interleaved {
            channel: rest[1],
            len: skip + len,
        }));
    }
    let limit = rest.len().min(MAX_HEAD_LEN);
    let Some(head_len) = find_head_end(&rest[..limit]) else {
        return if rest.len() >= MAX_HEAD_LEN {
            Err(bad(ParseError::HeadTooLarge))
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&rest[..head_len]).map_err(|_| bad(ParseError::NotUtf8))?;
    let (req, content_length) = parse_head(head)?;
    if content_length > MAX_BODY_LEN {
        return Err(BadRequest {
            error: ParseError::BodyTooLarge,
            cseq: req.cseq().map(str::to_owned),
        });
    }
    let total = skip + head_len + content_length;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(Item::Request { req, len: total }))
}

/// Returns the length of the head including its terminating blank line.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn parse_head(head: &str) -> Result<(Request, usize), BadRequest> {
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest {
            error: ParseError::BadRequestLine,
            cseq: None,
        });
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut error = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // Obsolete line folding: continues the previous header's value.
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                None => {
                    error = Some(ParseError::BadHeader);
                    break;
                }
            }
        }
        let Some((name, value)) = line.split_once(':') else {
            error = Some(ParseError::BadHeader);
            break;
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_char) {
            error = Some(ParseError::BadHeader);
            break;
        }
        if headers.len() == MAX_HEADERS {
            error = Some(ParseError::TooManyHeaders);
            break;
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let req = Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
        headers,
    };
    let fail = |error| BadRequest {
        error,
        cseq: req.cseq().map(str::to_owned),
    };
    if let Some(e) = error {
        return Err(fail(e));
    }
    if !method.bytes().all(is_token_char) {
        return Err(fail(ParseError::BadRequestLine));
    }
    if version != "RTSP/1.0" && version != "RTSP/1.1" {
        return Err(fail(ParseError::BadVersion(
            version.chars().take(32).collect(),
        )));
    }
    let content_length = match req.header("Content-Length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| fail(ParseError::BadContentLength))?,
    };
    Ok((req, content_length))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The reason phrase for the status codes this server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

/// A response under construction.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    /// A response with the given status and no headers.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(mut self, content_type: &'static str, body: Vec<u8>) -> Self {
        self.headers.push(("Content-Type", content_type.to_owned()));
        self.body = body;
        self
    }

    /// Serializes the response, echoing `cseq` if known.
    pub fn to_bytes(&self, cseq: Option<&str>) -> Vec<u8> {
        let mut s = String::with_capacity(256);
        let _ = write!(s, "RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(c) = cseq {
            let _ = write!(s, "CSeq: {}\r\n", sanitize(c));
        }
        s.push_str("Server: porchlight-simcam\r\n");
        for (n, v) in &self.headers {
            let _ = write!(s, "{n}: {}\r\n", sanitize(v));
        }
        if !self.body.is_empty() {
            let _ = write!(s, "Content-Length: {}\r\n", self.body.len());
        }
        s.push_str("\r\n");
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Strips CR/LF so echoed values can't inject headers.
fn sanitize(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\r', '\n']) {
        v.replace(['\r', '\n'], "").into()
    } else {
        v.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buf: &[u8]) -> (Request, usize) {
        match parse(buf) {
            Ok(Some(Item::Request { req, len })) => (req, len),
            o => panic!("unexpected {o:?}"),
        }
    }

    #[test]
    fn parses_request_with_body() {
        let buf = b"GET_PARAMETER rtsp://h/cam0 RTSP/1.0\r\nCSeq: 7\r\ncontent-length: 4\r\nSession:  abc \r\n\r\nbodyOPTIONS";
        let (r, len) = req(buf);
        assert_eq!(r.method, "GET_PARAMETER");
        assert_eq!(r.uri, "rtsp://h/cam0");
        assert_eq!(r.cseq(), Some("7"));
        assert_eq!(r.header("session"), Some("abc"));
        assert_eq!(&buf[len..], b"OPTIONS");
    }

    #[test]
    fn incomplete_inputs() {
        assert!(matches!(parse(b""), Ok(None)));
        assert!(matches!(parse(b"\r\n"), Ok(None)));
        assert!(matches!(
            parse(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n"),
            Ok(None)
        ));
        assert!(matches!(
            parse(b"SET_PARAMETER * RTSP/1.0\r\nContent-Length: 10\r\n\r\nabc"),
            Ok(None)
        ));
        assert!(matches!(parse(b"$\x01\x00"), Ok(None)));
        assert!(matches!(parse(b"$\x01\x00\x05abc"), Ok(None)));
    }

    #[test]
    fn interleaved() {
        match parse(b"\r\n$\x01\x00\x02abX") {
            Ok(Some(Item::Interleaved { channel: 1, len: 8 })) => {}
            o => panic!("unexpected {o:?}"),
        }
    }

    #[test]
    fn bare_lf_and_blank_lines() {
        let (r, len) = req(b"\r\nOPTIONS * RTSP/1.0\nCSeq: 2\n\n");
        assert_eq!(r.method, "OPTIONS");
        assert_eq!(r.cseq(), Some("2"));
        assert_eq!(len, 30);
    }

    #[test]
    fn malformed() {
        let cases: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nCSeq: 3\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nNoColonHere\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: 999999999\r\n\r\n",
            b"\xff\xfe\xfd * RTSP/1.0\r\n\r\n",
            b"OPT(IONS * RTSP/1.0\r\n\r\n",
        ];
        for c in cases {
            assert!(parse(c).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
        let e = parse(b"OPTIONS * HTTP/1.1\r\nCSeq: 3\r\n\r\n").unwrap_err();
        assert_eq!(e.cseq.as_deref(), Some("3"));
        let long = vec![b'A'; MAX_HEAD_LEN + 1];
        assert!(matches!(
            parse(&long),
            Err(BadRequest {
                error: ParseError::HeadTooLarge,
                ..
            })
        ));
    }

    #[test]
    fn response_format() {
        let r = Response::new(200)
            .header("Session", "x\r\nEvil: 1")
            .body("application/sdp", b"v=0\r\n".to_vec());
        let s = String::from_utf8(r.to_bytes(Some("5"))).unwrap();
        assert!(s.starts_with("RTSP/1.0 200 OK\r\nCSeq: 5\r\n"));
        assert!(s.contains("Session: xEvil: 1\r\n"));
        assert!(s.contains("Content-Length: 5\r\n"));
        assert!(s.ends_with("\r\n\r\nv=0\r\n"));
    }
}
