//! Property tests: thousands of random policies and requests, and not one
//! grant the policy forbids.
//!
//! The oracle is written from the documented rules, not from `decide`'s
//! code: distances come from 3-D chord geometry instead of haversine, and
//! schedules from a minute-of-the-week table instead of interval tests.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

use jiff::tz::TimeZone;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use super::*;

const MINUTES_PER_WEEK: usize = 7 * 24 * 60;
const ZONES: [&str; 5] = [
    "UTC",
    "America/Chicago",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];
/// Monday 2026-11-23 00:00 UTC.
const BASE_NOW_S: i64 = 1_795_392_000;

fn zones() -> &'static [TimeZone] {
    static LOADED: OnceLock<Vec<TimeZone>> = OnceLock::new();
    LOADED.get_or_init(|| {
        ZONES
            .iter()
            .map(|name| TimeZone::get(name).expect("time zone database"))
            .collect()
    })
}

#[derive(Clone, Debug)]
struct Case {
    policy: Policy,
    body: FootageRequest,
    certified_agency: String,
    history: RequestHistory,
    now_us: i64,
}

fn level() -> impl Strategy<Value = SharingLevel> {
    prop::sample::select(SharingLevel::ALL.to_vec())
}

fn schedule() -> impl Strategy<Value = Option<Schedule>> {
    let window = (1u8..=127, 0u16..1440, 0u16..=1440).prop_filter_map(
        "start == end",
        |(days, start, end)| {
            let days = Weekdays::from_days((0..7).filter(|d| days & (1 << d) != 0));
            ScheduleWindow::new(
                days,
                TimeOfDay::from_minutes(start)?,
                TimeOfDay::from_minutes(end)?,
            )
            .ok()
        },
    );
    prop::option::weighted(0.5, prop::collection::vec(window, 1..4))
        .prop_map(|windows| windows.and_then(|w| Schedule::new(w).ok()))
}

fn camera(index: usize) -> impl Strategy<Value = CameraPolicy> {
    (
        level(),
        prop::option::weighted(0.9, (-0.002f64..0.002, -0.002f64..0.002)),
        schedule(),
        level(),
        any::<bool>(),
        prop::option::of(1u64..=720),
    )
        .prop_map(
            move |(level, offset, schedule, outside, audio, clip)| CameraPolicy {
                name: format!("cam{index}"),
                level,
                // Offsets are from the incident centre; filled in below.
                location: offset.map(|(lat, lon)| GeoPoint { lat, lon }),
                schedule,
                outside_schedule: outside,
                audio_allowed: audio,
                max_clip: clip.map(|m| Duration::from_secs(m * 60)),
            },
        )
}

fn policy_and_center() -> impl Strategy<Value = (Policy, GeoPoint)> {
    let cameras = (0usize..6).prop_flat_map(|n| (0..n).map(camera).collect::<Vec<_>>());
    let limits = (15u64..=60, 60u64..=720, 50u32..=400, 1u32..=3, 5u32..=30).prop_map(
        |(min, max, radius, per_case, per_day)| RequestLimits {
            min_window: Duration::from_secs(min * 60),
            max_window: Duration::from_secs(max * 60),
            max_radius_m: radius,
            clock_skew: Duration::from_secs(120),
            requests_per_case: per_case,
            requests_per_agency_per_day: per_day,
        },
    );
    (
        prop::bool::weighted(0.15),
        0..ZONES.len(),
        1u64..=720,
        limits,
        cameras,
        -60.0f64..60.0,
        -179.0f64..179.0,
    )
        .prop_map(|(privacy, zone, clip, limits, mut cameras, lat, lon)| {
            let center = GeoPoint { lat, lon };
            for camera in &mut cameras {
                camera.location = camera.location.map(|offset| GeoPoint {
                    lat: center.lat + offset.lat,
                    lon: center.lon + offset.lon,
                });
            }
            let policy = Policy {
                privacy,
                timezone: zones()[zone].clone(),
                max_clip: Duration::from_secs(clip * 60),
                limits,
                approval_expiry: Duration::from_secs(86_400),
                download_expiry: Duration::from_secs(3 * 86_400),
                live_share_max: Duration::from_secs(900),
                cameras,
            };
            (policy, center)
        })
}

