//! Owner login: who may use the owner API and the web UI.
//!
//! - **Open local mode**: no owner account and the API on loopback; nothing
//!   is asked (the demo and a single-user desktop).
//! - **Accounts mode**: at least one account; every owner API call and page
//!   needs a session cookie (browser) or the local CLI token (`Authorization:
//!   Bearer`, from `<data_dir>/owner-api.token`, new at each start).
//! - **Setup mode**: no account, the API on a LAN address, and `[http]
//!   setup_token = true`: nothing is served until the first account is made
//!   with the one-time token printed in the log. Without `setup_token` such
//!   a daemon refuses to start.
//!
//! Every state change made with a session cookie must carry the session's
//! CSRF token in `X-CSRF-Token`. Sessions outlive restarts (only digests
//! of their ids are kept on disk; see `sessions`). See docs/owner-auth.md.

pub mod accounts;
pub mod cli;
mod limiter;
mod routes;
mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

pub use accounts::{AccountError, AccountStore};
pub use routes::routes;

use super::error_response;
use crate::audit::AuditLog;
use sessions::{constant_time_eq, random_token, Session, Sessions};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "porchlight_session";
/// The header carrying the session's CSRF token on state changes.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The local CLI's bearer token, in the data dir.
pub const CLI_TOKEN_FILE: &str = "owner-api.token";
/// How long the one-time setup token is good for after start.
pub const SETUP_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Open,
    Accounts,
    Setup,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Accounts => "accounts",
            Mode::Setup => "setup",
        }
    }
}

/// Why the daemon will not start with this bind address and no account.
/// The daemon hands the same `accounts` to [`Auth::start`] afterwards, so
/// the file is read once at start.
pub fn refusal(bind: SocketAddr, accounts: &AccountStore, setup_token: bool) -> Option<String> {
    let exposed = !bind.ip().is_loopback();
    if !exposed || setup_token || accounts.any() {
        return None;
    }
    Some(format!(
        "refusing to start: the owner API is bound to {bind} (reachable from the network) and no owner \
         account exists, so anyone there could control your cameras. Create one first with \
         `porchlight user add NAME` (as the user the daemon runs as), or set `setup_token = true` \
         under [http] to make the first account in the browser with a one-time token printed at start; \
         or bind to 127.0.0.1"
    ))
}

/// The one-time setup token and when it stops working.
struct SetupToken {
    token: String,
    expires: Instant,
}

/// Everything the login layer holds.
pub struct Auth {
    pub accounts: AccountStore,
    sessions: Sessions,
    limiter: limiter::LoginLimiter,
    cli_token: String,
    cli_token_path: PathBuf,
    setup: Mutex<Option<SetupToken>>,
    /// Bound off loopback (no account there means setup, not open).
    exposed: bool,
    audit: AuditLog,
}

impl Auth {
    /// Writes a fresh CLI token and, with no account yet, makes the setup
    /// token and logs it. Call [`refusal`] first (with the same `accounts`,
    /// of `data_dir`).
    pub fn start(
        accounts: AccountStore,
        data_dir: &Path,
        bind: SocketAddr,
        audit: AuditLog,
    ) -> anyhow::Result<Arc<Auth>> {
        let any = match accounts.accounts() {
            Ok(list) => !list.is_empty(),
            Err(e) => {
                anyhow::bail!("{e} (fix or remove it; `porchlight user add` makes a new one)")
            }
        };
        let cli_token = random_token();
        let cli_token_path = data_dir.join(CLI_TOKEN_FILE);
        write_private(&cli_token_path, &cli_token)?;
        let setup = (!any).then(|| {
            let token = random_token();
            let page = if bind.ip().is_unspecified() {
                format!("http://<this box's address>:{}/login", bind.port())
            } else {
                format!("http://{bind}/login")
            };
            tracing::warn!(
                setup_token = %token,
                "no owner account yet: create one with `porchlight user add NAME`, or at {page} with this one-time setup token (good for {} minutes)",
                SETUP_TOKEN_LIFETIME.as_secs() / 60
            );
            SetupToken {
                token,
                expires: Instant::now() + SETUP_TOKEN_LIFETIME,
            }
        });
        let sessions = Sessions::load(data_dir, |user, changed_us| {
            accounts
                .get(user)
                .is_some_and(|a| a.changed_us == changed_us)
        });
        Ok(Arc::new(Auth {
            accounts,
            sessions,
            limiter: limiter::LoginLimiter::default(),
            cli_token,
            cli_token_path,
            setup: Mutex::new(setup),
            exposed: !bind.ip().is_loopback(),
            audit,
        }))
    }

    /// The mode, as the accounts file was within [`accounts::RECHECK`].
    pub fn mode(&self) -> Mode {
        self.mode_of(self.accounts.any())
    }

    /// The mode as the accounts file says now (logins: an account added a
    /// moment ago can log in at once).
    pub fn mode_now(&self) -> Mode {
        self.mode_of(self.accounts.any_now())
    }

    fn mode_of(&self, any_account: bool) -> Mode {
        if any_account {
            Mode::Accounts
        } else if self.exposed {
            Mode::Setup
        } else {
            Mode::Open
        }
    }

    /// Removes the CLI token file (at a clean stop).
    pub fn forget_cli_token(&self) {
        let _ = std::fs::remove_file(&self.cli_token_path);
    }

    /// Saves the sessions' last-seen times not yet on disk (at a clean stop
    /// or an in-place restart), so browsers stay logged in across it.
    pub fn save_sessions(&self) {
        self.sessions.flush();
    }

