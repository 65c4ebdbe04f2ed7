//! Just enough HTTP/1.1 for SOAP: one POST per connection over a tokio
//! `TcpStream`, `Content-Length` or chunked answers, a size cap, a time limit
//! on the whole call, and HTTP Digest (RFC 7616: MD5, SHA-256, qop=auth) when
//! the camera answers 401.
//!
//! Plain `http://` only: cameras serve ONVIF over HTTP on the home network;
//! `https://` addresses are refused with a clear error for now.

use std::fmt;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::error::ErrorKind;

/// Default limit for one call, connection and HTTP Digest retry included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on one answer's body.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// A parsed `http://host[:port]/path` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host to connect to (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
    /// What goes in the `Host` header.
    pub authority: String,
}

impl HttpUrl {
    pub fn parse(address: &str) -> Result<HttpUrl, ErrorKind> {
        let url = url::Url::parse(address.trim())
            .map_err(|e| ErrorKind::BadAddress(format!("not a URL ({e}): {address:?}")))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(ErrorKind::BadAddress(format!(
                    "{address}: https:// cameras are not supported yet; use the camera's http:// address"
                )))
            }
            other => {
                return Err(ErrorKind::BadAddress(format!(
                    "{address}: scheme {other}:// is not HTTP"
                )))
            }
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(ErrorKind::BadAddress(format!("{address}: no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host_str = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        Ok(HttpUrl {
            host,
            port,
            path,
            authority,
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// A user name and password; `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// One HTTP answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The HTTP side of the client: limits, no state between calls.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// Limit for one call (connect, send, answer, Digest retry).
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_body: usize,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl HttpClient {
    /// POSTs a SOAP 1.2 envelope. On 401 with a Digest challenge and
    /// credentials, retries once with `Authorization: Digest`; a second 401
    /// is [`ErrorKind::WrongCredentials`]. Other statuses are returned as is.
    pub async fn post_soap(
        &self,
        url: &HttpUrl,
        action: &str,
        envelope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Response, ErrorKind> {
        let call = async {
            let first = self.round_trip(url, action, envelope, None).await?;
            if first.status != 401 {
                return Ok(first);
            }
            let Some(credentials) = credentials else {
                return Err(ErrorKind::WrongCredentials(
                    "HTTP 401: the camera wants a password and none is configured".into(),
                ));
            };
            let Some(challenge) = best_challenge(&first) else {
                return Err(ErrorKind::WrongCredentials(
                    "HTTP 401 without an HTTP Digest challenge".into(),
                ));
            };
            let cnonce = hex(&rand::random::<[u8; 16]>());
            let authorization = challenge.authorization(credentials, "POST", &url.path, &cnonce, 1);
            let second = self
                .round_trip(url, action, envelope, Some(&authorization))
                .await?;
            if second.status == 401 {
                return Err(ErrorKind::WrongCredentials(format!(
                    "HTTP 401 after HTTP Digest ({})",
                    challenge.algorithm.name()
                )));
            }
            Ok(second)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Timeout(self.timeout)),
        }
    }

    async fn round_trip(
        &self,
        url: &HttpUrl,
        action: &str,
        envelope: &str,
        authorization: Option<&str>,
    ) -> Result<Response, ErrorKind> {
        let mut stream = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(ErrorKind::Network)?;
        let _ = stream.set_nodelay(true);
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/soap+xml; charset=utf-8; action=\"{}\"\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: porchlight\r\n",
            url.path,
            url.authority,
            action,
            envelope.len()
        );
        if let Some(auth) = authorization {
            request.push_str("Authorization: ");
            request.push_str(auth);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(envelope);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(ErrorKind::Network)?;
        read_response(BufReader::new(stream), self.max_body).await
    }
}

/// Reads one HTTP/1.1 response (interim 1xx answers skipped).
pub async fn read_response<R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    max_body: usize,
) -> Result<Response, ErrorKind> {
    loop {
        let (status, reason, headers) = read_head(&mut reader).await?;
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        response.body = if chunked {
            read_chunked(&mut reader, max_body).await?
        } else if let Some(length) = response.header("content-length") {
            let length: u64 = length
                .trim()
                .parse()
                .map_err(|_| ErrorKind::Protocol(format!("bad Content-Length {length:?}")))?;
            if length > max_body as u64 {
                return Err(ErrorKind::TooLarge {
                    size: Some(length),
                    limit: max_body,
                });
            }
            let mut body = vec![0; length as usize];
            reader
                .read_exact(&mut body)
                .await
                .map_err(|e| ErrorKind::Protocol(format!("body cut short: {e}")))?;
            body
        } else {
            let mut body = Vec::new();
            (&mut reader)
                .take(max_body as u64 + 1)
                .read_to_end(&mut body)
                .await
                .map_err(ErrorKind::Network)?;
            if body.len() > max_body {
                return Err(ErrorKind::TooLarge {
                    size: None,
                    limit: max_body,
                });
            }
            body
        };
        return Ok(response);
    }
}

type Head = (u16, String, Vec<(String, String)>);

async fn read_head<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Result<Head, ErrorKind> {
    let mut budget = MAX_HEADER_BYTES;
    let status_line = read_line(reader, &mut budget).await?;
    if status_line.is_empty() {
        return Err(ErrorKind::Protocol(
            "the camera closed the connection without answering".into(),
        ));
    }
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ErrorKind::Protocol(format!(
            "not an HTTP/1.x status line: {:?}",
            truncate(&status_line, 80)
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| {
            ErrorKind::Protocol(format!("bad status line {:?}", truncate(&status_line, 80)))
        })?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut budget).await?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ErrorKind::Protocol(format!(
                "bad header line {:?}",
                truncate(&line, 80)
            )));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok((status, reason, headers))
}

/// One CRLF- (or LF-) terminated line without its terminator, within `budget`.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    budget: &mut u64,
) -> Result<String, ErrorKind> {
    let mut line = Vec::new();
    let n = (&mut *reader)
        .take(*budget)
        .read_until(b'\n', &mut line)
        .await
        .map_err(ErrorKind::Network)?;
    *budget -= n as u64;
    if n > 0 && !line.ends_with(b"\n") {
        return Err(if *budget == 0 {
            ErrorKind::Protocol(format!("headers longer than {MAX_HEADER_BYTES} bytes"))
        } else {
            ErrorKind::Protocol("connection closed inside the headers".into())
        });
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| ErrorKind::Protocol("headers are not UTF-8".into()))
}

async fn read_chunked<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max_body: usize,
) -> Result<Vec<u8>, ErrorKind> {
    let mut body = Vec::new();
    let mut budget = MAX_HEADER_BYTES;
    loop {
        let line = read_line(reader, &mut budget).await?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| {
            ErrorKind::Protocol(format!("bad chunk size {:?}", truncate(&line, 40)))
        })?;
        if size == 0 {
            // Trailers, then the empty line (or the end of the stream).
            loop {
                match read_line(reader, &mut budget).await {
                    Ok(l) if !l.is_empty() => continue,
                    _ => return Ok(body),
                }
            }
        }
        if body.len() as u64 + size > max_body as u64 {
            return Err(ErrorKind::TooLarge {
                size: None,
                limit: max_body,
            });
        }
        let start = body.len();
        body.resize(start + size as usize, 0);
        reader
            .read_exact(&mut body[start..])
            .await
            .map_err(|e| ErrorKind::Protocol(format!("chunk cut short: {e}")))?;
        let end = read_line(reader, &mut budget).await?;
        if !end.is_empty() {
            return Err(ErrorKind::Protocol("chunk not followed by CRLF".into()));
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Hash used by an HTTP Digest challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl DigestAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Md5Sess => "MD5-sess",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            DigestAlgorithm::Sha256 | DigestAlgorithm::Sha256Sess => {
                hex(&Sha256::digest(data.as_bytes()))
            }
        }
    }
}

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: DigestAlgorithm,
    /// The server offers `qop=auth` (otherwise RFC 2069 style).
    pub qop_auth: bool,
}

