//! `/login`, `GET /api/session`, `POST /api/login`, `POST /api/logout` and
//! `POST /api/setup`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{client_ip, cookie, over_tls, Auth, Mode, Peer, SESSION_COOKIE};
use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome};
use crate::http::error_response;

const LOGIN_PAGE: &str = include_str!("login.html");

pub fn routes(auth: Arc<Auth>) -> Router {
    Router::new()
        .route("/login", get(login_page))
        .route("/api/session", get(session))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/setup", post(setup))
        .with_state(auth)
}

async fn login_page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        Html(LOGIN_PAGE),
    )
        .into_response()
}

/// `GET /api/session`: who is logged in, the mode, and the CSRF token.
async fn session(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    let session = cookie(&headers, SESSION_COOKIE).and_then(|id| auth.session(id));
    Json(json!({
        "user": session.as_ref().map(|s| s.user.clone()),
        "mode": auth.mode().as_str(),
        "csrf_token": session.map(|s| s.csrf_token),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    token: String,
    user: String,
    password: String,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error_response(
            StatusCode::BAD_REQUEST,
            format!("the body is not what this endpoint takes: {e}"),
        ))
    })
}

fn too_many(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins: try again in {secs} s"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// A logged-in answer: the cookie, and the user and CSRF token as JSON.
fn logged_in(auth: &Auth, user: &str, changed_us: i64, tls: bool) -> Response {
    let (id, session) = auth.sessions.create(user, changed_us);
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{}",
        if tls { "; Secure" } else { "" }
    );
    let mut response = Json(json!({
        "user": user,
        "mode": auth.mode().as_str(),
        "csrf_token": session.csrf_token,
    }))
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn audit(auth: &Auth, event: AuditEvent) {
    if let Err(e) = auth.audit.append(event).await {
        tracing::error!(error = %e, "cannot record a login in the audit log");
    }
}

fn failure(ip: &str, user: &str, reason: &str) -> AuditEvent {
    AuditEvent::new(
        Component::OwnerApi,
        EventType::AuthFailure,
        Identity::anonymous(),
    )
    .outcome(Outcome::refused(reason))
    .details(json!({ "what": "owner login", "user": user, "client": ip }))
}

/// `POST /api/login` with `{"user", "password"}`.
async fn login(
    State(auth): State<Arc<Auth>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: LoginBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let ip = client_ip((&headers, peer.as_ref()));
    // The name as typed, bounded (it goes into the audit log).
    let user: String = body.user.trim().chars().take(64).collect();
    let keys = vec![format!("ip:{ip}"), format!("user:{}", user.to_lowercase())];
    if let Err(wait) = auth.limiter.check(&keys) {
        tracing::warn!(client = %ip, user = %user, "login refused: rate limited");
        return too_many(wait);
    }
    if auth.mode_now() != Mode::Accounts {
        return error_response(
            StatusCode::CONFLICT,
            "no owner account exists yet: make one with `porchlight user add NAME` or the setup token"
                .into(),
        );
    }
    let checker = auth.clone();
    let (name, password) = (user.clone(), body.password);
    let account = tokio::task::spawn_blocking(move || checker.accounts.verify(&name, &password))
        .await
        .ok()
        .flatten();
    let Some(account) = account else {
        auth.limiter.failed(&keys);
        audit(&auth, failure(&ip, &user, "wrong user name or password")).await;
        return error_response(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        );
    };
    auth.limiter.succeeded(&keys);
    audit(
        &auth,
        AuditEvent::new(
            Component::OwnerApi,
            EventType::OwnerLogin,
            Identity::owner(Some(&account.name)),
        )
        .outcome(Outcome::ok())
        .details(json!({ "client": ip })),
    )
    .await;
    logged_in(
        &auth,
        &account.name,
        account.changed_us,
        over_tls(&headers, peer.as_ref()),
    )
}

/// `POST /api/logout`: ends the session (it passed the login gate, so
/// with a session it carried the CSRF token).
async fn logout(State(auth): State<Arc<Auth>>, headers: HeaderMap) -> Response {
    let session = cookie(&headers, SESSION_COOKIE).and_then(|id| {
        let session = auth.session(id)?;
        auth.sessions.remove(id).then_some(session)
    });
    if let Some(session) = &session {
        audit(
            &auth,
            AuditEvent::new(
                Component::OwnerApi,
                EventType::OwnerLogout,
                Identity::owner(Some(&session.user)),
            )
            .outcome(Outcome::ok()),
        )
        .await;
    }
    let mut response = Json(json!({ "logged_out": session.is_some() })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "porchlight_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        ),
    );
    response
}

/// `POST /api/setup` with `{"token", "user", "password"}`: the first
/// account, made with the one-time token from the log; logs it in.
async fn setup(
    State(auth): State<Arc<Auth>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: SetupBody = match parse(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let ip = client_ip((&headers, peer.as_ref()));
    let keys = vec![format!("ip:{ip}")];
    if let Err(wait) = auth.limiter.check(&keys) {
        return too_many(wait);
    }
    if auth.accounts.any_now() {
        return error_response(
            StatusCode::CONFLICT,
            "an owner account exists already: log in (more accounts: `porchlight user add NAME`)"
                .into(),
        );
    }
    let user = body.user.trim().to_string();
    if let Err(e) = super::accounts::check_name(&user)
        .and_then(|()| super::accounts::check_password(&user, &body.password))
    {
        return error_response(StatusCode::BAD_REQUEST, e.to_string());
    }
    if let Err(reason) = auth.take_setup_token(body.token.trim()) {
        auth.limiter.failed(&keys);
        audit(&auth, failure(&ip, &user, &format!("setup: {reason}"))).await;
        return error_response(StatusCode::FORBIDDEN, reason.into());
    }
    let maker = auth.clone();
    let (name, password) = (user.clone(), body.password);
    let made = tokio::task::spawn_blocking(move || {
        maker.accounts.add(&name, &password)?;
        maker
            .accounts
            .get(&name)
            .ok_or_else(|| super::AccountError::Unknown(name.clone()))
    })
    .await;
    let account = match made {
        Ok(Ok(account)) => account,
        Ok(Err(e)) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    audit(
        &auth,
        AuditEvent::new(
            Component::OwnerApi,
            EventType::OwnerAccount,
            Identity::owner(Some(&account.name)),
        )
        .outcome(Outcome::ok())
        .details(json!({ "what": "first owner account made with the setup token", "client": ip })),
    )
    .await;
    tracing::info!(user = %account.name, "first owner account made: the owner API now needs a login");
    logged_in(
        &auth,
        &account.name,
        account.changed_us,
        over_tls(&headers, peer.as_ref()),
    )
}
