//! HTTP-style authentication for RTSP requests: `Basic` and `Digest`
//! (RFC 2617, MD5, with or without `qop=auth`).

use base64::Engine as _;
use md5::{Digest as _, Md5};

/// Which authentication scheme the simulated camera demands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScheme {
    /// `Authorization: Basic base64(user:pass)`.
    Basic,
    /// RFC 2617 Digest with MD5; the challenge offers `qop="auth"` and
    /// responses with or without qop are accepted.
    Digest,
}

/// Credentials a simulated camera requires of its clients.
/// (`Debug` redacts the password.)
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The only accepted user name.
    pub username: String,
    /// That user's password.
    pub password: String,
    /// The scheme challenged for and accepted.
    pub scheme: AuthScheme,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("scheme", &self.scheme)
            .finish()
    }
}

/// Realm sent in challenges.
pub(crate) const REALM: &str = "Porchlight SimCam";

/// Outcome of checking a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Credentials are valid.
    Ok,
    /// No (usable) credentials were sent; challenge without counting a failure.
    Missing,
    /// Credentials were sent and are wrong.
    Wrong,
}

/// Returns a fresh random nonce (128 bits, hex).
pub(crate) fn new_nonce() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Auth {
    /// The `WWW-Authenticate` header value for a 401 response.
    pub(crate) fn challenge(&self, nonce: &str) -> String {
        match self.scheme {
            AuthScheme::Basic => format!("Basic realm=\"{REALM}\""),
            AuthScheme::Digest => {
                format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"")
            }
        }
    }

    /// Checks an `Authorization` header value for a request with `method`,
    /// against the `nonce` this connection issued.
    pub(crate) fn verify(&self, header: Option<&str>, method: &str, nonce: &str) -> Verdict {
        let Some(header) = header else {
            return Verdict::Missing;
        };
        let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        match self.scheme {
            AuthScheme::Basic if scheme.eq_ignore_ascii_case("Basic") => self.verify_basic(rest),
            AuthScheme::Digest if scheme.eq_ignore_ascii_case("Digest") => {
                self.verify_digest(rest, method, nonce)
            }
            // A different scheme than the one challenged: treat as wrong
            // credentials, since the client chose to send something.
            _ => Verdict::Wrong,
        }
    }

    fn verify_basic(&self, token: &str) -> Verdict {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(token.trim()) else {
            return Verdict::Wrong;
        };
        let expected = format!("{}:{}", self.username, self.password);
        if constant_time_eq(&decoded, expected.as_bytes()) {
            Verdict::Ok
        } else {
            Verdict::Wrong
        }
    }

    fn verify_digest(&self, params: &str, method: &str, nonce: &str) -> Verdict {
        let params = parse_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        let (Some(username), Some(realm), Some(got_nonce), Some(uri), Some(response)) = (
            get("username"),
            get("realm"),
            get("nonce"),
            get("uri"),
            get("response"),
        ) else {
            return Verdict::Wrong;
        };
        if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
            return Verdict::Wrong;
        }
        if username != self.username || realm != REALM || got_nonce != nonce {
            return Verdict::Wrong;
        }
        let expected = match get("qop") {
            None => digest_response(&self.username, &self.password, method, uri, nonce, None),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (get("nc"), get("cnonce")) else {
                    return Verdict::Wrong;
                };
                digest_response(
                    &self.username,
                    &self.password,
                    method,
                    uri,
                    nonce,
                    Some((nc, cnonce, q)),
                )
            }
            Some(_) => return Verdict::Wrong,
        };
        if constant_time_eq(
            expected.as_bytes(),
            response.to_ascii_lowercase().as_bytes(),
        ) {
            Verdict::Ok
        } else {
            Verdict::Wrong
        }
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Computes the RFC 2617 `request-digest` (lowercase hex).
/// `qop` is `(nc, cnonce, qop)` when the client used quality of protection.
fn digest_response(
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha1 = md5_hex(&[username, REALM, password]);
    let ha2 = md5_hex(&[method, uri]);
    match qop {
        None => md5_hex(&[&ha1, nonce, &ha2]),
        Some((nc, cnonce, qop)) => md5_hex(&[&ha1, nonce, nc, cnonce, qop, &ha2]),
    }
}