impl DigestChallenge {
    /// Parses one header value; `None` unless it is a usable Digest challenge.
    pub fn parse(header: &str) -> Option<DigestChallenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let params = parse_auth_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let algorithm = match get("algorithm").as_deref().map(str::to_ascii_uppercase) {
            None => DigestAlgorithm::Md5,
            Some(a) => match a.as_str() {
                "MD5" => DigestAlgorithm::Md5,
                "MD5-SESS" => DigestAlgorithm::Md5Sess,
                "SHA-256" => DigestAlgorithm::Sha256,
                "SHA-256-SESS" => DigestAlgorithm::Sha256Sess,
                _ => return None,
            },
        };
        let qop = get("qop");
        let qop_auth = qop
            .as_deref()
            .is_some_and(|q| q.split(',').any(|v| v.trim().eq_ignore_ascii_case("auth")));
        if qop.is_some() && !qop_auth {
            return None; // auth-int only: bodies would have to be hashed; no camera does this.
        }
        Some(DigestChallenge {
            realm: get("realm").unwrap_or_default(),
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
        })
    }

    /// The `response` value (RFC 7616 section 3.4.1).
    pub fn response(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!(
            "{}:{}:{}",
            credentials.username, self.realm, credentials.password
        ));
        if matches!(alg, DigestAlgorithm::Md5Sess | DigestAlgorithm::Sha256Sess) {
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        if self.qop_auth {
            alg.hash(&format!(
                "{ha1}:{}:{nc:08x}:{cnonce}:auth:{ha2}",
                self.nonce
            ))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        }
    }

    /// The whole `Authorization` header value.
    pub fn authorization(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let response = self.response(credentials, method, uri, cnonce, nc);
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}, response=\"{}\"",
            quote(&credentials.username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            self.algorithm.name(),
            response
        );
        if self.qop_auth {
            out.push_str(&format!(", qop=auth, nc={nc:08x}, cnonce=\"{cnonce}\""));
        }
        if let Some(opaque) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        out
    }
}

