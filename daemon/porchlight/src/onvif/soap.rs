//! SOAP 1.2 for ONVIF: the envelope, the WS-Security UsernameToken (with
//! the camera's clock), and SOAP faults sorted into wrong credentials,
//! unsupported operation, or anything else.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use time::OffsetDateTime;

use super::error::ErrorKind;
use super::http::Response;
use super::xml::{self, Element};

pub const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const NS_WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const PASSWORD_DIGEST: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
pub const NONCE_BASE64: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-soap-message-security-1.0#Base64Binary";
pub const NS_SCHEMA: &str = "http://www.onvif.org/ver10/schema";
pub const NS_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
pub const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
pub const NS_MEDIA2: &str = "http://www.onvif.org/ver20/media/wsdl";
pub const NS_EVENTS: &str = "http://www.onvif.org/ver10/events/wsdl";
pub const NS_ERROR: &str = "http://www.onvif.org/ver10/error";
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";
pub const NS_WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
pub const NS_TOPICS: &str = "http://www.onvif.org/ver10/topics";

/// A WS-Security UsernameToken with a PasswordDigest:
/// `Base64(SHA-1(nonce + created + password))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    /// Base64 of the raw nonce.
    pub nonce: String,
    /// `wsu:Created`, in the camera's idea of UTC.
    pub created: String,
    pub digest: String,
}

impl UsernameToken {
    /// A fresh token; `camera_now` is the local clock plus the camera's offset.
    pub fn new(username: &str, password: &str, camera_now: OffsetDateTime) -> UsernameToken {
        let nonce: [u8; 16] = rand::random();
        Self::with_nonce(username, password, &nonce, camera_now)
    }

    pub fn with_nonce(
        username: &str,
        password: &str,
        nonce: &[u8],
        camera_now: OffsetDateTime,
    ) -> UsernameToken {
        let created = format_created(camera_now);
        UsernameToken {
            username: username.to_string(),
            nonce: base64::engine::general_purpose::STANDARD.encode(nonce),
            digest: password_digest(nonce, &created, password),
            created,
        }
    }

    /// The `<Security>` header block.
    pub fn header_xml(&self) -> String {
        format!(
            concat!(
                "<wsse:Security s:mustUnderstand=\"1\" xmlns:wsse=\"{wsse}\" xmlns:wsu=\"{wsu}\">",
                "<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>",
                "<wsse:Password Type=\"{pd}\">{digest}</wsse:Password>",
                "<wsse:Nonce EncodingType=\"{nb}\">{nonce}</wsse:Nonce>",
                "<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
            ),
            wsse = NS_WSSE,
            wsu = NS_WSU,
            user = xml::escape(&self.username),
            pd = PASSWORD_DIGEST,
            digest = self.digest,
            nb = NONCE_BASE64,
            nonce = self.nonce,
            created = self.created,
        )
    }
}

