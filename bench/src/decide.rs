//! `--decide`: what the owner's gate, `policy::decide()`, costs per request.
//!
//! A realistic policy (eight cameras around one Dallas block, every sharing
//! level, night and weekday schedules, audio and clip limits) and a corpus
//! of random valid requests (locations in and out of range, every legal
//! basis, some naming cameras, histories near the rate limits, clocks spread
//! over a week so schedules open and close). Each call is timed on its own
//! for p50/p99. In the same run, as baselines on the same bodies: a plain
//! `serde_json` parse into a `Value`, and `parse_request` + `validate` (the
//! work the relay does before the gate anyway). The ratios say whether the
//! gate matters next to merely reading the request.
//!
//! The corpus's JSON bodies are what a `--relay ADDR` mode will POST over
//! mutual TLS once the listener exists; that mode is not written yet.

use std::time::Duration;

use anyhow::Context;
use porchlight::policy::{
    decide, parse_request, validate, AgencyIdentity, CameraPolicy, GeoPoint, Outcome, Policy,
    RequestHistory, RequestLimits, Schedule, ScheduleWindow, SharingLevel, TimeOfDay,
    ValidatedRequest, Weekdays,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::latency::{show, time_each, Summary};

/// Where the incident area is: downtown Dallas.
const CENTER: (f64, f64) = (32.7767, -96.7970);
/// The agency of every request (the certificate's, as the relay would pass it).
const AGENCY: &str = "Dallas Police Department";
const INCIDENT_TYPES: [&str; 4] = ["burglary", "hit-and-run", "missing-person", "assault"];
const MICROS_PER_MINUTE: i64 = 60_000_000;
/// A fixed origin for the clocks, so every run sees the same corpus:
/// Monday 2026-11-23 00:00 UTC.
const EPOCH_TEXT: &str = "2026-11-23T00:00:00Z";

/// Requests with everything `decide` needs, in the shape the relay has them.
pub struct Corpus {
    pub agency: AgencyIdentity,
    /// The JSON bodies as sent (what `--relay` will POST).
    pub bodies: Vec<Vec<u8>>,
    /// The same requests after `parse_request` + `validate`.
    pub requests: Vec<ValidatedRequest>,
    pub histories: Vec<RequestHistory>,
    /// The device clock at each request (UTC µs).
    pub now_us: Vec<i64>,
}

/// The owner's policy: eight cameras, every level, some on schedules.
pub fn realistic_policy() -> anyhow::Result<Policy> {
    let timezone = jiff::tz::TimeZone::get("America/Chicago").unwrap_or(jiff::tz::TimeZone::UTC);
    let window = |days: &str, from: &str, to: &str| -> anyhow::Result<ScheduleWindow> {
        let days = Weekdays::parse(days).map_err(anyhow::Error::msg)?;
        let from = TimeOfDay::parse(from).map_err(anyhow::Error::msg)?;
        let to = TimeOfDay::parse(to).map_err(anyhow::Error::msg)?;
        ScheduleWindow::new(days, from, to).map_err(anyhow::Error::msg)
    };
    let schedule = |windows: Vec<ScheduleWindow>| -> anyhow::Result<Schedule> {
        Schedule::new(windows).map_err(anyhow::Error::msg)
    };
    // Offsets in metres east/north of the centre, so distances are realistic.
    let at = |east_m: f64, north_m: f64| {
        let lat = CENTER.0 + north_m / 111_320.0;
        let lon = CENTER.1 + east_m / (111_320.0 * CENTER.0.to_radians().cos());
        GeoPoint::new(lat, lon).expect("a point near the centre")
    };
    let camera = |name: &str, level, location| CameraPolicy {
        location,
        ..CameraPolicy::new(name, level)
    };

    let mut porch = camera("porch", SharingLevel::EmergencyAuto, Some(at(10.0, 5.0)));
    porch.schedule = Some(schedule(vec![window("daily", "20:00", "06:00")?])?);
    porch.outside_schedule = SharingLevel::OnRequest;
    porch.audio_allowed = true;
    let driveway = camera(
        "driveway",
        SharingLevel::EmergencyLive,
        Some(at(-25.0, 12.0)),
    );
    let backyard = camera("backyard", SharingLevel::Off, Some(at(0.0, -30.0)));
    let garage = camera("garage", SharingLevel::Registered, Some(at(-40.0, -20.0)));
    let mut side_gate = camera("side-gate", SharingLevel::OnRequest, Some(at(35.0, -8.0)));
    side_gate.schedule = Some(schedule(vec![window("mon-fri", "08:00", "18:00")?])?);
    let mut front_door = camera(
        "front-door",
        SharingLevel::EmergencyAuto,
        Some(at(5.0, 15.0)),
    );
    front_door.max_clip = Some(Duration::from_secs(30 * 60));
    front_door.audio_allowed = true;
    let shed = camera("shed", SharingLevel::OnRequest, None);
    let mut street = camera(
        "street",
        SharingLevel::EmergencyAuto,
        Some(at(150.0, 220.0)),
    );
    street.schedule = Some(schedule(vec![
        window("fri", "18:00", "06:00")?,
        window("sat-sun", "00:00", "24:00")?,
    ])?);
    street.outside_schedule = SharingLevel::Registered;

    Ok(Policy {
        privacy: false,
        timezone,
        max_clip: Duration::from_secs(2 * 3600),
        limits: RequestLimits::default(),
        approval_expiry: Duration::from_secs(24 * 3600),
        download_expiry: Duration::from_secs(72 * 3600),
        live_share_max: Duration::from_secs(900),
        cameras: vec![
            porch, driveway, backyard, garage, side_gate, front_door, shed, street,
        ],
    })
}

/// `count` random valid requests, the same for the same `seed`.
pub fn corpus(policy: &Policy, count: usize, seed: u64) -> anyhow::Result<Corpus> {
    let agency = AgencyIdentity {
        name: AGENCY.into(),
        cert_fingerprint: "ab".repeat(32),
    };
    let epoch_us = porchlight::time::parse_utc_us(EPOCH_TEXT).map_err(anyhow::Error::msg)?;
    let names: Vec<&str> = policy.cameras.iter().map(|c| c.name.as_str()).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut corpus = Corpus {
        agency,
        bodies: Vec::with_capacity(count),
        requests: Vec::with_capacity(count),
        histories: Vec::with_capacity(count),
        now_us: Vec::with_capacity(count),
    };
    for i in 0..count {
        // Clocks anywhere in one week, so every schedule is both open and shut.
        let now_us = epoch_us + rng.random_range(0..7 * 24 * 60) * MICROS_PER_MINUTE;
        let length_min = rng.random_range(15..=12 * 60);
        let end_us = now_us - rng.random_range(0..3 * 24 * 60) * MICROS_PER_MINUTE;
        let (basis, warrant) = match rng.random_range(0..10) {
            0..=3 => ("emergency", None),
            4..=6 => (
                "warrant",
                Some(format!("SW-2026-{}", rng.random_range(1..999))),
            ),
            _ => ("consent", None),
        };
        // Up to ~450 m from the centre: some requests reach no camera.
        let lat = CENTER.0 + rng.random_range(-0.003..0.003);
        let lon = CENTER.1 + rng.random_range(-0.0036..0.0036);
        let mut body = json!({
            "agency": AGENCY,
            "officer": { "name": "Sgt. A. Rivera", "badge": format!("D-{}", rng.random_range(1000..9999)) },
            "case_id": format!("2026-{:07}", rng.random_range(0..10_000_000)),
            "incident_type": INCIDENT_TYPES[i % INCIDENT_TYPES.len()],
            "legal_basis": basis,
            "location": { "lat": lat, "lon": lon },
            "radius_m": rng.random_range(50..=400),
            "window": {
                "from": porchlight::time::format_utc_us(end_us - length_min * MICROS_PER_MINUTE),
                "to": porchlight::time::format_utc_us(end_us),
            },
            "reason": "Break-in reported on the block; looking for a vehicle leaving the street.",
        });
        if let Some(reference) = warrant {
            body["warrant_reference"] = json!(reference);
        }
        if rng.random_bool(0.3) {
            let mut named: Vec<&str> = (0..rng.random_range(1..=3))
                .map(|_| names[rng.random_range(0..names.len())])
                .collect();
            if rng.random_bool(0.1) {
                named.push("carport");
            }
            body["cameras"] = json!(named);
        }
        // Mostly under the limits; a few at them, where the gate stops early.
        let history = RequestHistory {
            earlier_requests_for_case: if rng.random_bool(0.05) {
                2
            } else {
                rng.random_range(0..2)
            },
            agency_requests_last_24h: if rng.random_bool(0.03) {
                20
            } else {
                rng.random_range(0..20)
            },
        };
        let bytes = serde_json::to_vec(&body)?;
        let parsed = parse_request(&bytes).with_context(|| format!("generated body {body}"))?;
        let request = validate(parsed, &corpus.agency, &policy.limits, now_us)
            .with_context(|| format!("generated body {body}"))?;
        corpus.bodies.push(bytes);
        corpus.requests.push(request);
        corpus.histories.push(history);
        corpus.now_us.push(now_us);
    }
    Ok(corpus)
}

/// Runs the benchmark and prints the table.
pub fn run(samples: usize, corpus_size: usize) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }
    let policy = realistic_policy()?;
    let corpus = corpus(&policy, corpus_size, 0x706f7263)?;
    let n = corpus.requests.len();

    let decide_at = |i: usize| {
        let i = i % n;
        decide(
            &policy,
            &corpus.requests[i],
            &corpus.histories[i],
            corpus.now_us[i],
        )
    };
    let json_parse_at =
        |i: usize| serde_json::from_slice::<serde_json::Value>(&corpus.bodies[i % n]);
    let validate_at = |i: usize| {
        let i = i % n;
        let parsed = parse_request(&corpus.bodies[i]).expect("the corpus parses");
        validate(parsed, &corpus.agency, &policy.limits, corpus.now_us[i])
    };

    // Warm caches and branch predictors on the whole corpus first.
    time_each(n, decide_at);
    time_each(n, json_parse_at);
    time_each(n, validate_at);

    let timer = time_each(samples, |i| i);
    let decided = time_each(samples, decide_at);
    let json_parse = time_each(samples, json_parse_at);
    let validated = time_each(samples, validate_at);

    print_mix(&corpus, &policy, &decide_at);
    println!(
        "\n{samples} timed calls per row over {n} requests, {} cameras; timer overhead p50 {} (included in every row)\n",
        policy.cameras.len(),
        show(timer.p50)
    );
    println!("| step | p50 | p99 | max | p50 ÷ JSON parse | p50 ÷ parse + validate |");
    println!("|---|---|---|---|---|---|");
    for (name, summary) in [
        ("`policy::decide()`", decided),
        ("baseline: `serde_json` parse to `Value`", json_parse),
        ("baseline: `parse_request` + `validate`", validated),
    ] {
        println!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} |",
            show(summary.p50),
            show(summary.p99),
            show(summary.max),
            ratio(summary, json_parse),
            ratio(summary, validated),
        );
    }
    Ok(())
}

