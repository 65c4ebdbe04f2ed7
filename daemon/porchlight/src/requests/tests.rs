//! The request store's state machine, approvals, expiry, tokens and counts,
//! and the service's audit entries and events.

use std::time::Duration;

use jiff::tz::TimeZone;
use serde_json::json;

use super::*;
use crate::policy::{
    decide, parse_request, validate, AgencyIdentity, CameraPolicy, Decision, GeoPoint, Policy,
    RequestHistory, RequestLimits, SharingLevel, ValidatedRequest,
};

const DALLAS: &str = "Dallas Police Department";
const DAY: Duration = Duration::from_secs(86_400);

fn at(text: &str) -> i64 {
    crate::time::parse_utc_us(text).expect("time")
}

fn now() -> i64 {
    at("2026-11-24T12:00:00Z")
}

fn fingerprint(agency: &str) -> String {
    if agency == DALLAS {
        "ab".repeat(32)
    } else {
        "cd".repeat(32)
    }
}

fn request(agency: &str, case_id: &str, basis: &str) -> ValidatedRequest {
    let body = json!({
        "agency": agency,
        "officer": { "name": "Sgt. A. Rivera", "badge": "D-4471" },
        "case_id": case_id,
        "incident_type": "burglary",
        "legal_basis": basis,
        "location": { "lat": 32.7767, "lon": -96.797 },
        "radius_m": 200,
        "window": { "from": "2026-11-23T21:00:00Z", "to": "2026-11-23T23:00:00Z" },
        "reason": "Break-in reported at 21:30."
    });
    let identity = AgencyIdentity {
        name: agency.into(),
        cert_fingerprint: fingerprint(agency),
    };
    let raw = parse_request(&serde_json::to_vec(&body).expect("json")).expect("parses");
    validate(raw, &identity, &RequestLimits::default(), now()).expect("valid")
}

/// A camera about `metres` north of the incident.
fn camera(name: &str, level: SharingLevel, metres: f64) -> CameraPolicy {
    CameraPolicy {
        location: Some(GeoPoint {
            lat: 32.7767 + metres / 111_195.0,
            lon: -96.797,
        }),
        ..CameraPolicy::new(name, level)
    }
}

fn policy(cameras: Vec<CameraPolicy>) -> Policy {
    Policy {
        privacy: false,
        timezone: TimeZone::UTC,
        max_clip: Duration::from_secs(12 * 3600),
        limits: RequestLimits::default(),
        approval_expiry: DAY,
        download_expiry: 3 * DAY,
        live_share_max: Duration::from_secs(900),
        cameras,
    }
}

/// porch (on_request, 1 h clip limit, audio), driveway (on_request),
/// garage (off), far (on_request, outside the radius: refused but visible).
fn household() -> Policy {
    let mut porch = camera("porch", SharingLevel::OnRequest, 20.0);
    porch.max_clip = Some(Duration::from_secs(3600));
    porch.audio_allowed = true;
    policy(vec![
        porch,
        camera("driveway", SharingLevel::OnRequest, 30.0),
        camera("garage", SharingLevel::Off, 10.0),
        camera("far", SharingLevel::OnRequest, 1000.0),
    ])
}

fn decision(policy: &Policy, request: &ValidatedRequest) -> Decision {
    decide(policy, request, &RequestHistory::default(), now())
}

fn store() -> (tempfile::TempDir, RequestStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RequestStore::open(dir.path()).expect("open");
    (dir, store)
}

fn record(store: &RequestStore, policy: &Policy, basis: &str) -> StoredRequest {
    let request = request(DALLAS, "2026-0042117", basis);
    store
        .record(&request, &decision(policy, &request), now(), DAY)
        .expect("record")
}

fn outcome_of(request: &StoredRequest, camera: &str) -> String {
    request.camera(camera).expect("camera").outcome.clone()
}

