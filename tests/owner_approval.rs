//! The owner answers police requests: while the daemon runs, the owner
//! lists what waits, approves one camera for a shorter window from the
//! shell, denies another request from the API, reads both answers in the
//! audit log, watches an unanswered request expire, and gets a named error
//! for every bad id or body. With the daemon stopped the CLI still works,
//! on the files.
//!
//! The relay listener that normally records requests is built elsewhere;
//! here the test plays the relay, recording through the library on the
//! same data dir (before and while the daemon runs: requests.db is shared).

mod support;

use std::path::Path;
use std::time::Duration;

use porchlight::policy::{
    decide, parse_request, validate, AgencyIdentity, CameraPolicy, GeoPoint, Policy,
    RequestHistory, RequestLimits, SharingLevel,
};
use porchlight::requests::{RequestStore, StoredRequest};
use porchlight::time::{format_utc_us, now_utc_us};
use serde_json::{json, Value};
use support::{http_get, http_send, porchlight, Daemon};

const DALLAS: &str = "Dallas Police Department";
const HOUR_US: i64 = 3_600_000_000;

fn config(dir: &Path) -> String {
    format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"1MB\"\n",
        dir.join("data").display()
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The owner's cameras as the policy sees them: porch and driveway wait
/// for the owner (porch gives at most an hour), the garage is never shared.
fn policy() -> Policy {
    let near = Some(GeoPoint {
        lat: 32.7768,
        lon: -96.797,
    });
    let camera = |name: &str, level, max_clip| CameraPolicy {
        location: near,
        max_clip,
        ..CameraPolicy::new(name, level)
    };
    Policy {
        privacy: false,
        timezone: jiff::tz::TimeZone::UTC,
        max_clip: Duration::from_secs(12 * 3600),
        limits: RequestLimits::default(),
        approval_expiry: Duration::from_secs(86_400),
        download_expiry: Duration::from_secs(3 * 86_400),
        live_share_max: Duration::from_secs(900),
        cameras: vec![
            camera(
                "porch",
                SharingLevel::OnRequest,
                Some(Duration::from_secs(3600)),
            ),
            camera("driveway", SharingLevel::OnRequest, None),
            camera("garage", SharingLevel::Off, None),
        ],
    }
}

/// Whole seconds, so RFC 3339 text round-trips exactly.
fn hours_ago(hours: i64) -> i64 {
    (now_utc_us() / 1_000_000) * 1_000_000 - hours * HOUR_US
}

/// What the relay does with a request that passed its checks.
fn relay_records(store: &RequestStore, case_id: &str, approval_expiry: Duration) -> StoredRequest {
    let body = json!({
        "agency": DALLAS,
        "officer": { "name": "Sgt. A. Rivera", "badge": "D-4471" },
        "case_id": case_id,
        "incident_type": "burglary",
        "legal_basis": "consent",
        "location": { "lat": 32.7767, "lon": -96.797 },
        "radius_m": 250,
        "window": { "from": format_utc_us(hours_ago(3)), "to": format_utc_us(hours_ago(1)) },
        "reason": "Break-in reported; looking for a vehicle leaving the street."
    });
    let agency = AgencyIdentity {
        name: DALLAS.into(),
        cert_fingerprint: "ab".repeat(32),
    };
    let now = now_utc_us();
    let request = validate(
        parse_request(body.to_string().as_bytes()).expect("parses"),
        &agency,
        &RequestLimits::default(),
        now,
    )
    .expect("valid");
    let decision = decide(&policy(), &request, &RequestHistory::default(), now);
    store
        .record(&request, &decision, now, approval_expiry)
        .expect("record")
}

fn json_of(status_and_body: (u16, String), expected: u16, what: &str) -> Value {
    let (status, body) = status_and_body;
    assert_eq!(status, expected, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"))
}

fn outcome(request: &Value, camera: &str) -> String {
    request["cameras"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["camera"] == camera))
        .and_then(|c| c["outcome"].as_str())
        .unwrap_or("missing")
        .to_string()
}

/// (event, camera, component, identity kind) of a request's audit entries.
fn audit_of(daemon: &Daemon, id: &str) -> Vec<(String, String, String, String)> {
    let page = json_of(
        http_get(daemon.http, &format!("/api/audit?request={id}")).expect("GET /api/audit"),
        200,
        "audit",
    );
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&e["event"]),
                text(&e["object"]["camera"]),
                text(&e["component"]),
                text(&e["identity"]["kind"]),
            )
        })
        .collect()
}

