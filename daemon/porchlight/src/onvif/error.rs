//! The one error type of the ONVIF client: which camera, which operation,
//! and what went wrong, sorted so callers can react (wrong password, feature
//! missing, camera unreachable) without reading strings.

use std::time::Duration;

use super::xml::XmlError;

/// An ONVIF call failed. Displays as
/// `camera http://192.168.1.20/onvif/device_service: GetProfiles: ...`.
#[derive(Debug, thiserror::Error)]
#[error("camera {camera}: {operation}: {kind}")]
pub struct OnvifError {
    /// The device service address given to `connect`.
    pub camera: String,
    /// The ONVIF operation (`GetProfiles`) or step (`connect`).
    pub operation: String,
    pub kind: ErrorKind,
}

impl OnvifError {
    pub fn new(camera: impl Into<String>, operation: impl Into<String>, kind: ErrorKind) -> Self {
        OnvifError {
            camera: camera.into(),
            operation: operation.into(),
            kind,
        }
    }

    /// The camera refused the user name or password.
    pub fn is_wrong_credentials(&self) -> bool {
        matches!(self.kind, ErrorKind::WrongCredentials(_))
    }

    /// The camera does not implement the operation.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.kind, ErrorKind::Unsupported(_))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ErrorKind::Timeout(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// `ter:NotAuthorized`, or HTTP 401 after HTTP Digest was tried.
    #[error("wrong user name or password ({0})")]
    WrongCredentials(String),
    /// `ter:ActionNotSupported`, `ter:OptionalActionNotImplemented`, HTTP 400/404 without a fault.
    #[error("not supported by this camera ({0})")]
    Unsupported(String),
    /// Any other SOAP fault.
    #[error("SOAP fault {code}{}: {reason}", subcodes.iter().map(|s| format!(" / {s}")).collect::<String>())]
    Fault {
        code: String,
        subcodes: Vec<String>,
        reason: String,
    },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Network(#[source] std::io::Error),
    /// An HTTP status that is neither success nor a fault.
    #[error("HTTP {status} {reason}")]
    Http { status: u16, reason: String },
    /// The answer is bigger than the cap; `size` when the camera announced it.
    #[error("response too large: {} (limit {limit} bytes)", match size { Some(s) => format!("{s} bytes"), None => format!("more than {limit} bytes") })]
    TooLarge { size: Option<u64>, limit: usize },
    /// Not valid HTTP/1.1.
    #[error("bad HTTP response: {0}")]
    Protocol(String),
    #[error("malformed XML: {0}")]
    Xml(#[from] XmlError),
    /// Valid XML, but not the answer the operation should have.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// An address this client cannot use.
    #[error("{0}")]
    BadAddress(String),
}