fn window(from: &str, to: &str) -> TimeWindow {
    TimeWindow {
        from_us: at(from),
        to_us: at(to),
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_waiting_request_is_partially_approved_with_a_trimmed_window_and_the_rest_denied() {
    let (_dir, store) = store();
    let recorded = record(&store, &household(), "consent");
    assert!(is_request_id(&recorded.id), "{}", recorded.id);
    assert_eq!(recorded.state, RequestState::Pending);
    assert_eq!(recorded.expires_us, now() + 86_400_000_000);
    assert_eq!(outcome_of(&recorded, "porch"), outcome::AWAIT_OWNER);
    assert_eq!(outcome_of(&recorded, "garage"), outcome::REFUSE);
    let porch = recorded.camera("porch").expect("porch");
    // The policy's clip limit: the most the owner can approve.
    assert_eq!(
        porch.approvable_window,
        Some(window("2026-11-23T21:00:00Z", "2026-11-23T22:00:00Z"))
    );
    assert!(porch.audio);
    assert_eq!(recorded.servable_cameras().count(), 0);
    assert_eq!(
        store.get(&recorded.id).expect("get"),
        Some(recorded.clone())
    );

    let trimmed = window("2026-11-23T21:20:00Z", "2026-11-23T21:45:00Z");
    let approved = store
        .approve(
            &recorded.id,
            Some(&strings(&["porch"])),
            Some(trimmed),
            now(),
        )
        .expect("approve");
    assert_eq!(approved.state, RequestState::PartiallyApproved);
    let servable: Vec<&StoredCamera> = approved.servable_cameras().collect();
    assert_eq!(servable.len(), 1);
    assert_eq!(servable[0].camera, "porch");
    assert_eq!(servable[0].outcome, outcome::APPROVED);
    assert_eq!(servable[0].window, Some(trimmed));
    assert_eq!(outcome_of(&approved, "driveway"), outcome::DENIED);
    assert_eq!(outcome_of(&approved, "far"), outcome::REFUSE);
    assert_eq!(
        approved.camera("far").and_then(|c| c.refusal.clone()),
        Some("outside_radius".into())
    );

    // Answered once: both answers are refused now, naming why.
    for result in [
        store.approve(&recorded.id, None, None, now()),
        store.deny(&recorded.id, "changed my mind", now()),
    ] {
        let e = result.expect_err("already answered");
        assert!(
            matches!(e, RequestStoreError::AlreadyAnswered { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("already answered"), "{e}");
    }
    let listed = store
        .list(Some(RequestState::PartiallyApproved))
        .expect("list");
    assert_eq!(listed, vec![approved]);
    assert!(store
        .list(Some(RequestState::Pending))
        .expect("list")
        .is_empty());
}

#[test]
fn approving_everything_waiting_approves_the_request_when_no_visible_camera_is_left_out() {
    let (_dir, store) = store();
    let policy = policy(vec![
        camera("porch", SharingLevel::OnRequest, 20.0),
        camera("driveway", SharingLevel::OnRequest, 30.0),
        camera("garage", SharingLevel::Off, 10.0),
    ]);
    let recorded = record(&store, &policy, "consent");
    let approved = store
        .approve(&recorded.id, None, None, now())
        .expect("approve");
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(
        approved
            .servable_cameras()
            .map(|c| c.camera.as_str())
            .collect::<Vec<_>>(),
        ["porch", "driveway"]
    );
    // Each keeps what the policy allowed it.
    assert_eq!(
        approved.camera("driveway").and_then(|c| c.window),
        Some(window("2026-11-23T21:00:00Z", "2026-11-23T23:00:00Z"))
    );
    assert_eq!(outcome_of(&approved, "garage"), outcome::REFUSE);
}

#[test]
fn an_approval_never_adds_a_refused_camera_nor_widens_the_window() {
    let (_dir, store) = store();
    let recorded = record(&store, &household(), "consent");
    let id = recorded.id.as_str();
    let e = store
        .approve(id, Some(&strings(&["porch", "garage"])), None, now())
        .expect_err("garage is off");
    assert!(
        matches!(&e, RequestStoreError::CameraNotApprovable { camera, .. } if camera == "garage"),
        "{e}"
    );
    assert!(e.to_string().contains("sharing_off"), "{e}");
    let e = store
        .approve(id, Some(&strings(&["far"])), None, now())
        .expect_err("far is outside the radius");
    assert!(e.to_string().contains("outside_radius"), "{e}");
    let e = store
        .approve(id, Some(&strings(&["attic"])), None, now())
        .expect_err("no such camera");
    assert!(
        matches!(e, RequestStoreError::CameraNotInRequest { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("porch, driveway, garage, far"),
        "{e}"
    );
    // Past the porch's 1 h clip limit, and before the asked window.
    for outside in [
        window("2026-11-23T21:30:00Z", "2026-11-23T22:30:00Z"),
        window("2026-11-23T20:59:00Z", "2026-11-23T21:30:00Z"),
    ] {
        let e = store
            .approve(id, Some(&strings(&["porch"])), Some(outside), now())
            .expect_err("outside");
        assert!(matches!(e, RequestStoreError::WindowOutside { .. }), "{e}");
        assert!(e.to_string().contains("2026-11-23T22:00:00Z"), "{e}");
    }
    // The driveway may give two hours, the porch one: a window must fit both.
    let e = store
        .approve(
            id,
            None,
            Some(window("2026-11-23T21:00:00Z", "2026-11-23T22:30:00Z")),
            now(),
        )
        .expect_err("too long for the porch");
    assert!(e.to_string().contains("`porch`"), "{e}");
    let e = store
        .approve(
            id,
            None,
            Some(window("2026-11-23T21:30:00Z", "2026-11-23T21:30:00Z")),
            now(),
        )
        .expect_err("empty");
    assert!(matches!(e, RequestStoreError::EmptyWindow { .. }), "{e}");
    let e = store.approve(id, Some(&[]), None, now()).expect_err("none");
    assert!(matches!(e, RequestStoreError::NoCamerasNamed), "{e}");
    let e = store
        .approve("req_00000000000000000000", None, None, now())
        .expect_err("unknown");
    assert!(matches!(e, RequestStoreError::UnknownRequest(_)), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // None of the refused attempts changed anything.
    assert_eq!(store.get(id).expect("get"), Some(recorded));
}

#[test]
fn an_emergency_on_emergency_auto_cameras_is_approved_at_once() {
    let (_dir, store) = store();
    let policy = policy(vec![
        camera("porch", SharingLevel::EmergencyAuto, 20.0),
        camera("garage", SharingLevel::Off, 10.0),
    ]);
    let recorded = record(&store, &policy, "emergency");
    assert_eq!(recorded.state, RequestState::Approved);
    assert_eq!(outcome_of(&recorded, "porch"), outcome::SERVE);
    assert_eq!(recorded.servable_cameras().count(), 1);
    let e = store
        .approve(&recorded.id, None, None, now())
        .expect_err("nothing waits");
    assert!(
        matches!(e, RequestStoreError::AlreadyAnswered { .. }),
        "{e}"
    );
    // Served and waiting cameras together: partially approved, still answerable.
    let mixed = super::tests::policy(vec![
        camera("porch", SharingLevel::EmergencyAuto, 20.0),
        camera("driveway", SharingLevel::OnRequest, 20.0),
    ]);
    let recorded = record(&store, &mixed, "emergency");
    assert_eq!(recorded.state, RequestState::PartiallyApproved);
    let denied = store
        .deny(&recorded.id, "Not the driveway.", now())
        .expect("deny");
    assert_eq!(denied.state, RequestState::PartiallyApproved);
    assert_eq!(outcome_of(&denied, "porch"), outcome::SERVE);
    assert_eq!(outcome_of(&denied, "driveway"), outcome::DENIED);
    assert_eq!(denied.denial_reason.as_deref(), Some("Not the driveway."));
}

#[test]
fn registered_cameras_are_shared_only_when_the_owner_names_them() {
    let (_dir, store) = store();
    let policy = policy(vec![
        camera("front", SharingLevel::Registered, 20.0),
        camera("porch", SharingLevel::OnRequest, 20.0),
    ]);
    let first = record(&store, &policy, "consent");
    assert_eq!(outcome_of(&first, "front"), outcome::SHOW_TO_OWNER_ONLY);
    let approved = store
        .approve(&first.id, None, None, now())
        .expect("approve");
    assert_eq!(outcome_of(&approved, "porch"), outcome::APPROVED);
    assert_eq!(outcome_of(&approved, "front"), outcome::DENIED);
    assert_eq!(approved.state, RequestState::PartiallyApproved);

    let second = record(&store, &policy, "consent");
    let approved = store
        .approve(&second.id, Some(&strings(&["front"])), None, now())
        .expect("approve front");
    let front = approved.camera("front").expect("front");
    assert_eq!(front.outcome, outcome::APPROVED);
    assert_eq!(front.window, Some(second.window));
    assert!(!front.audio, "a registered camera never shares audio");

    // Only registered cameras left: "approve everything" must be explicit.
    let only_front = super::tests::policy(vec![camera("front", SharingLevel::Registered, 20.0)]);
    let third = record(&store, &only_front, "consent");
    assert_eq!(third.state, RequestState::Pending);
    let e = store
        .approve(&third.id, None, None, now())
        .expect_err("explicit");
    assert!(e.to_string().contains("front"), "{e}");
}

#[test]
fn unanswered_requests_expire_and_can_no_longer_be_answered() {
    let (_dir, store) = store();
    let request = request(DALLAS, "2026-0042117", "consent");
    let policy = household();
    let recorded = store
        .record(
            &request,
            &decision(&policy, &request),
            now(),
            Duration::from_secs(60),
        )
        .expect("record");
    let deadline = now() + 60_000_000;
    assert!(store.expire_due(deadline - 1).expect("expire").is_empty());
    let e = store
        .approve(&recorded.id, None, None, deadline)
        .expect_err("too late");
    assert!(matches!(e, RequestStoreError::Expired { .. }), "{e}");
    assert!(
        e.to_string().contains("expired at 2026-11-24T12:01:00Z"),
        "{e}"
    );

    let expired = store.expire_due(deadline).expect("expire");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state, RequestState::Expired);
    assert_eq!(outcome_of(&expired[0], "porch"), outcome::EXPIRED);
    assert_eq!(outcome_of(&expired[0], "garage"), outcome::REFUSE);
    assert_eq!(expired[0].servable_cameras().count(), 0);
    assert!(store.expire_due(deadline + 1).expect("again").is_empty());
    let e = store
        .deny(&recorded.id, "too late anyway", deadline)
        .expect_err("expired");
    assert_eq!(e.kind(), ErrorKind::Conflict);
}

#[test]
fn a_request_refused_whole_is_denied_with_the_policys_reason() {
    let (_dir, store) = store();
    let mut policy = household();
    policy.privacy = true;
    let recorded = record(&store, &policy, "emergency");
    assert_eq!(recorded.state, RequestState::Denied);
    assert_eq!(recorded.denial_reason.as_deref(), Some("privacy_mode"));
    let e = store.deny(&recorded.id, "no", now()).expect_err("answered");
    assert!(
        matches!(e, RequestStoreError::AlreadyAnswered { .. }),
        "{e}"
    );
    let e = store
        .deny(&recorded.id, "   ", now())
        .expect_err("empty reason");
    assert!(matches!(e, RequestStoreError::BadReason), "{e}");
}

#[test]
fn history_counts_recorded_requests_but_not_rate_limit_refusals() {
    let (dir, store) = store();
    let policy = household();
    let case = "2026-0042117";
    let dallas = request(DALLAS, case, "consent");
    let hour = 3_600_000_000;
    let record_at = |request: &ValidatedRequest, history: RequestHistory, when: i64| {
        store
            .record(
                request,
                &decide(&policy, request, &history, when),
                when,
                DAY,
            )
            .expect("record")
    };
    // Two days ago (same case, outside the 24 h), an hour ago, another case now.
    record_at(&dallas, RequestHistory::default(), now() - 48 * hour);
    record_at(&dallas, RequestHistory::default(), now() - hour);
    record_at(
        &request(DALLAS, "2026-0099999", "consent"),
        RequestHistory::default(),
        now(),
    );
    // Another agency's requests count for that agency only.
    record_at(
        &request("Irving Police Department", case, "consent"),
        RequestHistory::default(),
        now(),
    );
    // Refused for the case limit: recorded, never counted.
    let refused = record_at(
        &dallas,
        RequestHistory {
            earlier_requests_for_case: 2,
            agency_requests_last_24h: 0,
        },
        now(),
    );
    assert_eq!(refused.denial_reason.as_deref(), Some("case_limit_reached"));

    // Another handle on the same file (the CLI beside the daemon) sees it all.
    let other = RequestStore::open(dir.path()).expect("second handle");
    for handle in [&store, &other] {
        assert_eq!(
            handle.history(DALLAS, case, now()).expect("history"),
            RequestHistory {
                earlier_requests_for_case: 2,
                agency_requests_last_24h: 2,
            }
        );
    }
    assert_eq!(
        store
            .history("Irving Police Department", "2026-0099999", now())
            .expect("history"),
        RequestHistory {
            earlier_requests_for_case: 0,
            agency_requests_last_24h: 1,
        }
    );
    assert_eq!(store.list(None).expect("list").len(), 5);
}

#[test]
fn download_tokens_are_bound_to_request_camera_and_certificate() {
    let (dir, store) = store();
    let mut porch = camera("porch", SharingLevel::EmergencyAuto, 20.0);
    porch.audio_allowed = true;
    let policy = policy(vec![
        porch,
        camera("driveway", SharingLevel::OnRequest, 20.0),
    ]);
    let served = record(&store, &policy, "emergency");
    let other = record(&store, &policy, "emergency");
    let fp = fingerprint(DALLAS);
    let expires = now() + 3 * 86_400_000_000;

    let token = store
        .issue_token(&served.id, "porch", &fp, expires)
        .expect("token");
    assert_eq!(token.len(), 43, "32 bytes, base64url, no padding: {token}");
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let grant = store
        .check_token(&token, &served.id, "porch", &fp, now())
        .expect("valid");
    assert_eq!(
        grant,
        TokenGrant {
            request_id: served.id.clone(),
            camera: "porch".into(),
            window: served
                .camera("porch")
                .and_then(|c| c.window)
                .expect("window"),
            audio: true,
            expires_us: expires,
        }
    );

    // Only the hash is stored.
    let raw = std::fs::read(dir.path().join("requests.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("requests.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }

    let invalid = |result: Result<TokenGrant, TokenError>| {
        assert!(matches!(result, Err(TokenError::Invalid)), "{result:?}")
    };
    invalid(store.check_token(&token, &other.id, "porch", &fp, now()));
    invalid(store.check_token(&token, &served.id, "driveway", &fp, now()));
    invalid(store.check_token(&token, &served.id, "porch", &fingerprint("x"), now()));
    invalid(store.check_token("not-a-token", &served.id, "porch", &fp, now()));
    let forged =
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 32]);
    invalid(store.check_token(&forged, &served.id, "porch", &fp, now()));
    assert!(matches!(
        store.check_token(&token, &served.id, "porch", &fp, expires),
        Err(TokenError::Expired)
    ));

    // Not servable, or asked for by another certificate: no token.
    let e = store
        .issue_token(&served.id, "driveway", &fp, expires)
        .expect_err("waiting");
    assert!(matches!(e, RequestStoreError::NotServable { .. }), "{e}");
    let e = store
        .issue_token(&served.id, "porch", &fingerprint("x"), expires)
        .expect_err("other certificate");
    assert!(
        matches!(e, RequestStoreError::CertificateMismatch { .. }),
        "{e}"
    );

    let second = store
        .issue_token(&other.id, "porch", &fp, expires)
        .expect("token");
    assert_ne!(second, token);
    assert_eq!(store.revoke_tokens(Some(&served.id)).expect("revoke"), 1);
    assert_eq!(store.revoke_tokens(Some(&served.id)).expect("again"), 0);
    assert!(matches!(
        store.check_token(&token, &served.id, "porch", &fp, now()),
        Err(TokenError::Revoked)
    ));
    assert!(store
        .check_token(&second, &other.id, "porch", &fp, now())
        .is_ok());
    assert_eq!(store.revoke_tokens(None).expect("revoke all"), 1);
}

#[test]
fn the_service_audits_and_announces_every_change() {
    use crate::audit::{AuditLog, AuditQuery, EventType, IdentityKind};
    let (dir, store) = store();
    let audit = AuditLog::open(dir.path()).expect("audit");
    let bus = crate::events::EventBus::new();
    let mut events = bus.subscribe();
    let service = RequestService::new(store.clone(), audit.clone(), bus);
    let request = request(DALLAS, "2026-0042117", "consent");
    let policy = household();
    let decided = decision(&policy, &request);
    let answered = store
        .record(&request, &decided, crate::time::now_utc_us(), DAY)
        .expect("record");
    let lapsed = store
        .record(
            &request,
            &decided,
            crate::time::now_utc_us() - 2 * 86_400_000_000,
            DAY,
        )
        .expect("record");

    let approved = service
        .approve_blocking(&answered.id, Some(&strings(&["porch"])), None)
        .expect("approve");
    assert_eq!(approved.state, RequestState::PartiallyApproved);
    let expired = service
        .list_blocking(Some(RequestState::Expired))
        .expect("list");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, lapsed.id);

    let entries = |id: &str| {
        audit
            .query(&AuditQuery {
                request_id: Some(id.to_string()),
                ..AuditQuery::default()
            })
            .expect("query")
    };
    let answered_entries = entries(&answered.id);
    let summary: Vec<(EventType, Option<String>, IdentityKind)> = answered_entries
        .iter()
        .map(|e| {
            (
                e.event.event.clone(),
                e.event.object.camera.clone(),
                e.event.identity.kind.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                EventType::Approval,
                Some("porch".into()),
                IdentityKind::Owner
            ),
            (
                EventType::Denial,
                Some("driveway".into()),
                IdentityKind::Owner
            ),
        ]
    );
    let porch_window = approved
        .camera("porch")
        .and_then(|c| c.window)
        .expect("window");
    assert_eq!(
        answered_entries[0].event.object.window_from_us,
        Some(porch_window.from_us)
    );
    assert_eq!(
        answered_entries[0].event.object.window_to_us,
        Some(porch_window.to_us)
    );
    let lapsed_entries = entries(&lapsed.id);
    assert_eq!(lapsed_entries.len(), 2, "porch and driveway expired");
    assert!(lapsed_entries.iter().all(
        |e| e.event.event == EventType::Expiry && e.event.identity.kind == IdentityKind::System
    ));

    let mut seen = Vec::new();
    while let Ok(crate::events::DaemonEvent::RequestChanged { id, state }) = events.try_recv() {
        seen.push((id, state));
    }
    assert_eq!(
        seen,
        [
            (answered.id.clone(), RequestState::PartiallyApproved),
            (lapsed.id.clone(), RequestState::Expired),
        ]
    );

    // A refused answer changes nothing and is neither audited nor announced.
    let e = service
        .deny_blocking(&answered.id, "no")
        .expect_err("answered");
    assert!(
        matches!(
            e,
            ServiceError::Store(RequestStoreError::AlreadyAnswered { .. })
        ),
        "{e}"
    );
    assert_eq!(entries(&answered.id).len(), 2);
    assert!(events.try_recv().is_err());
}

#[test]
fn request_states_parse_from_their_names() {
    for state in RequestState::ALL {
        assert_eq!(state.as_str().parse::<RequestState>(), Ok(state));
        assert_eq!(
            serde_json::to_value(state).expect("json"),
            json!(state.as_str())
        );
    }
    let e = "maybe".parse::<RequestState>().expect_err("unknown");
    assert!(e.contains("pending, approved"), "{e}");
}

// ------------------------------------------------ schema 2: distance, history

/// Hand computation: 1 m north is 1/111 195 of a degree of latitude (the
/// `camera` helper), and the haversine distance along a meridian is
/// R·Δφ = 6 371 008.8 m · (m / 111 195)·π/180 ≈ m · 1.000 000 (so 20 m and
/// 1000 m come back as 20 and 1000 to the metre).
#[test]
fn each_camera_keeps_its_distance_from_the_incident() {
    let (_dir, store) = store();
    let policy = household();
    let request = request(DALLAS, "2026-0042117", "consent");
    let stored = store
        .record_located(
            &request,
            &decision(&policy, &request),
            &policy.cameras,
            now(),
            DAY,
        )
        .expect("record");
    let metres = |name: &str| stored.camera(name).expect("camera").distance_m;
    assert_eq!(metres("porch"), Some(20));
    assert_eq!(metres("driveway"), Some(30));
    assert_eq!(metres("garage"), Some(10));
    // Outside the 200 m radius: refused, but the owner sees how far.
    assert_eq!(metres("far"), Some(1000));
    assert_eq!(
        stored.location,
        Some(GeoPoint {
            lat: 32.7767,
            lon: -96.797
        })
    );
    assert_eq!(stored.radius_m, Some(200.0));
    // As read back, and in the owner API's JSON.
    let read = store.get(&stored.id).expect("get").expect("there");
    assert_eq!(read, stored);
    let json = serde_json::to_value(&read).expect("json");
    assert_eq!(json["cameras"][0]["distance_m"], json!(20));
    assert_eq!(json["radius_m"], json!(200.0));

    // A camera without a location has no distance.
    let mut unplaced = household();
    unplaced.cameras[0].location = None;
    let stored = store
        .record_located(
            &request,
            &decision(&unplaced, &request),
            &unplaced.cameras,
            now(),
            DAY,
        )
        .expect("record");
    assert_eq!(stored.camera("porch").expect("porch").distance_m, None);
}

/// The schema each release wrote, as `store::schema::dump_schema` prints it.
const RELEASED_SCHEMAS: &[(usize, &str)] = &[
    (
        1,
        include_str!("../../../../tests/data/requests-schema/v1.sql"),
    ),
    (
        2,
        include_str!("../../../../tests/data/requests-schema/v2.sql"),
    ),
    (
        3,
        include_str!("../../../../tests/data/requests-schema/v3.sql"),
    ),
];

fn at_schema(version: usize) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().expect("memory db");
    crate::store::schema::run_migrations(
        &conn,
        "requests.db",
        &super::store::ALL_MIGRATIONS[..version],
    )
    .expect("migrate");
    conn
}

#[test]
fn released_request_schemas_are_what_their_migrations_make() {
    assert_eq!(
        RELEASED_SCHEMAS.last().map(|r| r.0),
        Some(super::store::ALL_MIGRATIONS.len()),
        "add tests/data/requests-schema/v{}.sql",
        super::store::ALL_MIGRATIONS.len()
    );
    for &(version, fixture) in RELEASED_SCHEMAS {
        let made = crate::store::schema::dump_schema(&at_schema(version)).expect("dump");
        assert_eq!(
            made, fixture,
            "migrations 1..={version} no longer make the released requests.db schema v{version}"
        );
    }
}

/// A `requests.db` as the previous release (schema 1) left it: a waiting
/// request and an answered one with a token. It opens, migrates, and lists
/// as before; the new columns read as unknown.
#[test]
fn a_schema_1_request_database_upgrades_and_still_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::store::paths::requests_db_path(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        crate::store::schema::run_migrations(
            &conn,
            "requests.db",
            &super::store::ALL_MIGRATIONS[..1],
        )
        .expect("v1");
        conn.execute_batch(
            r#"
            INSERT INTO requests VALUES ('req_00000000000000000001', 'Dallas Police Department',
              'abab', '{"name":"Sgt. A. Rivera","badge":"D-4471"}', '2026-0042117', 'burglary',
              '{"kind":"consent"}', 'Break-in reported at 21:30.', 1795467600000000,
              1795474800000000, 1795521600000000, 1795608000000000, 'pending', NULL, NULL, NULL);
            INSERT INTO request_cameras VALUES ('req_00000000000000000001', 0, 'porch',
              'await_owner', 1795467600000000, 1795471200000000, 1795467600000000,
              1795471200000000, 1, NULL, 1);
            INSERT INTO requests VALUES ('req_00000000000000000002', 'Dallas Police Department',
              'abab', '{"name":"Sgt. A. Rivera","badge":"D-4471"}', '2026-0042118', 'theft',
              '{"kind":"warrant","reference":"W-1"}', 'Parcel theft.', 1795467600000000,
              1795474800000000, 1795520000000000, 1795606400000000, 'denied', NULL,
              'not my street', 1795520500000000);
            INSERT INTO request_cameras VALUES ('req_00000000000000000002', 0, 'porch',
              'denied', NULL, NULL, 1795467600000000, 1795471200000000, 0, NULL, 1);
            "#,
        )
        .expect("v1 rows");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, 1);
    }

    let store = RequestStore::open(dir.path()).expect("a schema 1 database opens");
    let version: i64 = store
        .with_conn(|conn| {
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(super::store::db("version"))
        })
        .expect("version");
    assert_eq!(version, super::store::ALL_MIGRATIONS.len() as i64);
    let listed = store.list(None).expect("list");
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        ["req_00000000000000000001", "req_00000000000000000002"]
    );
    let waiting = &listed[0];
    assert_eq!(waiting.state, RequestState::Pending);
    assert_eq!(waiting.location, None);
    assert_eq!(waiting.radius_m, None);
    assert_eq!(waiting.cameras[0].distance_m, None);
    assert_eq!(listed[1].denial_reason.as_deref(), Some("not my street"));
    // It can still be answered, and its history starts empty.
    let approved = store
        .approve("req_00000000000000000001", None, None, 1795521700000000)
        .expect("approve an upgraded request");
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(
        store
            .activity("req_00000000000000000001")
            .expect("activity"),
        Activity::default()
    );
}

