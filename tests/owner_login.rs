//! The owner locks the door. With no account and the API on this computer
//! only, Porchlight is open (as the demo uses it). Once the owner runs
//! `porchlight user add`, every owner API call and page needs a login:
//! without a session it is refused, a wrong password is refused and audited,
//! repeated failures are slowed down, a session's changes need its CSRF
//! token, logout ends it, and the CLI on the box keeps working through the
//! daemon's token. A daemon bound to the LAN with no account refuses to
//! start, unless asked for a one-time setup token, which makes the first
//! account exactly once. And a real browser logs in through `/login`.
//! A login outlives a daemon restart (adding a camera, an upgrade) or a
//! crash, but not a logout or a new password.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{
    free_port, header_value, http_get, http_request, login_in_chromium, porchlight, wait_until,
    Daemon,
};

const PASSWORD: &str = "correct horse battery";

fn config(dir: &Path, bind: &str, extra_http: &str) -> String {
    format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{bind}\"\n{extra_http}\n[retention]\nmin_free = \"1MB\"\n",
        dir.join("data").display()
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("JSON ({e}): {body}"))
}

/// Adds an owner account through the CLI, the password in a file.
fn add_user(config: &Path, name: &str) {
    support::add_owner_account(config, name, PASSWORD);
}

/// `POST /api/login`; returns (status, head, body).
fn login(http: SocketAddr, user: &str, password: &str) -> (u16, String, String) {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    http_request(http, "POST", "/api/login", &[], Some(&body))
}

/// The `porchlight_session=...` pair from a login answer.
fn session_cookie(head: &str) -> String {
    let set = header_value(head, "set-cookie").expect("Set-Cookie");
    set.split(';')
        .next()
        .expect("cookie pair")
        .trim()
        .to_string()
}

fn audit_events(http: SocketAddr, cookie: &str) -> Vec<Value> {
    let (status, _, body) = http_request(
        http,
        "GET",
        "/api/audit?limit=1000",
        &[("Cookie", cookie)],
        None,
    );
    assert_eq!(status, 200, "{body}");
    json(&body)["entries"].as_array().expect("entries").to_vec()
}

#[test]
fn open_local_mode_needs_no_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(dir.path(), &config(dir.path(), "{HTTP}", ""));
    let (status, body) = http_get(daemon.http, "/api/cameras").expect("GET");
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = http_request(daemon.http, "GET", "/api/session", &[], None);
    assert_eq!(status, 200);
    let session = json(&body);
    assert_eq!(session["mode"], "open");
    assert_eq!(session["user"], Value::Null);
    // Changes need no session here (the Host/Origin/JSON guard still applies).
    let (status, _, body) = http_request(
        daemon.http,
        "PUT",
        "/api/privacy",
        &[],
        Some(r#"{"on":true}"#),
    );
    assert_eq!(status, 200, "{body}");
    // A login with no account says what to do instead.
    let (status, _, body) = login(daemon.http, "alice", PASSWORD);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("porchlight user add"), "{body}");
    // The CLI token file exists, private.
    use std::os::unix::fs::MetadataExt as _;
    let token = dir.path().join("data/owner-api.token");
    assert_eq!(
        std::fs::metadata(&token).expect("token file").mode() & 0o777,
        0o600
    );
    daemon.stop();
    assert!(!token.exists(), "the CLI token is removed at a clean stop");
}