fn case() -> impl Strategy<Value = Case> {
    let basis = prop::sample::select(vec![
        LegalBasisKind::Consent,
        LegalBasisKind::Emergency,
        LegalBasisKind::Warrant,
    ]);
    let named = prop::option::weighted(0.3, prop::collection::vec(0usize..8, 1..4));
    (
        policy_and_center(),
        basis,
        prop::bool::weighted(0.9),
        // Radius and window length as fractions of the limits, a little
        // beyond them now and then.
        (0.0f64..1.05, -0.001f64..0.001, -0.001f64..0.001),
        (-5i64..2880, 0.0f64..1.05),
        named,
        (0u32..2, 0u32..10),
        0i64..14 * 86_400,
    )
        .prop_map(
            |(
                (policy, center),
                basis,
                same_agency,
                (radius, dlat, dlon),
                (end_ago, len),
                named,
                counts,
                now_s,
            )| {
                let limits = &policy.limits;
                let radius = radius * f64::from(limits.max_radius_m);
                let (min, max) = (
                    limits.min_window.as_secs() as f64 / 60.0,
                    limits.max_window.as_secs() as f64 / 60.0,
                );
                let len = (min - 2.0 + len * (max - min + 4.0)).round() as i64;
                let now_us = (BASE_NOW_S + now_s) * 1_000_000;
                let to_us = now_us - end_ago * 60_000_000;
                let from_us = to_us - len * 60_000_000;
                let body = FootageRequest {
                    agency: if same_agency {
                        "Dallas PD".into()
                    } else {
                        "Other PD".into()
                    },
                    officer: Officer {
                        name: "A. Rivera".into(),
                        badge: "D-4471".into(),
                    },
                    case_id: "2026-1".into(),
                    incident_type: "burglary".into(),
                    legal_basis: basis,
                    warrant_reference: (basis == LegalBasisKind::Warrant).then(|| "SW-1".into()),
                    location: GeoPoint {
                        lat: center.lat + dlat,
                        lon: center.lon + dlon,
                    },
                    radius_m: radius,
                    window: WireWindow {
                        from: crate::time::format_utc_us(from_us),
                        to: crate::time::format_utc_us(to_us),
                    },
                    // Names beyond the policy's cameras are unknown ones.
                    cameras: named.map(|list| list.iter().map(|i| format!("cam{i}")).collect()),
                    reason: "reason".into(),
                };
                Case {
                    policy,
                    body,
                    certified_agency: "Dallas PD".into(),
                    history: RequestHistory {
                        earlier_requests_for_case: counts.0,
                        agency_requests_last_24h: counts.1,
                    },
                    now_us,
                }
            },
        )
}

/// Great-circle distance through the chord between unit vectors.
fn oracle_distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let unit = |p: GeoPoint| {
        let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
        [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
    };
    let (u, v) = (unit(a), unit(b));
    let chord = ((u[0] - v[0]).powi(2) + (u[1] - v[1]).powi(2) + (u[2] - v[2]).powi(2)).sqrt();
    2.0 * (chord / 2.0).min(1.0).asin() * 6_371_008.8
}

/// Whether the schedule covers `now`, from a minute-of-the-week table.
fn oracle_in_schedule(schedule: &Schedule, tz: &TimeZone, now_us: i64) -> bool {
    let mut table = vec![false; MINUTES_PER_WEEK];
    for w in schedule.windows() {
        let (start, end) = (
            usize::from(w.start().minutes()),
            usize::from(w.end().minutes()),
        );
        let length = if end > start {
            end - start
        } else {
            1440 - start + end
        };
        for day in w.days().iter() {
            let first = usize::from(day) * 1440 + start;
            for k in 0..length {
                table[(first + k) % MINUTES_PER_WEEK] = true;
            }
        }
    }
    let zoned = jiff::Timestamp::from_microsecond(now_us)
        .expect("in range")
        .to_zoned(tz.clone());
    let monday_zero = (zoned.date().weekday().to_sunday_zero_offset() as usize + 6) % 7;
    let minute = monday_zero * 1440 + zoned.hour() as usize * 60 + zoned.minute() as usize;
    table[minute]
}