    fn session(&self, id: &str) -> Option<Session> {
        self.sessions.lookup(id, |s| {
            self.accounts
                .get(&s.user)
                .is_some_and(|a| a.changed_us == s.account_changed_us)
        })
    }

    /// Uses up the setup token when `token` is it and it is still good.
    fn take_setup_token(&self, token: &str) -> Result<(), &'static str> {
        let mut setup = self.setup.lock().unwrap_or_else(|e| e.into_inner());
        let Some(current) = setup.as_ref() else {
            return Err("no setup token is active (it was used, or an account existed at start)");
        };
        if Instant::now() >= current.expires {
            *setup = None;
            return Err("the setup token expired: restart the daemon for a new one");
        }
        if !constant_time_eq(current.token.as_bytes(), token.as_bytes()) {
            return Err("wrong setup token");
        }
        *setup = None;
        Ok(())
    }
}

/// Writes `text` to a new file of mode 0600 (replacing any old one).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()).map(|()| f));
    match &mut file {
        Ok(f) => f.sync_all().ok(),
        Err(e) => anyhow::bail!("cannot write {}: {e}", path.display()),
    };
    Ok(())
}

/// Who made an owner API call: the logged-in user, or `None` (the local
/// CLI token, or open local mode). Handlers put it into audit entries.
#[derive(Clone, Debug, Default)]
pub struct OwnerUser(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for OwnerUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<OwnerUser>()
            .cloned()
            .unwrap_or_default())
    }
}

/// The TCP peer, when the server records it (the daemon does).
pub(crate) struct Peer(pub Option<ConnectInfo<SocketAddr>>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
        ))
    }
}

/// Paths anyone may reach: health for monitors, the login page and what it
/// needs, the UI's static assets.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/metrics" | "/login" | "/api/session" | "/api/login" | "/api/setup"
    ) || path.starts_with("/ui/assets/")
}

pub(crate) fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The client's address: the peer, or for a reverse proxy on this box the
/// last `X-Forwarded-For` entry it added.
pub(crate) fn client_ip(request_parts: (&HeaderMap, Option<&ConnectInfo<SocketAddr>>)) -> String {
    let (headers, peer) = request_parts;
    let Some(ConnectInfo(peer)) = peer else {
        return "unknown".into();
    };
    if peer.ip().is_loopback() {
        if let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return forwarded.to_string();
        }
    }
    peer.ip().to_string()
}

/// Whether the browser reached us over TLS: only through a reverse proxy
/// on this box that says so (the owner API itself speaks plain HTTP).
pub(crate) fn over_tls(headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>) -> bool {
    peer.is_some_and(|ConnectInfo(p)| p.ip().is_loopback())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The login gate in front of every owner route.
pub async fn require_owner(
    State(auth): State<Arc<Auth>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if is_public(&path) {
        return next.run(request).await;
    }
    let headers = request.headers();
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = value.strip_prefix("Bearer ").unwrap_or_default().trim();
        if !constant_time_eq(token.as_bytes(), auth.cli_token.as_bytes()) {
            return error_response(
                StatusCode::UNAUTHORIZED,
                format!(
                    "the bearer token is not this daemon's `{CLI_TOKEN_FILE}` (it is new at each start)"
                ),
            );
        }
        request.extensions_mut().insert(OwnerUser(None));
        return next.run(request).await;
    }
    if let Some(session) = cookie(headers, SESSION_COOKIE).and_then(|id| auth.session(id)) {
        if changes(request.method()) {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let ok = sent.is_some_and(|t| {
                constant_time_eq(t.trim().as_bytes(), session.csrf_token.as_bytes())
            });
            if !ok {
                return error_response(
                    StatusCode::FORBIDDEN,
                    format!(
                        "{} `X-CSRF-Token` header: changes made with a session must send the csrf_token from GET /api/session",
                        if sent.is_some() { "wrong" } else { "missing" }
                    ),
                );
            }
        }
        request
            .extensions_mut()
            .insert(OwnerUser(Some(session.user)));
        return next.run(request).await;
    }
    let mode = auth.mode();
    if mode == Mode::Open {
        request.extensions_mut().insert(OwnerUser(None));
        return next.run(request).await;
    }
    if path.starts_with("/api/") || !matches!(*request.method(), Method::GET | Method::HEAD) {
        let message = match mode {
            Mode::Setup => "no owner account exists yet: make the first one at /login with the setup token printed in the daemon's log, or with `porchlight user add NAME`",
            _ => "log in first: POST /api/login (or the /login page); the porchlight CLI on this box uses owner-api.token",
        };
        return error_response(StatusCode::UNAUTHORIZED, message.into());
    }
    let next_page = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    Redirect::to(&format!("/login?next={}", encode_component(&next_page))).into_response()
}

/// Percent-encodes everything but unreserved characters.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_only_for_network_binds_without_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let lan: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let store = || AccountStore::new(dir.path());
        assert!(refusal(local, &store(), false).is_none());
        assert!(refusal(lan, &store(), true).is_none());
        let message = refusal(lan, &store(), false).unwrap();
        assert!(message.contains("porchlight user add NAME"), "{message}");
        AccountStore::new(dir.path())
            .add("alice", "correct horse battery")
            .unwrap();
        assert!(refusal(lan, &store(), false).is_none());
    }

    #[test]
    fn cookies_and_next_pages_are_read_and_written_exactly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; porchlight_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(
            encode_component("/live?camera=porch&x=1"),
            "/live%3Fcamera%3Dporch%26x%3D1"
        );
    }
}
