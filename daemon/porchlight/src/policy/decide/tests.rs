use super::*;
use crate::policy::request::{parse_request, validate, AgencyIdentity};
use crate::policy::schedule::{ScheduleWindow, TimeOfDay, Weekdays};
use serde_json::{json, Value};

const INCIDENT: GeoPoint = GeoPoint {
    lat: 32.7767,
    lon: -96.7970,
};

/// About `metres` north of the incident.
fn north(metres: f64) -> GeoPoint {
    GeoPoint {
        lat: INCIDENT.lat + metres / 111_195.0,
        lon: INCIDENT.lon,
    }
}

fn at(text: &str) -> i64 {
    crate::time::parse_utc_us(text).expect("time")
}

/// A Tuesday, noon UTC.
fn now() -> i64 {
    at("2026-11-24T12:00:00Z")
}

fn camera(name: &str, level: SharingLevel, metres: f64) -> CameraPolicy {
    CameraPolicy {
        location: Some(north(metres)),
        ..CameraPolicy::new(name, level)
    }
}

fn policy(cameras: Vec<CameraPolicy>) -> Policy {
    Policy {
        privacy: false,
        timezone: TimeZone::UTC,
        max_clip: Duration::from_secs(12 * 3600),
        limits: RequestLimits::default(),
        approval_expiry: Duration::from_secs(86_400),
        download_expiry: Duration::from_secs(3 * 86_400),
        live_share_max: Duration::from_secs(900),
        cameras,
    }
}

fn request_with(basis: &str, extra: Value) -> ValidatedRequest {
    let mut body = json!({
        "agency": "Dallas Police Department",
        "officer": { "name": "Sgt. A. Rivera", "badge": "D-4471" },
        "case_id": "2026-0042117",
        "incident_type": "burglary",
        "legal_basis": basis,
        "location": { "lat": INCIDENT.lat, "lon": INCIDENT.lon },
        "radius_m": 200,
        "window": { "from": "2026-11-23T21:00:00Z", "to": "2026-11-23T23:00:00Z" },
        "reason": "Break-in reported at 21:30."
    });
    if basis == "warrant" {
        body["warrant_reference"] = json!("SW-2026-118");
    }
    if let (Some(target), Value::Object(extra)) = (body.as_object_mut(), extra) {
        target.extend(extra);
    }
    let agency = AgencyIdentity {
        name: "Dallas Police Department".into(),
        cert_fingerprint: "ab".repeat(32),
    };
    let bytes = serde_json::to_vec(&body).expect("json");
    validate(
        parse_request(&bytes).expect("parses"),
        &agency,
        &RequestLimits::default(),
        now(),
    )
    .expect("valid")
}

fn request(basis: &str) -> ValidatedRequest {
    request_with(basis, json!({}))
}

fn outcome_of(decision: &Decision, name: &str) -> Outcome {
    decision
        .cameras
        .iter()
        .find(|c| c.camera == name)
        .map(|c| c.outcome.clone())
        .unwrap_or_else(|| panic!("no decision for {name}: {decision:?}"))
}

fn refused(reason: Refusal) -> Outcome {
    Outcome::Refuse { reason }
}

fn full_window() -> TimeWindow {
    TimeWindow {
        from_us: at("2026-11-23T21:00:00Z"),
        to_us: at("2026-11-23T23:00:00Z"),
    }
}

#[test]
fn each_level_gives_its_outcome_for_an_emergency() {
    let p = policy(vec![
        camera("off", SharingLevel::Off, 10.0),
        camera("registered", SharingLevel::Registered, 10.0),
        camera("on-request", SharingLevel::OnRequest, 10.0),
        camera("auto", SharingLevel::EmergencyAuto, 10.0),
        camera("live", SharingLevel::EmergencyLive, 10.0),
    ]);
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    let serve = Outcome::Serve {
        window: full_window(),
        audio: false,
    };
    let wait = Outcome::AwaitOwner {
        window: full_window(),
        audio: false,
    };
    assert_eq!(outcome_of(&d, "off"), refused(Refusal::SharingOff));
    assert_eq!(outcome_of(&d, "registered"), Outcome::ShowToOwnerOnly);
    assert_eq!(outcome_of(&d, "on-request"), wait);
    assert_eq!(outcome_of(&d, "auto"), serve);
    assert_eq!(outcome_of(&d, "live"), serve);
    assert!(d.serves_any() && d.awaits_owner());
    assert_eq!(d.whole_request, None);
}