/// The level the owner allows right now, by the documented rule.
fn oracle_level(camera: &CameraPolicy, tz: &TimeZone, now_us: i64) -> SharingLevel {
    match &camera.schedule {
        Some(s) if !oracle_in_schedule(s, tz, now_us) => {
            if camera.outside_schedule < camera.level {
                camera.outside_schedule
            } else {
                camera.level
            }
        }
        _ => camera.level,
    }
}

#[derive(Default)]
struct Seen {
    validated: Cell<u32>,
    served: Cell<u32>,
    awaiting: Cell<u32>,
    shown: Cell<u32>,
    refused: Cell<u32>,
}

fn bump(cell: &Cell<u32>) {
    cell.set(cell.get() + 1);
}

fn check_case(case: &Case, seen: &Seen) -> Result<(), TestCaseError> {
    let agency = AgencyIdentity {
        name: case.certified_agency.clone(),
        cert_fingerprint: "00".repeat(32),
    };
    let limits = &case.policy.limits;
    let Ok(request) = validate(case.body.clone(), &agency, limits, case.now_us) else {
        return Ok(());
    };
    bump(&seen.validated);

    // What validation promises.
    let window = request.window();
    prop_assert_eq!(&case.body.agency, &agency.name);
    prop_assert!(window.from_us < window.to_us);
    prop_assert!(window.to_us - window.from_us >= limits.min_window.as_micros() as i64);
    prop_assert!(window.to_us - window.from_us <= limits.max_window.as_micros() as i64);
    prop_assert!(window.to_us <= case.now_us + 120_000_000);
    prop_assert!(request.radius_m() > 0.0 && request.radius_m() <= f64::from(limits.max_radius_m));

    let decision = decide(&case.policy, &request, &case.history, case.now_us);
    prop_assert_eq!(
        &decision,
        &decide(&case.policy, &request, &case.history, case.now_us),
        "pure"
    );

    let over_limit = case.history.earlier_requests_for_case >= limits.requests_per_case
        || case.history.agency_requests_last_24h >= limits.requests_per_agency_per_day;
    let named = request.cameras();
    let unknown = named
        .unwrap_or_default()
        .iter()
        .filter(|n| !case.policy.cameras.iter().any(|c| &&c.name == n))
        .count();
    prop_assert_eq!(decision.cameras.len(), case.policy.cameras.len() + unknown);

    for (i, entry) in decision.cameras.iter().enumerate() {
        let Some(camera) = case.policy.cameras.get(i) else {
            // Unknown names are only ever refused.
            prop_assert!(
                matches!(entry.outcome, Outcome::Refuse { .. }),
                "{:?}",
                entry
            );
            bump(&seen.refused);
            continue;
        };
        prop_assert_eq!(&entry.camera, &camera.name);
        let granted = !matches!(entry.outcome, Outcome::Refuse { .. });
        if !granted {
            bump(&seen.refused);
            continue;
        }
        // Anything but a refusal: every gate must have been open.
        prop_assert!(!case.policy.privacy, "privacy on: {:?}", entry);
        prop_assert!(!over_limit, "rate limit: {:?}", entry);
        prop_assert!(camera.level != SharingLevel::Off, "level off: {:?}", entry);
        let location = camera
            .location
            .ok_or_else(|| TestCaseError::fail("no location"))?;
        let distance = oracle_distance_m(location, request.location());
        prop_assert!(
            distance <= request.radius_m() + 0.01,
            "{} m from the incident, radius {}: {:?}",
            distance,
            request.radius_m(),
            entry
        );
        if let Some(list) = named {
            prop_assert!(list.contains(&camera.name), "not named: {:?}", entry);
        }
        let allowed = oracle_level(camera, &case.policy.timezone, case.now_us);
        prop_assert!(allowed <= camera.level, "a schedule raised the level");
        let max_clip = camera
            .max_clip
            .unwrap_or(Duration::MAX)
            .min(case.policy.max_clip);
        match &entry.outcome {
            Outcome::Serve { window: w, audio } | Outcome::AwaitOwner { window: w, audio } => {
                prop_assert!(w.is_within(&window), "{:?} outside {:?}", w, window);
                prop_assert!(w.len_us() > 0);
                prop_assert!(w.len_us() as u128 <= max_clip.as_micros());
                prop_assert!(!*audio || camera.audio_allowed, "audio not allowed");
                prop_assert!(
                    allowed >= SharingLevel::OnRequest,
                    "{} cannot wait for the owner",
                    allowed
                );
                if matches!(entry.outcome, Outcome::Serve { .. }) {
                    prop_assert!(
                        request.legal_basis().is_emergency(),
                        "served without an emergency"
                    );
                    prop_assert!(
                        allowed.serves_emergencies_at_once(),
                        "served at level {}",
                        allowed
                    );
                    bump(&seen.served);
                } else {
                    prop_assert!(
                        !(request.legal_basis().is_emergency()
                            && allowed.serves_emergencies_at_once()),
                        "an emergency at {} should be served",
                        allowed
                    );
                    bump(&seen.awaiting);
                }
            }
            Outcome::ShowToOwnerOnly => {
                prop_assert_eq!(allowed, SharingLevel::Registered);
                bump(&seen.shown);
            }
            Outcome::Refuse { .. } => unreachable!("handled above"),
        }
    }

    // And the converse: when every gate is open, the camera is not refused.
    if !case.policy.privacy && !over_limit {
        for (camera, entry) in case.policy.cameras.iter().zip(&decision.cameras) {
            let in_scope = camera.location.is_some_and(|l| {
                oracle_distance_m(l, request.location()) < request.radius_m() - 0.01
            }) && named.is_none_or(|list| list.contains(&camera.name));
            let allowed = oracle_level(camera, &case.policy.timezone, case.now_us);
            if in_scope && allowed >= SharingLevel::Registered {
                prop_assert!(
                    !matches!(entry.outcome, Outcome::Refuse { .. }),
                    "{:?} refused though the owner allows {}",
                    entry,
                    allowed
                );
            }
        }
    }
    Ok(())
}