/// Parses `k=v, k="quoted, v"` auth-params. Malformed pieces are skipped.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek().is_none() && key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            if chars.peek().is_none() {
                break;
            }
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
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
            value = value.trim().to_owned();
        }
        out.push((key.trim().to_owned(), value));
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(scheme: AuthScheme) -> Auth {
        Auth {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
            scheme,
        }
    }

    #[test]
    fn rfc2617_vector() {
        // RFC 2617 section 3.5, with its realm: check the formula via md5_hex directly.
        let ha1 = md5_hex(&["Mufasa", "testrealm@host.com", "Circle Of Life"]);
        let ha2 = md5_hex(&["GET", "/dir/index.html"]);
        let r = md5_hex(&[
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
            &ha2,
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn digest_with_and_without_qop() {
        let a = auth(AuthScheme::Digest);
        let nonce = "abc123";
        let uri = "rtsp://127.0.0.1:554/cam0";
        let r = digest_response("Mufasa", "Circle Of Life", "DESCRIBE", uri, nonce, None);
        let h = format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\""
        );
        assert_eq!(a.verify(Some(&h), "DESCRIBE", nonce), Verdict::Ok);
        assert_eq!(a.verify(Some(&h), "SETUP", nonce), Verdict::Wrong);
        assert_eq!(a.verify(Some(&h), "DESCRIBE", "othernonce"), Verdict::Wrong);

        let r = digest_response(
            "Mufasa",
            "Circle Of Life",
            "PLAY",
            uri,
            nonce,
            Some(("00000002", "xyz", "auth")),
        );
        let h = format!(
            "Digest username=\"Mufasa\",realm=\"{REALM}\",nonce=\"{nonce}\",uri=\"{uri}\",qop=auth,nc=00000002,cnonce=\"xyz\",response=\"{r}\",algorithm=MD5"
        );
        assert_eq!(a.verify(Some(&h), "PLAY", nonce), Verdict::Ok);
        let wrong = h.replace(&r, "00000000000000000000000000000000");
        assert_eq!(a.verify(Some(&wrong), "PLAY", nonce), Verdict::Wrong);
        assert_eq!(a.verify(None, "PLAY", nonce), Verdict::Missing);
        assert_eq!(
            a.verify(Some("Basic TXVmYXNhOkNpcmNsZSBPZiBMaWZl"), "PLAY", nonce),
            Verdict::Wrong
        );
        assert_eq!(
            a.verify(Some("Digest garbage,,=\""), "PLAY", nonce),
            Verdict::Wrong
        );
        assert!(a.challenge(nonce).starts_with("Digest realm="));
    }

    #[test]
    fn basic() {
        let a = auth(AuthScheme::Basic);
        // base64("Mufasa:Circle Of Life")
        let ok = "Basic TXVmYXNhOkNpcmNsZSBPZiBMaWZl";
        assert_eq!(a.verify(Some(ok), "DESCRIBE", ""), Verdict::Ok);
        assert_eq!(a.verify(Some("Basic !!!"), "DESCRIBE", ""), Verdict::Wrong);
        assert_eq!(
            a.verify(Some("Basic Zm9vOmJhcg=="), "DESCRIBE", ""),
            Verdict::Wrong
        );
        assert_eq!(a.challenge("n"), format!("Basic realm=\"{REALM}\""));
    }

    #[test]
    fn param_parsing() {
        let p = parse_params(r#"a=1, b="x, \"y\"" ,c= z ,junk, d="#);
        assert_eq!(
            p,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x, \"y\"".into()),
                ("c".into(), "z".into()),
                ("d".into(), "".into()),
            ]
        );
    }
}