#[test]
fn only_emergencies_are_served_without_the_owner() {
    let p = policy(vec![camera("auto", SharingLevel::EmergencyAuto, 10.0)]);
    for basis in ["consent", "warrant"] {
        let d = decide(&p, &request(basis), &RequestHistory::default(), now());
        assert!(
            matches!(outcome_of(&d, "auto"), Outcome::AwaitOwner { .. }),
            "{basis}: {d:?}"
        );
        assert!(!d.serves_any());
    }
}

#[test]
fn the_privacy_switch_overrides_everything() {
    let mut p = policy(vec![camera("auto", SharingLevel::EmergencyLive, 10.0)]);
    p.privacy = true;
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    assert_eq!(d.whole_request, Some(Refusal::PrivacyMode));
    assert_eq!(outcome_of(&d, "auto"), refused(Refusal::PrivacyMode));
    assert_eq!(Refusal::PrivacyMode.agency_code(), "not_available");
}

#[test]
fn rate_limits_refuse_the_whole_request() {
    let p = policy(vec![camera("auto", SharingLevel::EmergencyAuto, 10.0)]);
    let case = RequestHistory {
        earlier_requests_for_case: 2,
        agency_requests_last_24h: 2,
    };
    let d = decide(&p, &request("emergency"), &case, now());
    assert_eq!(d.whole_request, Some(Refusal::CaseLimitReached));
    let day = RequestHistory {
        earlier_requests_for_case: 1,
        agency_requests_last_24h: 20,
    };
    let d = decide(&p, &request("emergency"), &day, now());
    assert_eq!(d.whole_request, Some(Refusal::AgencyDailyLimitReached));
    let below = RequestHistory {
        earlier_requests_for_case: 1,
        agency_requests_last_24h: 19,
    };
    assert!(decide(&p, &request("emergency"), &below, now()).serves_any());
}

#[test]
fn limits_tightened_after_validation_still_apply() {
    let mut p = policy(vec![camera("auto", SharingLevel::EmergencyAuto, 10.0)]);
    p.limits.max_window = Duration::from_secs(3600);
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    assert_eq!(d.whole_request, Some(Refusal::OutsideLimits));
    let mut p = policy(vec![camera("auto", SharingLevel::EmergencyAuto, 10.0)]);
    p.limits.max_radius_m = 100;
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    assert_eq!(d.whole_request, Some(Refusal::OutsideLimits));
}

#[test]
fn only_cameras_inside_the_radius_are_in_scope() {
    let p = policy(vec![
        camera("near", SharingLevel::EmergencyAuto, 190.0),
        camera("far", SharingLevel::EmergencyAuto, 210.0),
        CameraPolicy::new("nowhere", SharingLevel::EmergencyAuto),
    ]);
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    assert!(matches!(outcome_of(&d, "near"), Outcome::Serve { .. }));
    assert_eq!(outcome_of(&d, "far"), refused(Refusal::OutsideRadius));
    assert_eq!(outcome_of(&d, "nowhere"), refused(Refusal::NoLocation));
}

#[test]
fn naming_cameras_narrows_and_never_widens() {
    let p = policy(vec![
        camera("porch", SharingLevel::EmergencyAuto, 10.0),
        camera("yard", SharingLevel::EmergencyAuto, 10.0),
        camera("street", SharingLevel::EmergencyAuto, 900.0),
        camera("hidden", SharingLevel::Off, 10.0),
    ]);
    let r = request_with(
        "emergency",
        json!({ "cameras": ["porch", "street", "hidden", "attic"] }),
    );
    let d = decide(&p, &r, &RequestHistory::default(), now());
    assert!(matches!(outcome_of(&d, "porch"), Outcome::Serve { .. }));
    assert_eq!(outcome_of(&d, "yard"), refused(Refusal::NotNamed));
    assert_eq!(outcome_of(&d, "street"), refused(Refusal::OutsideRadius));
    assert_eq!(outcome_of(&d, "hidden"), refused(Refusal::SharingOff));
    assert_eq!(outcome_of(&d, "attic"), refused(Refusal::UnknownCamera));
    // The agency cannot tell an `off` camera from one that does not exist.
    let visible: Vec<&str> = d
        .cameras
        .iter()
        .filter(|c| c.visible_to_agency())
        .map(|c| c.camera.as_str())
        .collect();
    assert_eq!(visible, ["porch", "street"]);
}

