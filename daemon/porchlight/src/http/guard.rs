//! Keeps web pages out of the owner API until owner login exists: a page
//! the owner happens to open could otherwise send requests to it (CSRF) or,
//! by DNS rebinding, read it. Every request must name this box in `Host`;
//! every change must be JSON (a "simple" cross-site form or `no-cors`
//! fetch cannot send that) and must not come from a foreign `Origin`.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::error_response;

/// The `Host` values this box answers to.
#[derive(Clone, Debug)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The bind address itself, and for loopback or wildcard binds the
    /// usual local names with the same port. A LAN name can be added by
    /// binding to that address.
    pub fn for_bind(bind: std::net::SocketAddr) -> AllowedHosts {
        let port = bind.port();
        let mut hosts = vec![bind.to_string()];
        if bind.ip().is_loopback() || bind.ip().is_unspecified() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                hosts.push(format!("{name}:{port}"));
            }
        }
        if bind.ip().is_unspecified() {
            // Bound to every address: any IP literal of this box is fine,
            // names are not (they are what rebinding uses).
            hosts.push(format!("*:{port}"));
        }
        AllowedHosts(hosts)
    }

    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|allowed| {
            if let Some(port) = allowed.strip_prefix("*:") {
                host.rsplit_once(':').is_some_and(|(ip, p)| {
                    p == port
                        && ip
                            .trim_matches(|c| c == '[' || c == ']')
                            .parse::<std::net::IpAddr>()
                            .is_ok()
                })
            } else {
                *allowed == host
            }
        })
    }
}

pub async fn owner_only(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: Next,
) -> Response {
    // Health and metrics are read by monitors under any name; they reveal
    // nothing and change nothing.
    if matches!(request.uri().path(), "/healthz" | "/metrics") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !hosts.allows(host) {
        return error_response(
            StatusCode::MISDIRECTED_REQUEST,
            format!("`Host: {host}` is not this box (bind the owner API to the address you use)"),
        );
    }
    if super::auth::changes(request.method()) {
        if let Err(origin) = same_origin(headers) {
            return error_response(
                StatusCode::FORBIDDEN,
                format!("requests from `{origin}` may not change anything here"),
            );
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        let json = content_type.eq_ignore_ascii_case("application/json");
        // A package to verify is binary; its types are no more "simple"
        // (sendable cross-site without a preflight) than JSON is.
        let package = request.uri().path() == "/api/evidence/verify"
            && ["application/x-tar", "application/octet-stream"]
                .iter()
                .any(|t| content_type.eq_ignore_ascii_case(t));
        if !json && !package {
            let wanted = if request.uri().path() == "/api/evidence/verify" {
                "a package to verify must be sent as `Content-Type: application/x-tar` (or application/octet-stream)"
            } else {
                "changes must be sent as `Content-Type: application/json`"
            };
            return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, wanted.into());
        }
    }
    next.run(request).await
}

/// `Origin`, when sent, names this `Host`; otherwise the foreign origin.
pub(crate) fn same_origin(headers: &axum::http::HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let same = origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host));
    if same {
        Ok(())
    } else {
        Err(origin.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_the_bind_address() {
        let local = AllowedHosts::for_bind("127.0.0.1:8080".parse().unwrap());
        assert!(local.allows("127.0.0.1:8080"));
        assert!(local.allows("localhost:8080"));
        assert!(!local.allows("evil.example:8080"));
        assert!(!local.allows("localhost:9090"));
        let lan = AllowedHosts::for_bind("192.168.1.5:8080".parse().unwrap());
        assert!(lan.allows("192.168.1.5:8080"));
        assert!(!lan.allows("localhost:8080"));
        let any = AllowedHosts::for_bind("0.0.0.0:8080".parse().unwrap());
        assert!(any.allows("10.0.0.7:8080"));
        assert!(!any.allows("rebound.example:8080"));
    }
}