#[test]
fn deliveries_and_downloads_are_kept_per_request() {
    let (_dir, store) = store();
    let recorded = record(&store, &household(), "consent");
    let other = record(&store, &household(), "consent");
    let id = recorded.id.as_str();
    store
        .record_delivery(id, "porch", 1_000, &"aa".repeat(32), now() + 1)
        .expect("delivery");
    // Made again after the first was lost: the newest counts.
    store
        .record_delivery(id, "porch", 1_200, &"bb".repeat(32), now() + 2)
        .expect("delivery again");
    let start = |range: Option<&str>, status: u16, planned: u64, at: i64| DownloadStart {
        request_id: id.to_string(),
        camera: "porch".into(),
        agency: DALLAS.into(),
        cert_fingerprint: fingerprint(DALLAS),
        range: range.map(str::to_string),
        status,
        bytes_planned: planned,
        started_us: at,
    };
    let whole = store
        .start_download(&start(None, 200, 1_200, now() + 10))
        .expect("start");
    let cut = store
        .start_download(&start(Some("bytes=0-99"), 206, 100, now() + 20))
        .expect("start");
    let running = store
        .start_download(&start(None, 200, 1_200, now() + 30))
        .expect("start");
    store
        .finish_download(whole, 1_200, now() + 11)
        .expect("finish");
    store.finish_download(cut, 40, now() + 21).expect("finish");

    let activity = store.activity(id).expect("activity");
    assert_eq!(
        activity.deliveries,
        vec![Delivery {
            camera: "porch".into(),
            bytes: 1_200,
            sha256: "bb".repeat(32),
            built_us: now() + 2,
            removed_us: None,
        }]
    );
    let seen: Vec<(u16, u64, bool, Option<i64>)> = activity
        .downloads
        .iter()
        .map(|d| (d.status, d.bytes_sent, d.complete, d.finished_us))
        .collect();
    assert_eq!(
        seen,
        [
            (200, 1_200, true, Some(now() + 11)),
            (206, 40, false, Some(now() + 21)),
            (200, 0, false, None),
        ]
    );
    assert_eq!(activity.downloads[1].range.as_deref(), Some("bytes=0-99"));
    let _ = running;
    let all = store.all_activity().expect("all");
    assert_eq!(all.get(id), Some(&activity));
    assert!(!all.contains_key(&other.id));
    let json = serde_json::to_value(&activity).expect("json");
    assert_eq!(
        json["deliveries"][0]["built"],
        json!("2026-11-24T12:00:00.000002Z")
    );
}