#[test]
fn no_grant_the_policy_forbids() {
    let config = Config {
        cases: 6000,
        failure_persistence: None,
        ..Config::default()
    };
    let seen = Seen::default();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| check_case(&case, &seen));
    if let Err(e) = result {
        panic!("{e}");
    }
    // The run must have exercised every outcome, or it proved little.
    let counts = [
        ("validated", seen.validated.get()),
        ("served", seen.served.get()),
        ("awaiting", seen.awaiting.get()),
        ("shown", seen.shown.get()),
        ("refused", seen.refused.get()),
    ];
    eprintln!("outcomes seen: {counts:?}");
    for (name, count) in counts {
        assert!(count >= 50, "only {count} {name} in the run: {counts:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_fail_without_panicking(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_request(&body);
    }

    #[test]
    fn any_field_values_validate_or_fail_without_panicking(
        agency in "\\PC{0,140}",
        id in "\\PC{0,140}",
        text in "\\PC{0,40}",
        lat in any::<f64>(),
        lon in any::<f64>(),
        radius in any::<f64>(),
        from in "\\PC{0,70}",
        to in "\\PC{0,70}",
        now in any::<i64>(),
    ) {
        let body = json!({
            "agency": agency,
            "officer": { "name": text, "badge": id },
            "case_id": id,
            "incident_type": text,
            "legal_basis": "warrant",
            "warrant_reference": text,
            "location": { "lat": lat, "lon": lon },
            "radius_m": radius,
            "window": { "from": from, "to": to },
            "cameras": [id.clone(), text.clone()],
            "reason": text,
        });
        let identity = AgencyIdentity { name: agency.clone(), cert_fingerprint: String::new() };
        if let Ok(raw) = parse_request(body.to_string().as_bytes()) {
            if let Ok(request) = validate(raw, &identity, &RequestLimits::default(), now) {
                prop_assert!(!request.case_id().contains('/') && !request.case_id().starts_with('.'));
                let policy = Policy {
                    privacy: false,
                    timezone: TimeZone::UTC,
                    max_clip: Duration::from_secs(3600),
                    limits: RequestLimits::default(),
                    approval_expiry: Duration::from_secs(60),
                    download_expiry: Duration::from_secs(60),
                    live_share_max: Duration::from_secs(900),
                    cameras: vec![CameraPolicy {
                        location: Some(GeoPoint { lat: 0.0, lon: 0.0 }),
                        ..CameraPolicy::new("porch", SharingLevel::EmergencyLive)
                    }],
                };
                let _ = decide(&policy, &request, &RequestHistory::default(), now);
            }
        }
    }
}