fn ratio(a: Summary, b: Summary) -> f64 {
    a.p50.as_secs_f64() / b.p50.as_secs_f64().max(1e-12)
}

/// What the gate made of the corpus, per camera: shows the benchmark
/// exercises every rule rather than one fast refusal.
fn print_mix(
    corpus: &Corpus,
    policy: &Policy,
    decide_at: &dyn Fn(usize) -> porchlight::policy::Decision,
) {
    let mut served = 0;
    let mut awaiting = 0;
    let mut owner_only = 0;
    let mut refused = std::collections::BTreeMap::<&str, usize>::new();
    for i in 0..corpus.requests.len() {
        for camera in decide_at(i).cameras {
            match camera.outcome {
                Outcome::Serve { .. } => served += 1,
                Outcome::AwaitOwner { .. } => awaiting += 1,
                Outcome::ShowToOwnerOnly => owner_only += 1,
                Outcome::Refuse { reason } => *refused.entry(reason.code()).or_default() += 1,
            }
        }
    }
    println!(
        "policy: {} cameras ({}); per-camera outcomes over the corpus: served {served}, awaiting the owner {awaiting}, shown to the owner only {owner_only}, refused {refused:?}",
        policy.cameras.len(),
        policy
            .cameras
            .iter()
            .map(|c| format!(
                "{} {}{}",
                c.name,
                c.level,
                if c.schedule.is_some() {
                    " scheduled"
                } else {
                    ""
                }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