#[test]
fn windows_are_clipped_and_audio_follows_the_owner() {
    let mut porch = camera("porch", SharingLevel::EmergencyAuto, 10.0);
    porch.max_clip = Some(Duration::from_secs(1800));
    porch.audio_allowed = true;
    let mut p = policy(vec![porch, camera("yard", SharingLevel::OnRequest, 10.0)]);
    p.max_clip = Duration::from_secs(3600);
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    let start = at("2026-11-23T21:00:00Z");
    assert_eq!(
        outcome_of(&d, "porch"),
        Outcome::Serve {
            window: TimeWindow {
                from_us: start,
                to_us: start + 1_800_000_000
            },
            audio: true
        }
    );
    assert_eq!(
        outcome_of(&d, "yard"),
        Outcome::AwaitOwner {
            window: TimeWindow {
                from_us: start,
                to_us: start + 3_600_000_000
            },
            audio: false
        }
    );
}

#[test]
fn schedules_lower_the_level_outside_their_windows() {
    let nights = Schedule::new(vec![ScheduleWindow::new(
        Weekdays::EVERY_DAY,
        TimeOfDay::parse("22:00").expect("time"),
        TimeOfDay::parse("06:00").expect("time"),
    )
    .expect("window")])
    .expect("schedule");
    let mut auto = camera("auto", SharingLevel::EmergencyAuto, 10.0);
    auto.schedule = Some(nights.clone());
    let mut fallback = camera("fallback", SharingLevel::EmergencyAuto, 10.0);
    fallback.schedule = Some(nights);
    fallback.outside_schedule = SharingLevel::OnRequest;
    let p = policy(vec![auto, fallback]);
    let history = RequestHistory::default();
    let r = request("emergency");

    let noon = decide(&p, &r, &history, now());
    assert_eq!(outcome_of(&noon, "auto"), refused(Refusal::OutsideSchedule));
    assert!(matches!(
        outcome_of(&noon, "fallback"),
        Outcome::AwaitOwner { .. }
    ));

    let night = decide(&p, &r, &history, at("2026-11-24T23:30:00Z"));
    assert!(matches!(outcome_of(&night, "auto"), Outcome::Serve { .. }));
    assert!(matches!(
        outcome_of(&night, "fallback"),
        Outcome::Serve { .. }
    ));
}

#[test]
fn a_fallback_above_the_level_never_raises_it() {
    let mut cam = camera("c", SharingLevel::Registered, 10.0);
    cam.schedule = Some(
        Schedule::new(vec![ScheduleWindow::new(
            Weekdays::parse("sun").expect("days"),
            TimeOfDay::parse("00:00").expect("time"),
            TimeOfDay::parse("01:00").expect("time"),
        )
        .expect("window")])
        .expect("schedule"),
    );
    cam.outside_schedule = SharingLevel::EmergencyLive;
    assert_eq!(
        cam.effective_level(&TimeZone::UTC, now()),
        SharingLevel::Registered
    );
}

#[test]
fn decisions_serialize_for_the_audit_log() {
    let p = policy(vec![camera("auto", SharingLevel::EmergencyAuto, 10.0)]);
    let d = decide(&p, &request("emergency"), &RequestHistory::default(), now());
    let json = serde_json::to_value(&d).expect("serializes");
    assert_eq!(json["cameras"][0]["outcome"]["kind"], "serve");
    assert_eq!(json["cameras"][0]["level"], "emergency_auto");
    assert_eq!(d.cameras[0].outcome.status(), "approved");
}
