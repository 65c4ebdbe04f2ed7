//! A footage request body as the relay listener handles it: `parse_request`
//! then `validate` against the certificate's agency, the owner's limits and
//! the clock (`relay/api.rs`, `policy/request.rs`).
//!
//! Beyond "no panic": a parsed request serialises back to JSON that parses
//! to the same request; a refused one names a field or says the body is
//! malformed; and nothing `validate` accepts breaks a limit, checked here
//! independently of the validation code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porchlight::policy::{
    parse_request, validate, AgencyIdentity, FootageRequest, LegalBasis, RequestError,
    RequestLimits, ValidatedRequest, MAX_ID_CHARS, MAX_NAMED_CAMERAS, MAX_NAME_CHARS,
    MAX_REASON_CHARS,
};

/// 2026-11-24T12:00:00Z, as in the unit tests: the seeds' windows lie before it.
const NOW_US: i64 = 1_795_521_600_000_000;

fuzz_target!(|data: &[u8]| {
    let agency = AgencyIdentity {
        name: "Dallas Police Department".into(),
        cert_fingerprint: "00".repeat(32),
    };
    let raw = match parse_request(data) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(
                matches!(e, RequestError::Malformed { .. }) || e.field().is_some(),
                "{e:?}"
            );
            return;
        }
    };
    check_round_trip(&raw);
    // The default limits and an owner's tightest ones.
    let tight = RequestLimits {
        min_window: std::time::Duration::from_secs(3600),
        max_window: std::time::Duration::from_secs(3600),
        max_radius_m: 1,
        ..RequestLimits::default()
    };
    for limits in [RequestLimits::default(), tight] {
        match validate(raw.clone(), &agency, &limits, NOW_US) {
            Ok(request) => check_accepted(&request, &agency, &limits),
            Err(e) => assert!(e.field().is_some(), "refusal names no field: {e:?}"),
        }
    }
});

fn check_round_trip(raw: &FootageRequest) {
    let json = serde_json::to_vec(raw).expect("a request serialises");
    let again = parse_request(&json).unwrap_or_else(|e| {
        panic!(
            "re-serialised request refused: {e:?}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    // Floats may come back one ulp off (serde_json's default parser).
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15;
    assert!(close(raw.radius_m, again.radius_m));
    assert!(close(raw.location.lat, again.location.lat));
    assert!(close(raw.location.lon, again.location.lon));
    let mut same = again.clone();
    same.radius_m = raw.radius_m;
    same.location = raw.location;
    assert_eq!(raw, &same);
}

fn check_name(text: &str, max: usize) {
    check_text(text, max);
    assert!(!text.contains(['\n', '\t']), "{text:?}");
}

fn check_text(text: &str, max: usize) {
    assert!(!text.trim().is_empty());
    assert!(text.chars().count() <= max);
    assert!(
        text.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t'),
        "{text:?}"
    );
    assert!(!text.chars().any(|c| matches!(c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}')));
}

fn check_id(id: &str) {
    assert!(!id.is_empty() && id.len() <= MAX_ID_CHARS, "{id:?}");
    assert!(id.as_bytes()[0].is_ascii_alphanumeric(), "{id:?}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')));
}

fn check_accepted(r: &ValidatedRequest, agency: &AgencyIdentity, limits: &RequestLimits) {
    assert_eq!(r.agency(), agency, "the body chose the agency");
    check_name(&r.officer().name, MAX_NAME_CHARS);
    check_id(&r.officer().badge);
    check_id(r.case_id());
    check_id(r.incident_type());
    if let LegalBasis::Warrant { reference } = r.legal_basis() {
        check_name(reference, MAX_NAME_CHARS);
    }
    let loc = r.location();
    assert!((-90.0..=90.0).contains(&loc.lat) && (-180.0..=180.0).contains(&loc.lon));
    let radius = r.radius_m();
    assert!(radius.is_finite() && radius > 0.0 && radius <= f64::from(limits.max_radius_m));
    let w = r.window();
    let us = |d: std::time::Duration| d.as_micros() as i64;
    assert!(w.from_us < w.to_us);
    assert!(w.len_us() >= us(limits.min_window) && w.len_us() <= us(limits.max_window));
    assert!(
        w.to_us <= NOW_US + us(limits.clock_skew),
        "a window in the future"
    );
    if let Some(cameras) = r.cameras() {
        assert!(!cameras.is_empty() && cameras.len() <= MAX_NAMED_CAMERAS);
        for (i, name) in cameras.iter().enumerate() {
            assert!(porchlight::config::is_valid_camera_name(name), "{name:?}");
            assert!(!cameras[..i].contains(name), "duplicate camera {name}");
        }
    }
    check_text(r.reason(), MAX_REASON_CHARS);
}
