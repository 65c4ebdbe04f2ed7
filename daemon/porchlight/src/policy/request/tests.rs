use super::*;
use serde_json::{json, Value};

const NOW: &str = "2026-11-24T12:00:00Z";

fn now() -> i64 {
    crate::time::parse_utc_us(NOW).expect("time")
}

fn dallas() -> AgencyIdentity {
    AgencyIdentity {
        name: "Dallas Police Department".into(),
        cert_fingerprint: "ab".repeat(32),
    }
}

fn body() -> Value {
    json!({
        "agency": "Dallas Police Department",
        "officer": { "name": "Sgt. A. Rivera", "badge": "D-4471" },
        "case_id": "2026-0042117",
        "incident_type": "burglary",
        "legal_basis": "consent",
        "location": { "lat": 32.7767, "lon": -96.797 },
        "radius_m": 250,
        "window": { "from": "2026-11-23T21:00:00Z", "to": "2026-11-23T22:00:00Z" },
        "reason": "Break-in reported at 21:30; looking for a vehicle leaving the street."
    })
}

fn check(body: &Value) -> Result<ValidatedRequest, RequestError> {
    let bytes = serde_json::to_vec(body).expect("json");
    validate(
        parse_request(&bytes)?,
        &dallas(),
        &RequestLimits::default(),
        now(),
    )
}

fn with(mut body: Value, path: &[&str], value: Value) -> Value {
    let mut target = &mut body;
    for key in &path[..path.len() - 1] {
        target = &mut target[*key];
    }
    target[path[path.len() - 1]] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}