// ------------------------------------------ schema 3: removals, live views

fn user_version(store: &RequestStore) -> i64 {
    store
        .with_conn(|conn| {
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(super::store::db("version"))
        })
        .expect("version")
}

/// A `requests.db` as schema 2 left it: a request with a package and a
/// finished download. It opens at schema 3 with both kept, the package not
/// marked removed and no live views.
#[test]
fn a_schema_2_request_database_upgrades_keeping_its_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::store::paths::requests_db_path(dir.path());
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        crate::store::schema::run_migrations(
            &conn,
            "requests.db",
            &super::store::ALL_MIGRATIONS[..2],
        )
        .expect("v2");
        conn.execute_batch(
            r#"
            INSERT INTO requests VALUES ('req_00000000000000000003', 'Dallas Police Department',
              'abab', '{"name":"Sgt. A. Rivera","badge":"D-4471"}', '2026-0042119', 'burglary',
              '{"kind":"consent"}', 'Break-in reported at 21:30.', 1795467600000000,
              1795474800000000, 1795521600000000, 1795608000000000, 'approved', NULL, NULL,
              1795521700000000, 32.78, -96.8, 200.0);
            INSERT INTO request_cameras VALUES ('req_00000000000000000003', 0, 'porch',
              'approved', 1795467600000000, 1795471200000000, 1795467600000000,
              1795471200000000, 1, NULL, 1, 12);
            INSERT INTO deliveries VALUES ('req_00000000000000000003', 'porch', 4096,
              'cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd',
              1795521800000000);
            INSERT INTO downloads VALUES (1, 'req_00000000000000000003', 'porch',
              'Dallas Police Department', 'abab', 1795521900000000, NULL, 200, 4096, 4096,
              1795521901000000);
            "#,
        )
        .expect("v2 rows");
    }

    let store = RequestStore::open(dir.path()).expect("a schema 2 database opens");
    assert_eq!(user_version(&store), 3);
    let id = "req_00000000000000000003";
    let activity = store.activity(id).expect("activity");
    assert_eq!(
        activity.deliveries,
        vec![Delivery {
            camera: "porch".into(),
            bytes: 4096,
            sha256: "cd".repeat(32),
            built_us: 1795521800000000,
            removed_us: None,
        }]
    );
    assert_eq!(activity.downloads.len(), 1);
    assert!(activity.downloads[0].complete);
    assert!(activity.live_views.is_empty());
    assert_eq!(
        store.get(id).expect("get").expect("kept").cameras[0].distance_m,
        Some(12)
    );
    // The upgraded package can be marked removed like a new one.
    assert_eq!(
        store
            .mark_deliveries_removed(id, 1795600000000000)
            .expect("mark"),
        1
    );
    assert_eq!(
        store.activity(id).expect("activity").deliveries[0].removed_us,
        Some(1795600000000000)
    );
}