/// Prefers SHA-256 over MD5 when the camera offers both.
fn best_challenge(response: &Response) -> Option<DigestChallenge> {
    let mut challenges: Vec<_> = response
        .headers_named("www-authenticate")
        .filter_map(DigestChallenge::parse)
        .collect();
    challenges
        .sort_by_key(|c| matches!(c.algorithm, DigestAlgorithm::Md5 | DigestAlgorithm::Md5Sess));
    challenges.into_iter().next()
}

/// `a=b, c="d, e"` → pairs (quoted strings unescaped).
pub fn parse_auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.trim().is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((name.trim().to_string(), value.trim().to_string()));
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa() -> Credentials {
        Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        }
    }

    /// RFC 7616 section 3.9.1, both algorithms.
    #[test]
    fn rfc7616_examples() {
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let header = format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            );
            let c = DigestChallenge::parse(&header).unwrap();
            assert!(c.qop_auth);
            let r = c.response(
                &mufasa(),
                "GET",
                "/dir/index.html",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                1,
            );
            assert_eq!(r, expected, "{alg}");
        }
    }

    #[test]
    fn challenges_that_are_not_usable_digest() {
        assert!(DigestChallenge::parse("Basic realm=\"x\"").is_none());
        assert!(DigestChallenge::parse("Digest realm=\"x\"").is_none()); // no nonce
        assert!(DigestChallenge::parse("Digest nonce=\"n\", algorithm=SHA-512-256").is_none());
        assert!(DigestChallenge::parse("Digest nonce=\"n\", qop=\"auth-int\"").is_none());
        let c = DigestChallenge::parse("digest realm=\"a \\\"b\\\"\",nonce=n1").unwrap();
        assert_eq!(c.realm, "a \"b\"");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.algorithm, DigestAlgorithm::Md5);
        assert!(!c.qop_auth);
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://192.168.1.20/onvif/device_service").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("192.168.1.20", 80, "/onvif/device_service")
        );
        assert_eq!(u.authority, "192.168.1.20");
        let u = HttpUrl::parse("http://[::1]:8080/a?b=c").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 8080, "/a?b=c")
        );
        assert_eq!(u.authority, "[::1]:8080");
        let e = HttpUrl::parse("https://cam/onvif/device_service").unwrap_err();
        assert!(
            e.to_string().contains("https:// cameras are not supported"),
            "{e}"
        );
        assert!(HttpUrl::parse("rtsp://cam/x").is_err());
        assert!(HttpUrl::parse("cam/x").is_err());
    }

    async fn parse_raw(raw: &[u8], max: usize) -> Result<Response, ErrorKind> {
        read_response(BufReader::new(raw), max).await
    }

    #[tokio::test]
    async fn bodies_by_length_chunks_and_eof() {
        let r = parse_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 100)
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = parse_raw(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: 1\r\n\r\n",
            100,
        )
        .await
        .unwrap();
        assert_eq!(
            (r.status, r.reason.as_str(), r.body.as_slice()),
            (500, "Oops", &b"hello"[..])
        );
        let r = parse_raw(b"HTTP/1.0 200 OK\nServer: x\n\nuntil eof", 100)
            .await
            .unwrap();
        assert_eq!(r.body, b"until eof");
        assert_eq!(r.header("SERVER"), Some("x"));
    }

    #[tokio::test]
    async fn size_cap_names_the_size() {
        let e = parse_raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                e,
                ErrorKind::TooLarge {
                    size: Some(2_000_000),
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("2000000 bytes"), "{e}");
        let big = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), &[b'x'; 101]].concat();
        assert!(matches!(
            parse_raw(&big, 100).await,
            Err(ErrorKind::TooLarge { size: None, .. })
        ));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n";
        assert!(matches!(
            parse_raw(chunked, 100).await,
            Err(ErrorKind::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error() {
        for raw in [
            &b""[..],
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nContent-",
        ] {
            assert!(
                parse_raw(raw, 100).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