/// `Base64(SHA-1(nonce + created + password))` (WS-Security UsernameToken Profile 1.0).
pub fn password_digest(nonce: &[u8], created: &str, password: &str) -> String {
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// `2026-11-23T21:04:05.123Z`.
pub fn format_created(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A SOAP 1.2 envelope around `body` (one operation element, with its own
/// `xmlns`), with a Security header when a token is given.
pub fn envelope(body: &str, token: Option<&UsernameToken>) -> String {
    envelope_with_headers(body, token, "")
}

/// Like [`envelope`], with more header blocks (already XML, each with its
/// own `xmlns`) after the Security header.
pub fn envelope_with_headers(body: &str, token: Option<&UsernameToken>, extra: &str) -> String {
    let mut header = token.map(UsernameToken::header_xml).unwrap_or_default();
    header.push_str(extra);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"{NS_SOAP12}\" xmlns:tt=\"{NS_SCHEMA}\"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    )
}

/// A SOAP fault, as the camera sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `Sender`, `Receiver`, ... (local part).
    pub code: String,
    /// Subcode chain, local parts (`NotAuthorized`, `ActionNotSupported`).
    pub subcodes: Vec<String>,
    pub reason: String,
}

impl Fault {
    /// Reads `Fault` (SOAP 1.2, or SOAP 1.1's `faultcode`/`faultstring`).
    pub fn from_element(fault: &Element) -> Fault {
        if let Some(code) = fault.child("Code") {
            let mut subcodes = Vec::new();
            let mut next = code.child("Subcode");
            while let Some(sub) = next {
                if let Some(v) = sub.child("Value") {
                    subcodes.push(v.text_local().to_string());
                }
                next = sub.child("Subcode");
                if subcodes.len() > 16 {
                    break;
                }
            }
            let reason = fault
                .child("Reason")
                .map(|r| {
                    r.children_named("Text")
                        .map(|t| t.text.as_str())
                        .find(|t| !t.is_empty())
                        .unwrap_or(r.text.as_str())
                        .to_string()
                })
                .unwrap_or_default();
            Fault {
                code: code
                    .child("Value")
                    .map(|v| v.text_local().to_string())
                    .unwrap_or_default(),
                subcodes,
                reason,
            }
        } else {
            // SOAP 1.1 shape, still seen on old firmware.
            Fault {
                code: fault
                    .child("faultcode")
                    .map(|c| c.text_local().to_string())
                    .unwrap_or_default(),
                subcodes: Vec::new(),
                reason: fault
                    .text_at(&["faultstring"])
                    .unwrap_or_default()
                    .to_string(),
            }
        }
    }

    fn has(&self, names: &[&str]) -> bool {
        self.subcodes
            .iter()
            .chain(std::iter::once(&self.code))
            .any(|s| names.iter().any(|n| s.eq_ignore_ascii_case(n)))
    }

    /// Sorts the fault into the client's error kinds.
    pub fn into_error(self) -> ErrorKind {
        let detail = self.describe();
        if self.has(&[
            "NotAuthorized",
            "FailedAuthentication",
            "InvalidSecurityToken",
        ]) {
            ErrorKind::WrongCredentials(detail)
        } else if self.has(&[
            "ActionNotSupported",
            "OptionalActionNotImplemented",
            "NotImplemented",
        ]) {
            ErrorKind::Unsupported(detail)
        } else {
            ErrorKind::Fault {
                code: self.code,
                subcodes: self.subcodes,
                reason: self.reason,
            }
        }
    }

    fn describe(&self) -> String {
        let mut s = self.subcodes.last().unwrap_or(&self.code).clone();
        if !self.reason.is_empty() {
            s.push_str(": ");
            s.push_str(&self.reason);
        }
        s
    }
}

/// The element inside `<Body>` of a parsed envelope.
pub fn body_content(envelope: &Element) -> Result<&Element, ErrorKind> {
    if envelope.name != "Envelope" {
        return Err(ErrorKind::Unexpected(format!(
            "<{}> instead of a SOAP Envelope",
            envelope.name
        )));
    }
    let body = envelope
        .child("Body")
        .ok_or_else(|| ErrorKind::Unexpected("SOAP Envelope without a Body".into()))?;
    body.children
        .first()
        .ok_or_else(|| ErrorKind::Unexpected("empty SOAP Body".into()))
}

/// Turns an HTTP answer into the parsed envelope, or the right error: a SOAP
/// fault (whatever the status), 400/404 without fault as unsupported, any
/// other non-2xx as an HTTP error.
pub fn check_response(response: &Response) -> Result<Element, ErrorKind> {
    let parsed = xml::parse(&response.body);
    if let Ok(envelope) = &parsed {
        if let Ok(content) = body_content(envelope) {
            if content.name == "Fault" {
                return Err(Fault::from_element(content).into_error());
            }
        }
    }
    match response.status {
        200..=299 => {
            let envelope = parsed?;
            body_content(&envelope)?;
            Ok(envelope)
        }
        400 | 404 | 405 | 501 => Err(ErrorKind::Unsupported(format!(
            "HTTP {} {}",
            response.status, response.reason
        ))),
        status => Err(ErrorKind::Http {
            status,
            reason: response.reason.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let p = format!(
            "{}/../../tests/data/onvif/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// SHA-1 over nonce + created + password, then Base64.
    #[test]
    fn password_digest_formula() {
        // SHA-1 over the concatenation, then Base64 (28 characters).
        let nonce = b"0123456789abcdef";
        let d = password_digest(nonce, "2026-01-02T03:04:05.000Z", "secret");
        let mut h = Sha1::new();
        h.update(b"0123456789abcdef2026-01-02T03:04:05.000Zsecret");
        assert_eq!(
            d,
            base64::engine::general_purpose::STANDARD.encode(h.finalize())
        );
        assert_eq!(d.len(), 28);
        // printf '%s' 0123456789abcdef2026-01-02T03:04:05.000Zsecret | openssl sha1 -binary | base64
        assert_eq!(d, "wheiIw8a4kiHDg8urloxFjSm3Dk=");
    }

    #[test]
    fn token_uses_the_camera_clock() {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
            + time::Duration::milliseconds(42);
        let tok = UsernameToken::with_nonce("admin", "pw", b"n", t);
        assert_eq!(tok.created, "2026-09-21T14:13:20.042Z");
        assert_eq!(tok.nonce, "bg==");
        assert_eq!(tok.digest, password_digest(b"n", &tok.created, "pw"));
        let env = envelope("<GetProfiles xmlns=\"x\"/>", Some(&tok));
        let doc = xml::parse(env.as_bytes()).unwrap();
        let ut = doc.path(&["Header", "Security", "UsernameToken"]).unwrap();
        assert_eq!(ut.text_at(&["Username"]), Some("admin"));
        assert_eq!(
            ut.child("Password").unwrap().attr("Type"),
            Some(PASSWORD_DIGEST)
        );
        assert_eq!(body_content(&doc).unwrap().name, "GetProfiles");
    }

    #[test]
    fn faults_from_real_cameras() {
        // ex_onvif: a fault with a two-level subcode and ter:Fault detail.
        let doc = xml::parse(&fixture("ex_onvif/soap_fault.xml")).unwrap();
        let f = Fault::from_element(body_content(&doc).unwrap());
        assert_eq!(f.code, "Sender");
        assert_eq!(f.subcodes, ["InvalidArgVal", "NoProfile"]);
        assert_eq!(f.reason, "Argument Value Invalid");
        assert!(matches!(f.into_error(), ErrorKind::Fault { .. }));
        // agsh/onvif: typographic quotes in the declaration, undeclared
        // SOAP-ENV prefix, whitespace around values: still read.
        let doc = xml::parse(&fixture("agsh-onvif/Error.xml")).unwrap();
        let f = Fault::from_element(body_content(&doc).unwrap());
        assert_eq!(f.code, "fault code");
        assert_eq!(f.subcodes, ["fault subcode", "fault subcode"]);
        assert_eq!(f.reason, "fault reason");
    }

    fn fault_response(status: u16, subcode: &str) -> Response {
        let body = format!(
            r#"<?xml version="1.0"?><e:Envelope xmlns:e="{NS_SOAP12}" xmlns:ter="{NS_ERROR}"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>{subcode}</e:Value></e:Subcode></e:Code><e:Reason><e:Text xml:lang="en">Sender not Authorized</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>"#
        );
        Response {
            status,
            reason: "x".into(),
            headers: vec![],
            body: body.into_bytes(),
        }
    }

    #[test]
    fn faults_are_sorted() {
        let e = check_response(&fault_response(400, "ter:NotAuthorized")).unwrap_err();
        assert!(matches!(e, ErrorKind::WrongCredentials(_)), "{e}");
        assert!(e.to_string().contains("NotAuthorized"), "{e}");
        let e = check_response(&fault_response(500, "ter:ActionNotSupported")).unwrap_err();
        assert!(matches!(e, ErrorKind::Unsupported(_)), "{e}");
        let e =
            check_response(&fault_response(200, "ter:OptionalActionNotImplemented")).unwrap_err();
        assert!(matches!(e, ErrorKind::Unsupported(_)), "{e}");
        let e = check_response(&fault_response(500, "ter:InvalidArgVal")).unwrap_err();
        assert!(matches!(e, ErrorKind::Fault { .. }), "{e}");
        let plain = |status| Response {
            status,
            reason: "R".into(),
            headers: vec![],
            body: b"<html>no</html>".to_vec(),
        };
        assert!(matches!(
            check_response(&plain(404)),
            Err(ErrorKind::Unsupported(_))
        ));
        assert!(matches!(
            check_response(&plain(400)),
            Err(ErrorKind::Unsupported(_))
        ));
        assert!(matches!(
            check_response(&plain(503)),
            Err(ErrorKind::Http { status: 503, .. })
        ));
        assert!(matches!(
            check_response(&plain(200)),
            Err(ErrorKind::Unexpected(_))
        ));
    }

    #[test]
    fn soap11_fault() {
        let r = Response {
            status: 500,
            reason: "x".into(),
            headers: vec![],
            body: br#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Client</faultcode><faultstring>bad</faultstring></S:Fault></S:Body></S:Envelope>"#.to_vec(),
        };
        match check_response(&r).unwrap_err() {
            ErrorKind::Fault { code, reason, .. } => {
                assert_eq!((code.as_str(), reason.as_str()), ("Client", "bad"))
            }
            e => panic!("{e}"),
        }
    }
}