#[test]
fn removed_packages_are_marked_once_and_a_new_package_is_present_again() {
    let (_dir, store) = store();
    let first = record(&store, &household(), "consent");
    let second = record(&store, &household(), "consent");
    for request in [&first, &second] {
        store
            .record_delivery(&request.id, "porch", 1_000, &"aa".repeat(32), now() + 1)
            .expect("delivery");
    }
    // Expiry removes one request's packages; a second pass changes nothing.
    assert_eq!(
        store
            .mark_deliveries_removed(&first.id, now() + 100)
            .expect("mark"),
        1
    );
    assert_eq!(
        store
            .mark_deliveries_removed(&first.id, now() + 200)
            .expect("mark again"),
        0
    );
    let removed = |id: &str| store.activity(id).expect("activity").deliveries[0].removed_us;
    assert_eq!(removed(&first.id), Some(now() + 100));
    assert_eq!(removed(&second.id), None);
    // Leaving the relay program marks every package still present.
    assert_eq!(
        store.mark_all_deliveries_removed(now() + 300).expect("all"),
        1
    );
    assert_eq!(removed(&first.id), Some(now() + 100));
    assert_eq!(removed(&second.id), Some(now() + 300));
    // A package made again is on disk again.
    store
        .record_delivery(&second.id, "porch", 1_000, &"aa".repeat(32), now() + 400)
        .expect("made again");
    assert_eq!(removed(&second.id), None);
    let json = serde_json::to_value(store.activity(&first.id).expect("activity")).expect("json");
    assert_eq!(
        json["deliveries"][0]["removed"],
        json!("2026-11-24T12:00:00.0001Z")
    );
}