fn entry(
    event: &str,
    camera: &str,
    component: &str,
    who: &str,
) -> (String, String, String, String) {
    (event.into(), camera.into(), component.into(), who.into())
}

#[test]
fn the_owner_approves_denies_and_lets_requests_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let store = RequestStore::open(&data_dir).expect("open requests.db");
    let day = Duration::from_secs(86_400);
    // Two requests arrive before the daemon starts.
    let burglary = relay_records(&store, "2026-0042117", day);
    let parcel = relay_records(&store, "2026-0042200", day);

    let daemon = Daemon::start(dir.path(), &config(dir.path()));
    let config_path = daemon.config_path.clone();
    let cfg = path(&config_path);

    // The owner lists what waits for them.
    let (code, stdout, stderr) = porchlight(&[
        "requests", "list", "-c", cfg, "--state", "pending", "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let ids: Vec<&str> = listed.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{stdout}");
    assert!(ids.contains(&burglary.id.as_str()) && ids.contains(&parcel.id.as_str()));
    let (code, table, _) = porchlight(&["requests", "list", "-c", cfg]);
    assert_eq!(code, 0);
    assert!(
        table.contains(&burglary.id) && table.contains("await_owner"),
        "{table}"
    );
    assert!(
        table.contains("sharing_off"),
        "the garage's refusal is shown: {table}"
    );

    // They share the porch only, and only 20 minutes of it.
    let from = format_utc_us(hours_ago(3) + HOUR_US / 6);
    let to = format_utc_us(hours_ago(3) + HOUR_US / 2);
    let (code, stdout, stderr) = porchlight(&[
        "requests",
        "approve",
        "-c",
        cfg,
        &burglary.id,
        "--camera",
        "porch",
        "--from",
        &from,
        "--to",
        &to,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("partially_approved"), "{stdout}");
    let answered = json_of(
        http_get(daemon.http, &format!("/api/requests/{}", burglary.id)).expect("GET"),
        200,
        "request",
    );
    assert_eq!(answered["state"], "partially_approved");
    assert_eq!(outcome(&answered, "porch"), "approved");
    assert_eq!(outcome(&answered, "driveway"), "denied");
    assert_eq!(outcome(&answered, "garage"), "refuse");
    let porch = &answered["cameras"][0];
    assert_eq!(
        (
            porch["window"]["from"].as_str(),
            porch["window"]["to"].as_str()
        ),
        (Some(from.as_str()), Some(to.as_str()))
    );
    // Asking twice is named, not silently done again.
    let (code, _, stderr) = porchlight(&["requests", "approve", "-c", cfg, &burglary.id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already answered"), "{stderr}");

    // The other request is denied from the API (the web UI's way).
    let denied = json_of(
        http_send(
            daemon.http,
            "POST",
            &format!("/api/requests/{}/deny", parcel.id),
            Some(r#"{"reason": "No footage without a warrant."}"#),
        )
        .expect("POST deny"),
        200,
        "deny",
    );
    assert_eq!(denied["state"], "denied");
    assert_eq!(denied["denial_reason"], "No footage without a warrant.");

    // Both answers are in the audit log, as the owner's, through the daemon.
    assert_eq!(
        audit_of(&daemon, &burglary.id),
        [
            entry("approval", "porch", "owner_api", "owner"),
            entry("denial", "driveway", "owner_api", "owner"),
        ]
    );
    assert_eq!(
        audit_of(&daemon, &parcel.id),
        [
            entry("denial", "porch", "owner_api", "owner"),
            entry("denial", "driveway", "owner_api", "owner"),
        ]
    );
    let approval = json_of(
        http_get(
            daemon.http,
            &format!("/api/audit?request={}&camera=porch", burglary.id),
        )
        .expect("GET"),
        200,
        "audit",
    );
    assert_eq!(
        approval["entries"][0]["object"]["window_from"],
        from.as_str()
    );
    assert_eq!(approval["entries"][0]["object"]["window_to"], to.as_str());

    // A request nobody answers expires: no answer means no.
    let lapsing = relay_records(&store, "2026-0042300", Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(800));
    let expired = json_of(
        http_get(daemon.http, &format!("/api/requests/{}", lapsing.id)).expect("GET"),
        200,
        "expired request",
    );
    assert_eq!(expired["state"], "expired");
    assert_eq!(outcome(&expired, "porch"), "expired");
    assert_eq!(
        audit_of(&daemon, &lapsing.id),
        [
            entry("expiry", "porch", "owner_api", "system"),
            entry("expiry", "driveway", "owner_api", "system"),
        ]
    );
    let (code, _, stderr) = porchlight(&["requests", "approve", "-c", cfg, &lapsing.id]);
    assert_eq!(code, 1);
    assert!(stderr.contains("expired"), "{stderr}");

    // Bad ids and bodies get a 4xx naming the problem.
    let spare = relay_records(&store, "2026-0042400", day);
    let approve = format!("/api/requests/{}/approve", spare.id);
    let cases: Vec<(&str, String, Option<&str>, u16, &str)> = vec![
        ("GET", "/api/requests/nope".into(), None, 400, "`id`"),
        (
            "GET",
            "/api/requests/REQ_0123456789ABCDEF0123".into(),
            None,
            400,
            "not a request id",
        ),
        (
            "GET",
            "/api/requests/req_00000000000000000000".into(),
            None,
            404,
            "unknown request id",
        ),
        (
            "GET",
            "/api/requests?state=maybe".into(),
            None,
            400,
            "`state`",
        ),
        (
            "POST",
            "/api/requests/../audit/approve".into(),
            Some("{}"),
            404,
            "no such endpoint",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"cameras": ["porch"], "colour": "red"}"#),
            400,
            "colour",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"cameras": "porch"}"#),
            400,
            "`cameras`",
        ),
        ("POST", approve.clone(), Some("not json"), 400, "body"),
        (
            "POST",
            approve.clone(),
            Some(r#"{"cameras": ["garage"]}"#),
            400,
            "sharing_off",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"cameras": ["attic"]}"#),
            400,
            "`attic` is not in request",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"from": "2026-01-01T00:00:00Z"}"#),
            400,
            "`to` is missing",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"from": "soon", "to": "later"}"#),
            400,
            "`from`",
        ),
        (
            "POST",
            approve.clone(),
            Some(r#"{"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T01:00:00Z"}"#),
            400,
            "outside what camera",
        ),
        (
            "POST",
            format!("/api/requests/{}/deny", spare.id),
            Some("{}"),
            400,
            "reason",
        ),
        (
            "POST",
            format!("/api/requests/{}/deny", spare.id),
            Some(r#"{"reason": "  "}"#),
            400,
            "needs a reason",
        ),
        (
            "POST",
            format!("/api/requests/{}/approve", parcel.id),
            Some("{}"),
            409,
            "already answered",
        ),
        (
            "POST",
            format!("/api/requests/{}/deny", lapsing.id),
            Some(r#"{"reason": "late"}"#),
            409,
            "expired",
        ),
    ];
    for (method, target, body, status, text) in cases {
        let error = json_of(
            http_send(daemon.http, method, &target, body).expect("request"),
            status,
            &format!("{method} {target} {body:?}"),
        );
        let message = error["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(text),
            "{method} {target}: `{message}` should mention `{text}`"
        );
    }
    let (code, _, stderr) = porchlight(&["requests", "deny", "-c", cfg, "nope", "--reason", "x"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not a request id"), "{stderr}");
    let (code, _, stderr) = porchlight(&[
        "requests", "approve", "-c", cfg, &spare.id, "--camera", "garage",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("an approval cannot add it"), "{stderr}");
    // None of that changed the spare request.
    let untouched = json_of(
        http_get(daemon.http, &format!("/api/requests/{}", spare.id)).expect("GET"),
        200,
        "spare",
    );
    assert_eq!(untouched["state"], "pending");
    daemon.stop();

    // Daemon stopped: the CLI answers on the files and audits as itself.
    let (code, stdout, stderr) = porchlight(&[
        "requests",
        "deny",
        "-c",
        cfg,
        &spare.id,
        "--reason",
        "Not this time.",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("denied"), "{stdout}");
    let (code, stdout, _) =
        porchlight(&["audit", "show", "-c", cfg, "--request", &spare.id, "--json"]);
    assert_eq!(code, 0);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(events.len(), 2, "{stdout}");
    assert!(events.iter().all(|e| e["event"] == "denial"
        && e["component"] == "cli"
        && e["identity"]["kind"] == "owner"));
    let (code, stdout, _) = porchlight(&["requests", "list", "-c", cfg, "--state", "pending"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
    let (code, out, _) = porchlight(&["audit", "verify", "-c", cfg]);
    assert_eq!(code, 0, "{out}");
}