#[test]
fn after_user_add_everything_needs_a_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(dir.path(), &config(dir.path(), "{HTTP}", ""));
    let http = daemon.http;
    let config_path = daemon.config_path.clone();

    // The owner adds an account while the daemon runs.
    add_user(&config_path, "alice");
    use std::os::unix::fs::MetadataExt as _;
    let accounts = dir.path().join("data/owner-accounts.json");
    assert_eq!(
        std::fs::metadata(&accounts).expect("accounts").mode() & 0o777,
        0o600
    );
    let stored = std::fs::read_to_string(&accounts).expect("accounts");
    assert!(stored.contains("$argon2id$") && !stored.contains(PASSWORD));
    let (code, out, _) = porchlight(&["user", "list", "--config", path(&config_path)]);
    assert_eq!(code, 0);
    assert!(out.starts_with("alice"), "{out}");
    let short = dir.path().join("short.password");
    std::fs::write(&short, "2short").expect("write");
    let (code, _, err) = porchlight(&[
        "user",
        "add",
        "--config",
        path(&config_path),
        "bob",
        "--password-file",
        path(&short),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("too short: at least 10 characters"), "{err}");

    // Without a session: API calls 401 (JSON naming what to do), pages go
    // to the login page, health stays open. The daemon looks at the
    // accounts file at most once a second, so the new account counts
    // within about a second.
    wait_until(
        Duration::from_secs(3),
        "the daemon to see the new account",
        || http_request(http, "GET", "/api/cameras", &[], None).0 == 401,
    );
    for api in [
        "/api/cameras",
        "/api/audit",
        "/api/settings",
        "/api/requests",
    ] {
        let (status, _, body) = http_request(http, "GET", api, &[], None);
        assert_eq!(status, 401, "{api}: {body}");
        assert!(json(&body)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("log in"));
    }
    let (status, _, body) = http_request(http, "PUT", "/api/privacy", &[], Some(r#"{"on":true}"#));
    assert_eq!(status, 401, "{body}");
    let (status, head, _) = http_request(http, "GET", "/live?camera=porch", &[], None);
    assert_eq!(status, 303, "{head}");
    assert_eq!(
        header_value(&head, "location").as_deref(),
        Some("/login?next=/live%3Fcamera%3Dporch")
    );
    let (status, _) = http_get(http, "/healthz").expect("healthz");
    assert_eq!(status, 200);
    let (status, _, page) = http_request(http, "GET", "/login", &[], None);
    assert_eq!(status, 200);
    assert!(
        page.contains("/api/login"),
        "the login page posts to /api/login"
    );
    let (_, _, body) = http_request(http, "GET", "/api/session", &[], None);
    assert_eq!(json(&body)["mode"], "accounts");

    // A wrong password: 401, and the audit log will say so.
    let (status, _, body) = login(http, "alice", "not the password");
    assert_eq!(status, 401, "{body}");

    // The right one: a session cookie the page's scripts cannot read, that
    // never leaves for another site.
    let (status, head, body) = login(http, "alice", PASSWORD);
    assert_eq!(status, 200, "{body}");
    let set_cookie = header_value(&head, "set-cookie").expect("Set-Cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie} lacks {flag}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = session_cookie(&head);
    let csrf = json(&body)["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_string();
    let (status, _, body) = http_request(http, "GET", "/api/cameras", &[("Cookie", &cookie)], None);
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = http_request(http, "GET", "/api/session", &[("Cookie", &cookie)], None);
    let session = json(&body);
    assert_eq!(session["user"], "alice");
    assert_eq!(session["csrf_token"], csrf.as_str());

    // Behind a TLS reverse proxy on this box the cookie is Secure.
    let (status, head, _) = http_request(
        http,
        "POST",
        "/api/login",
        &[("X-Forwarded-Proto", "https")],
        Some(&serde_json::json!({ "user": "alice", "password": PASSWORD }).to_string()),
    );
    assert_eq!(status, 200);
    assert!(header_value(&head, "set-cookie")
        .unwrap_or_default()
        .contains("; Secure"));

    // A change with the cookie needs the session's CSRF token.
    let privacy = Some(r#"{"on":true}"#);
    let (status, _, body) =
        http_request(http, "PUT", "/api/privacy", &[("Cookie", &cookie)], privacy);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("missing `X-CSRF-Token`"), "{body}");
    let (status, _, body) = http_request(
        http,
        "PUT",
        "/api/privacy",
        &[("Cookie", &cookie), ("X-CSRF-Token", "forged")],
        privacy,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("wrong `X-CSRF-Token`"), "{body}");
    let (status, _, body) = http_request(
        http,
        "PUT",
        "/api/privacy",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        privacy,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["privacy"], true);

    // The audit log: the failed login, the login, and the change made by alice.
    let events = audit_events(http, &cookie);
    let failed = events
        .iter()
        .find(|e| e["event"] == "auth_failure")
        .expect("failed login audited");
    assert_eq!(failed["details"]["user"], "alice");
    assert_eq!(failed["details"]["client"], "127.0.0.1");
    assert!(events
        .iter()
        .any(|e| e["event"] == "owner_login" && e["identity"]["owner_user"] == "alice"));
    let change = events
        .iter()
        .rfind(|e| e["event"] == "policy_change")
        .expect("privacy change audited");
    assert_eq!(change["identity"]["owner_user"], "alice", "{change}");

    // Alice denies a police request: the denial names her.
    let id = police_request(&dir.path().join("data"));
    let (status, _, body) = http_request(
        http,
        "POST",
        &format!("/api/requests/{id}/deny"),
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        Some(r#"{"reason":"not without a warrant"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let denial = audit_events(http, &cookie)
        .into_iter()
        .find(|e| e["event"] == "denial" && e["object"]["request_id"] == id.as_str())
        .expect("denial audited");
    assert_eq!(denial["identity"]["owner_user"], "alice", "{denial}");

    // The CLI on this box goes through the daemon with its token.
    let (code, out, err) = porchlight(&["requests", "list", "--config", path(&config_path)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = porchlight(&["status", "--config", path(&config_path), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json(&out)["source"], "daemon", "{out}");
    assert_eq!(json(&out)["sharing"]["privacy"], true, "{out}");
    let (status, _, body) = http_request(
        http,
        "GET",
        "/api/cameras",
        &[("Authorization", "Bearer not-the-token")],
        None,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("owner-api.token"), "{body}");

    // Logout ends the session.
    let (status, _, body) = http_request(
        http,
        "POST",
        "/api/logout",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        Some("{}"),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = http_request(http, "GET", "/api/cameras", &[("Cookie", &cookie)], None);
    assert_eq!(status, 401, "the session is gone");
    assert!(audit_log_has(&config_path, "owner_logout"));

    // Guessing: a few failures are let through, then 429 with Retry-After,
    // and while it lasts not even the right password gets in.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let (status, head, _) = login(http, "alice", "guess guess guess");
        statuses.push(status);
        if status == 429 {
            retry_after = header_value(&head, "retry-after");
            break;
        }
    }
    assert_eq!(statuses, vec![401, 401, 401, 401, 401, 429], "{statuses:?}");
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    let (status, _, body) = login(http, "alice", PASSWORD);
    assert_eq!(status, 429, "{body}");

    // Removing the last account opens the box to this computer again.
    let (code, out, err) = porchlight(&["user", "remove", "--config", path(&config_path), "alice"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_until(
        Duration::from_secs(3),
        "the daemon to see the account gone",
        || http_request(http, "GET", "/api/cameras", &[], None).0 == 200,
    );
    let (status, _, _) = http_request(http, "GET", "/api/cameras", &[], None);
    assert_eq!(status, 200);
    daemon.stop();
}

/// A police request waiting for the owner, recorded the way the relay
/// records one (requests.db is shared with the running daemon).
fn police_request(data_dir: &Path) -> String {
    use porchlight::policy::{
        decide, parse_request, validate, AgencyIdentity, CameraPolicy, GeoPoint, Policy,
        RequestHistory, RequestLimits, SharingLevel,
    };
    let now = porchlight::time::now_utc_us();
    let hour = 3_600_000_000;
    let from = porchlight::time::format_utc_us((now / 1_000_000) * 1_000_000 - 2 * hour);
    let to = porchlight::time::format_utc_us((now / 1_000_000) * 1_000_000 - hour);
    let body = serde_json::json!({
        "agency": "Dallas Police Department",
        "officer": { "name": "Sgt. A. Rivera", "badge": "D-4471" },
        "case_id": "24-0117",
        "incident_type": "burglary",
        "legal_basis": "consent",
        "location": { "lat": 32.7767, "lon": -96.797 },
        "radius_m": 250,
        "window": { "from": from, "to": to },
        "reason": "Break-in reported on the street."
    });
    let agency = AgencyIdentity {
        name: "Dallas Police Department".into(),
        cert_fingerprint: "ab".repeat(32),
    };
    let request = validate(
        parse_request(body.to_string().as_bytes()).expect("parses"),
        &agency,
        &RequestLimits::default(),
        now,
    )
    .expect("valid");
    let policy = Policy {
        privacy: false,
        timezone: jiff::tz::TimeZone::UTC,
        max_clip: std::time::Duration::from_secs(12 * 3600),
        limits: RequestLimits::default(),
        approval_expiry: std::time::Duration::from_secs(86_400),
        download_expiry: std::time::Duration::from_secs(86_400),
        live_share_max: std::time::Duration::from_secs(900),
        cameras: vec![CameraPolicy {
            location: Some(GeoPoint {
                lat: 32.7768,
                lon: -96.797,
            }),
            ..CameraPolicy::new("porch", SharingLevel::OnRequest)
        }],
    };
    let decision = decide(&policy, &request, &RequestHistory::default(), now);
    porchlight::requests::RequestStore::open(data_dir)
        .expect("requests.db")
        .record(
            &request,
            &decision,
            now,
            std::time::Duration::from_secs(86_400),
        )
        .expect("record")
        .id
}

/// The audit log as `porchlight audit show` prints it (the daemon holds the
/// writer; the CLI reads beside it).
fn audit_log_has(config: &Path, event: &str) -> bool {
    let (code, out, err) = porchlight(&["audit", "show", "--config", path(config), "--json"]);
    assert_eq!(code, 0, "{err}");
    out.lines().any(|l| json(l)["event"] == event)
}

#[test]
fn a_lan_bind_without_an_account_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bind = format!("0.0.0.0:{}", free_port());
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config(dir.path(), &bind, "")).expect("config");

    let (code, _, err) = porchlight(&["run", "--config", path(&config_path)]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&format!("bound to {bind}")), "{err}");
    assert!(err.contains("no owner account exists"), "{err}");
    assert!(err.contains("porchlight user add NAME"), "{err}");
    assert!(err.contains("setup_token = true"), "{err}");

    let (code, _, err) = porchlight(&["check-config", "--config", path(&config_path)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("porchlight user add NAME"), "{err}");

    add_user(&config_path, "alice");
    let (code, _, err) = porchlight(&["check-config", "--config", path(&config_path)]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_setup_token_makes_the_first_account_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        config(dir.path(), &format!("0.0.0.0:{port}"), "setup_token = true"),
    )
    .expect("config");
    let http: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let daemon = Daemon::start_with(config_path, http, dir.path());

    // Nothing is served until the first account exists.
    let (status, _, body) = http_request(http, "GET", "/api/cameras", &[], None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("setup token"), "{body}");
    let (_, _, body) = http_request(http, "GET", "/api/session", &[], None);
    assert_eq!(json(&body)["mode"], "setup");

    let log = strip_colours(&daemon.log());
    let token = log
        .split("setup_token=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("setup token in the log:\n{log}"))
        .to_string();
    let setup = |token: &str, user: &str| {
        let body = serde_json::json!({ "token": token, "user": user, "password": PASSWORD });
        http_request(http, "POST", "/api/setup", &[], Some(&body.to_string()))
    };
    let (status, _, body) = setup("not-the-token", "alice");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("wrong setup token"), "{body}");

    let (status, head, body) = setup(&token, "alice");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["user"], "alice");
    let cookie = session_cookie(&head);
    let (status, _, body) = http_request(http, "GET", "/api/cameras", &[("Cookie", &cookie)], None);
    assert_eq!(status, 200, "{body}");

    // Used once: a second account cannot be made with it.
    let (status, _, body) = setup(&token, "mallory");
    assert_eq!(status, 409, "{body}");
    let (status, _, _) = login(http, "mallory", PASSWORD);
    assert_eq!(status, 401);
    let events = audit_events(http, &cookie);
    assert!(events
        .iter()
        .any(|e| e["event"] == "owner_account" && e["identity"]["owner_user"] == "alice"));
    daemon.stop();
}

/// The daemon's log without terminal colour codes.
fn strip_colours(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_browser_logs_in_and_lands_on_the_page_it_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(dir.path(), &config(dir.path(), "{HTTP}", ""));
    add_user(&daemon.config_path, "alice");

    let seen = login_in_chromium(
        daemon.http,
        "/live?camera=porch",
        "alice",
        "not the password",
        PASSWORD,
    );
    let base = format!("http://{}", daemon.http);
    assert_eq!(
        seen["loginUrl"],
        format!("{base}/login?next=/live%3Fcamera%3Dporch"),
        "{seen}"
    );
    assert_eq!(seen["errorShown"], "wrong user name or password", "{seen}");
    assert_eq!(
        seen["finalUrl"],
        format!("{base}/live?camera=porch"),
        "{seen}"
    );
    assert_eq!(seen["session"]["user"], "alice", "{seen}");
    assert_eq!(seen["cookieVisibleToScript"], false, "{seen}");
    daemon.stop();
}

/// Logs `user` in; returns the session cookie and its CSRF token.
fn logged_in(http: SocketAddr, user: &str) -> (String, String) {
    let (status, head, body) = login(http, user, PASSWORD);
    assert_eq!(status, 200, "{body}");
    let csrf = json(&body)["csrf_token"]
        .as_str()
        .expect("csrf_token")
        .to_string();
    (session_cookie(&head), csrf)
}

/// A state change made with a browser session: `PUT /api/privacy`.
fn set_privacy(http: SocketAddr, cookie: &str, csrf: &str, on: bool) -> (u16, String) {
    let body = format!(r#"{{"on":{on}}}"#);
    let (status, _, body) = http_request(
        http,
        "PUT",
        "/api/privacy",
        &[("Cookie", cookie), ("X-CSRF-Token", csrf)],
        Some(&body),
    );
    (status, body)
}

#[test]
fn a_login_outlives_a_restart_but_not_a_logout_or_a_new_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = Daemon::start(dir.path(), &config(dir.path(), "{HTTP}", ""));
    let http = daemon.http;
    let config_path = daemon.config_path.clone();
    add_user(&config_path, "alice");
    add_user(&config_path, "bob");

    // Alice logs in twice (phone and laptop) and bob once; alice's laptop
    // logs out before the restart.
    let (phone, phone_csrf) = logged_in(http, "alice");
    let (laptop, laptop_csrf) = logged_in(http, "alice");
    let (bobs, bobs_csrf) = logged_in(http, "bob");
    let (status, _, body) = http_request(
        http,
        "POST",
        "/api/logout",
        &[("Cookie", &laptop), ("X-CSRF-Token", &laptop_csrf)],
        Some("{}"),
    );
    assert_eq!(status, 200, "{body}");

    // Only digests of the session ids are on disk, in a private file.
    use std::os::unix::fs::MetadataExt as _;
    let sessions = dir.path().join("data/owner-sessions.json");
    wait_until(Duration::from_secs(10), "the sessions file", || {
        sessions.exists()
    });
    assert_eq!(
        std::fs::metadata(&sessions).expect("sessions file").mode() & 0o777,
        0o600
    );
    let stored = std::fs::read_to_string(&sessions).expect("sessions file");
    for cookie in [&phone, &laptop, &bobs] {
        let id = cookie.trim_start_matches("porchlight_session=");
        assert!(!stored.contains(id), "a session id is on disk: {stored}");
    }

    // The daemon restarts (as after adding a camera or an upgrade).
    let daemon = daemon.restart_with(|_| {});
    let (status, body) = set_privacy(http, &phone, &phone_csrf, true);
    assert_eq!(status, 200, "the phone is still logged in: {body}");
    assert_eq!(json(&body)["privacy"], true);
    let (status, _, body) = http_request(http, "GET", "/api/session", &[("Cookie", &phone)], None);
    assert_eq!(status, 200);
    assert_eq!(json(&body)["user"], "alice", "{body}");
    assert_eq!(json(&body)["csrf_token"], phone_csrf.as_str(), "{body}");
    // The CSRF token still has to match.
    let (status, body) = set_privacy(http, &phone, "forged", false);
    assert_eq!(status, 403, "{body}");
    // The laptop logged out: it stays out.
    let (status, body) = set_privacy(http, &laptop, &laptop_csrf, false);
    assert_eq!(status, 401, "a logged-out session came back: {body}");
    let (status, _, body) = http_request(http, "GET", "/api/cameras", &[("Cookie", &laptop)], None);
    assert_eq!(status, 401, "{body}");

    // Bob gets a new password while the daemon is stopped: his old session
    // is refused after the next start; alice's phone still works.
    daemon.stop();
    let new_password = dir.path().join("bob.new-password");
    std::fs::write(&new_password, "a brand new passphrase\n").expect("write");
    let (code, out, err) = porchlight(&[
        "user",
        "passwd",
        "--config",
        path(&config_path),
        "bob",
        "--password-file",
        path(&new_password),
    ]);
    assert_eq!(code, 0, "user passwd: {out}{err}");
    let daemon = Daemon::start_with(config_path.clone(), http, dir.path());
    let (status, body) = set_privacy(http, &bobs, &bobs_csrf, false);
    assert_eq!(
        status, 401,
        "a session from before the new password: {body}"
    );
    let (status, body) = set_privacy(http, &phone, &phone_csrf, false);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["privacy"], false);
    assert!(daemon.log().contains("owner sessions restored"));

    // A login is on disk soon after it, not only at a clean stop: it
    // survives a crash too.
    let (tablet, tablet_csrf) = logged_in(http, "alice");
    wait_until(
        Duration::from_secs(10),
        "the tablet's session saved",
        || std::fs::read_to_string(&sessions).is_ok_and(|text| text.contains(&tablet_csrf)),
    );
    daemon.kill9();
    let daemon = Daemon::start_with(config_path, http, dir.path());
    let (status, body) = set_privacy(http, &tablet, &tablet_csrf, true);
    assert_eq!(
        status, 200,
        "the tablet is still logged in after a crash: {body}"
    );
    daemon.stop();
}