#[test]
fn live_views_count_audited_minutes_and_keep_why_they_ended() {
    let (_dir, store) = store();
    let request = record(&store, &household(), "emergency");
    let other = record(&store, &household(), "consent");
    let minute = |share: &'static str, minutes: u64, at: i64| LiveMinute {
        share,
        request_id: &request.id,
        camera: "porch",
        agency: DALLAS,
        cert_fingerprint: "abab",
        minutes,
        at_us: at,
    };
    let m = 60_000_000;
    // A stream of three minutes; the agency leaves, comes back for a fourth,
    // then the owner ends the share.
    for (n, at) in [(1, 0), (2, m), (3, 2 * m)] {
        store
            .record_live_minute(&minute("ls_0000000000000001", n, now() + at))
            .expect("minute");
    }
    store
        .end_live_view("ls_0000000000000001", LIVE_VIEW_LEFT, now() + 2 * m + 5)
        .expect("left");
    let view = |store: &RequestStore| store.activity(&request.id).expect("activity").live_views;
    assert_eq!(view(&store)[0].end_reason.as_deref(), Some("left"));
    store
        .record_live_minute(&minute("ls_0000000000000001", 4, now() + 5 * m))
        .expect("back");
    assert_eq!(view(&store)[0].end_reason, None);
    assert_eq!(view(&store)[0].ended_us, None);
    store
        .end_live_view("ls_0000000000000001", "ended_by_owner", now() + 5 * m + 7)
        .expect("owner");
    // A second stream of the same share stopping later does not hide why.
    store
        .end_live_view("ls_0000000000000001", LIVE_VIEW_LEFT, now() + 5 * m + 9)
        .expect("other stream");
    // Another share, still running.
    store
        .record_live_minute(&LiveMinute {
            camera: "driveway",
            ..minute("ls_0000000000000002", 1, now() + 6 * m)
        })
        .expect("minute");

    assert_eq!(
        view(&store),
        vec![
            LiveView {
                share: "ls_0000000000000001".into(),
                camera: "porch".into(),
                agency: DALLAS.into(),
                cert_fingerprint: "abab".into(),
                started_us: now(),
                last_minute_us: now() + 5 * m,
                minutes: 4,
                ended_us: Some(now() + 5 * m + 7),
                end_reason: Some("ended_by_owner".into()),
            },
            LiveView {
                share: "ls_0000000000000002".into(),
                camera: "driveway".into(),
                agency: DALLAS.into(),
                cert_fingerprint: "abab".into(),
                started_us: now() + 6 * m,
                last_minute_us: now() + 6 * m,
                minutes: 1,
                ended_us: None,
                end_reason: None,
            },
        ]
    );
    assert!(store
        .activity(&other.id)
        .expect("activity")
        .live_views
        .is_empty());
    let all = store.all_activity().expect("all");
    assert_eq!(all[&request.id].live_views.len(), 2);
    let json = serde_json::to_value(store.activity(&request.id).expect("a")).expect("json");
    assert_eq!(json["live_views"][0]["minutes"], json!(4));
    assert_eq!(json["live_views"][0]["end_reason"], json!("ended_by_owner"));
    assert_eq!(json["live_views"][1]["ended"], json!(null));
}