fn invalid_field(result: Result<ValidatedRequest, RequestError>) -> String {
    match result {
        Err(RequestError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn a_complete_request_validates() {
    let request = check(&body()).expect("valid");
    assert_eq!(request.agency(), &dallas());
    assert_eq!(request.case_id(), "2026-0042117");
    assert_eq!(request.legal_basis(), &LegalBasis::Consent);
    assert_eq!(request.window().len_us(), 3_600_000_000);
    assert_eq!(request.cameras(), None);
}

#[test]
fn forged_policy_fields_are_refused_by_name() {
    for field in ["sharing_level", "privacy", "audio", "max_clip"] {
        let e = check(&with(body(), &[field], json!("emergency_auto"))).expect_err(field);
        assert_eq!(e.code(), "unknown_field", "{e}");
        assert_eq!(e.field(), Some(field), "{e}");
    }
    let e = check(&with(body(), &["officer", "rank"], json!("chief"))).expect_err("nested");
    assert_eq!(e.field(), Some("officer.rank"), "{e}");
    let e = check(&with(body(), &["window", "live"], json!(true))).expect_err("nested");
    assert_eq!(e.field(), Some("window.live"), "{e}");
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    let e = check(&without(body(), "case_id")).expect_err("missing");
    assert_eq!(
        (e.code(), e.field()),
        ("missing_field", Some("case_id")),
        "{e}"
    );
    let e = check(&with(body(), &["radius_m"], json!("far"))).expect_err("type");
    assert_eq!(
        (e.code(), e.field()),
        ("invalid_field", Some("radius_m")),
        "{e}"
    );
    let e = check(&with(body(), &["legal_basis"], json!("hunch"))).expect_err("variant");
    assert_eq!(e.field(), Some("legal_basis"), "{e}");
    assert!(
        e.to_string().contains("emergency"),
        "lists allowed values: {e}"
    );
}

#[test]
fn malformed_and_duplicate_bodies_are_refused() {
    for bad in [&b"{"[..], b"", b"[]", b"null", b"{} {}", b"\xff\xfe"] {
        assert!(parse_request(bad).is_err(), "{bad:?}");
    }
    let e = parse_request(b"{\"agency\": \"x\"").expect_err("eof");
    assert_eq!(e.code(), "malformed_body");
    let text = serde_json::to_string(&body()).expect("json");
    let doubled = text.replacen("{", "{\"case_id\":\"x\",", 1);
    let e = parse_request(doubled.as_bytes()).expect_err("duplicate");
    assert_eq!(e.field(), Some("case_id"), "{e}");
}

#[test]
fn the_agency_comes_from_the_certificate() {
    let e = check(&with(body(), &["agency"], json!("Sheriff's Office"))).expect_err("mismatch");
    assert_eq!(e.code(), "agency_mismatch");
    assert!(e.to_string().contains("Dallas Police Department"), "{e}");
}

#[test]
fn legal_basis_and_warrant_reference_go_together() {
    let warrant = with(body(), &["legal_basis"], json!("warrant"));
    let e = check(&warrant).expect_err("needs a reference");
    assert_eq!(e.field(), Some("warrant_reference"));
    let ok = check(&with(warrant, &["warrant_reference"], json!("SW-2026-118"))).expect("valid");
    assert_eq!(
        ok.legal_basis(),
        &LegalBasis::Warrant {
            reference: "SW-2026-118".into()
        }
    );
    let stray = with(body(), &["warrant_reference"], json!("SW-1"));
    assert_eq!(invalid_field(check(&stray)), "warrant_reference");
    let emergency = check(&with(body(), &["legal_basis"], json!("emergency"))).expect("valid");
    assert!(emergency.legal_basis().is_emergency());
}

#[test]
fn windows_must_be_ordered_bounded_and_in_the_past() {
    let window =
        |from: &str, to: &str| with(body(), &["window"], json!({ "from": from, "to": to }));
    let cases = [
        // (from, to, field named)
        ("2026-11-23T22:00:00Z", "2026-11-23T21:00:00Z", "window.to"),
        ("2026-11-23T21:00:00Z", "2026-11-23T21:00:00Z", "window.to"),
        ("2026-11-23T21:00:00Z", "2026-11-23T21:14:59Z", "window"),
        ("2026-11-23T08:00:00Z", "2026-11-23T20:00:01Z", "window"),
        ("2026-11-24T11:00:00Z", "2026-11-24T12:05:00Z", "window.to"),
        ("yesterday", "2026-11-23T21:00:00Z", "window.from"),
        ("2026-11-23T21:00:00Z", "2026-11-23 22:00", "window.to"),
    ];
    for (from, to, field) in cases {
        assert_eq!(
            invalid_field(check(&window(from, to))),
            field,
            "{from}..{to}"
        );
    }
    // Exactly the bounds, offsets, and a little clock skew are fine.
    for (from, to) in [
        ("2026-11-23T21:00:00Z", "2026-11-23T21:15:00Z"),
        ("2026-11-23T08:00:00Z", "2026-11-23T20:00:00Z"),
        ("2026-11-24T11:00:00Z", "2026-11-24T12:01:00Z"),
        ("2026-11-23T15:00:00-06:00", "2026-11-23T16:00:00-06:00"),
    ] {
        check(&window(from, to)).unwrap_or_else(|e| panic!("{from}..{to}: {e}"));
    }
}

#[test]
fn owners_tighter_limits_apply() {
    let limits = RequestLimits {
        max_window: Duration::from_secs(1800),
        max_radius_m: 100,
        ..RequestLimits::default()
    };
    let bytes = serde_json::to_vec(&body()).expect("json");
    let e = validate(
        parse_request(&bytes).expect("parses"),
        &dallas(),
        &limits,
        now(),
    )
    .expect_err("radius over the owner's limit");
    assert_eq!(e.field(), Some("radius_m"));
}

#[test]
fn radius_and_location_are_range_checked() {
    for radius in [json!(0), json!(-5), json!(400.5), json!(1e308)] {
        assert_eq!(
            invalid_field(check(&with(body(), &["radius_m"], radius.clone()))),
            "radius_m",
            "{radius}"
        );
    }
    check(&with(body(), &["radius_m"], json!(400))).expect("the maximum is allowed");
    let far = with(body(), &["location"], json!({ "lat": 95.0, "lon": 0.0 }));
    assert_eq!(invalid_field(check(&far)), "location");
    let extra = with(
        body(),
        &["location"],
        json!({ "lat": 1.0, "lon": 0.0, "alt": 3 }),
    );
    assert_eq!(
        check(&extra).expect_err("unknown").field(),
        Some("location.alt")
    );
}

#[test]
fn identifiers_cannot_be_paths_and_text_is_bounded() {
    for bad in [
        "../../etc/passwd",
        "..",
        ".hidden",
        "a/b",
        "a b",
        "",
        "ä",
        &"x".repeat(129),
    ] {
        assert_eq!(
            invalid_field(check(&with(body(), &["case_id"], json!(bad)))),
            "case_id",
            "{bad:?}"
        );
    }
    check(&with(body(), &["case_id"], json!("x".repeat(128)))).expect("128 is fine");
    let badge = with(body(), &["officer", "badge"], json!("1/2"));
    assert_eq!(invalid_field(check(&badge)), "officer.badge");
    let long = with(body(), &["reason"], json!("é".repeat(2001)));
    assert_eq!(invalid_field(check(&long)), "reason");
    check(&with(body(), &["reason"], json!("é".repeat(2000)))).expect("2000 characters");
    let control = with(body(), &["reason"], json!("line\u{0007}bell"));
    assert_eq!(invalid_field(check(&control)), "reason");
    check(&with(body(), &["reason"], json!("two\nlines\tok"))).expect("newlines in text");
    let name = with(body(), &["officer", "name"], json!("A\nB"));
    assert_eq!(invalid_field(check(&name)), "officer.name");
    assert_eq!(
        invalid_field(check(&with(body(), &["reason"], json!("   ")))),
        "reason"
    );
}

#[test]
fn camera_lists_are_checked_and_deduplicated() {
    let named = check(&with(
        body(),
        &["cameras"],
        json!(["porch", "porch", "driveway"]),
    ))
    .expect("valid");
    assert_eq!(
        named.cameras(),
        Some(&["porch".to_string(), "driveway".to_string()][..])
    );
    assert_eq!(
        invalid_field(check(&with(body(), &["cameras"], json!([])))),
        "cameras"
    );
    assert_eq!(
        invalid_field(check(&with(body(), &["cameras"], json!(["ok", "../x"])))),
        "cameras[1]"
    );
    let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
    assert_eq!(
        invalid_field(check(&with(body(), &["cameras"], json!(many)))),
        "cameras"
    );
}
