//! A footage request as an agency sends it, and its validation.
//!
//! The body is untrusted: unknown fields are refused (a forged
//! `sharing_level` must fail loudly, not be ignored), every string is
//! bounded, identifiers are restricted to a charset that can never form a
//! path, and the agency is the one named by the TLS client certificate,
//! never the one the body claims.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::geo::GeoPoint;
use super::window::{duration_us, TimeWindow};

/// Longest free-text `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// Longest identifier (case id, badge, incident type), in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest name (agency, officer) or warrant reference, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// Most cameras one request may name.
pub const MAX_NAMED_CAMERAS: usize = 64;

/// Who is asking, as proven by the TLS client certificate pinned at the
/// agency's enrolment (the HTTP layer fills this in; never from the body).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgencyIdentity {
    pub name: String,
    /// SHA-256 of the client certificate (DER), lowercase hex.
    pub cert_fingerprint: String,
}

/// The officer making the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    pub name: String,
    /// Badge or personnel number.
    pub badge: String,
}

/// The legal basis as sent on the wire; a warrant's reference travels in
/// `warrant_reference`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasisKind {
    Consent,
    Emergency,
    Warrant,
}

/// The legal basis the agency claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LegalBasis {
    /// The agency asks for the owner's consent.
    Consent,
    /// The agency claims an emergency (imminent danger).
    Emergency,
    /// A warrant or court order, by its reference.
    Warrant { reference: String },
}

impl LegalBasis {
    pub fn is_emergency(&self) -> bool {
        matches!(self, LegalBasis::Emergency)
    }
}

/// The requested time range, as RFC 3339 text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireWindow {
    pub from: String,
    pub to: String,
}

/// A footage request exactly as received (JSON body of `POST /v1/requests`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FootageRequest {
    /// Must equal the agency of the client certificate.
    pub agency: String,
    pub officer: Officer,
    pub case_id: String,
    pub incident_type: String,
    pub legal_basis: LegalBasisKind,
    /// Required with `legal_basis = "warrant"`, refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warrant_reference: Option<String>,
    /// Where the incident happened.
    pub location: GeoPoint,
    /// Search radius around `location`, in metres.
    pub radius_m: f64,
    pub window: WireWindow,
    /// Restrict the request to these cameras (still only those in the radius).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cameras: Option<Vec<String>>,
    pub reason: String,
}

/// Limits a request must respect; the owner may tighten the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestLimits {
    pub min_window: Duration,
    pub max_window: Duration,
    pub max_radius_m: u32,
    /// How far in the future `window.to` may lie, for clock differences.
    pub clock_skew: Duration,
    /// Requests accepted per case id (across all time), this one included.
    pub requests_per_case: u32,
    /// Requests accepted per agency in any 24 hours, this one included.
    pub requests_per_agency_per_day: u32,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            min_window: Duration::from_secs(15 * 60),
            max_window: Duration::from_secs(12 * 3600),
            max_radius_m: 400,
            clock_skew: Duration::from_secs(120),
            requests_per_case: 2,
            requests_per_agency_per_day: 20,
        }
    }
}

/// A request that passed [`validate`]; only this module can make one, so
/// holding one proves the checks ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ValidatedRequest {
    agency: AgencyIdentity,
    officer: Officer,
    case_id: String,
    incident_type: String,
    legal_basis: LegalBasis,
    location: GeoPoint,
    radius_m: f64,
    window: TimeWindow,
    cameras: Option<Vec<String>>,
    reason: String,
}

impl ValidatedRequest {
    pub fn agency(&self) -> &AgencyIdentity {
        &self.agency
    }
    pub fn officer(&self) -> &Officer {
        &self.officer
    }
    pub fn case_id(&self) -> &str {
        &self.case_id
    }
    pub fn incident_type(&self) -> &str {
        &self.incident_type
    }
    pub fn legal_basis(&self) -> &LegalBasis {
        &self.legal_basis
    }
    pub fn location(&self) -> GeoPoint {
        self.location
    }
    pub fn radius_m(&self) -> f64 {
        self.radius_m
    }
    pub fn window(&self) -> TimeWindow {
        self.window
    }
    /// The cameras the agency named (deduplicated), or `None` for "every
    /// camera in the radius".
    pub fn cameras(&self) -> Option<&[String]> {
        self.cameras.as_deref()
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why a request was refused before any policy was consulted. Each names the
/// field (as a JSON path such as `window.from`) so the agency can fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the body is not valid JSON: {message}")]
    Malformed { message: String },
    #[error("unknown field `{field}`: only the documented fields are accepted")]
    UnknownField { field: String },
    #[error("`{field}` is missing")]
    MissingField { field: String },
    #[error("`{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "`agency`: the body names `{claimed}` but the client certificate belongs to `{certified}`"
    )]
    AgencyMismatch { claimed: String, certified: String },
}

impl RequestError {
    /// The stable machine-readable code of the relay protocol.
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Malformed { .. } => "malformed_body",
            RequestError::UnknownField { .. } => "unknown_field",
            RequestError::MissingField { .. } => "missing_field",
            RequestError::Invalid { .. } => "invalid_field",
            RequestError::AgencyMismatch { .. } => "agency_mismatch",
        }
    }

    /// The JSON path of the offending field, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            RequestError::Malformed { .. } => None,
            RequestError::UnknownField { field }
            | RequestError::MissingField { field }
            | RequestError::Invalid { field, .. } => Some(field),
            RequestError::AgencyMismatch { .. } => Some("agency"),
        }
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// Parses a request body. Unknown fields, duplicate fields, wrong types and
/// trailing data are all refused, naming the field where there is one.
pub fn parse_request(body: &[u8]) -> Result<FootageRequest, RequestError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request: FootageRequest = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| classify_json_error(&e.path().to_string(), e.inner()))?;
    deserializer
        .end()
        .map_err(|e| classify_json_error(".", &e))?;
    Ok(request)
}

fn classify_json_error(path: &str, error: &serde_json::Error) -> RequestError {
    let shown = error.to_string();
    // serde_json appends " at line L column C"; the field path says more.
    let message = match shown.rfind(" at line ") {
        Some(cut) => shown[..cut].to_string(),
        None => shown,
    };
    let quoted = message.split('`').nth(1).unwrap_or_default().to_string();
    let join = |name: &str| match path {
        "." | "" => name.to_string(),
        parent if parent.ends_with(name) => parent.to_string(),
        parent => format!("{parent}.{name}"),
    };
    if !error.is_data() {
        RequestError::Malformed { message }
    } else if message.starts_with("unknown field") {
        RequestError::UnknownField {
            field: join(&quoted),
        }
    } else if message.starts_with("missing field") {
        RequestError::MissingField {
            field: join(&quoted),
        }
    } else if message.starts_with("duplicate field") {
        invalid(&join(&quoted), "appears more than once")
    } else {
        let field = if path == "." { "(body)" } else { path };
        invalid(field, message)
    }
}

/// Checks a parsed request against the limits and the certificate's agency.
/// `now_us` is the device's clock (UTC µs). Rate limits are not checked here
/// (they need the request history): [`super::decide()`] applies them.
pub fn validate(
    raw: FootageRequest,
    agency: &AgencyIdentity,
    limits: &RequestLimits,
    now_us: i64,
) -> Result<ValidatedRequest, RequestError> {
    check_name("agency", &raw.agency)?;
    if raw.agency != agency.name {
        return Err(RequestError::AgencyMismatch {
            claimed: raw.agency,
            certified: agency.name.clone(),
        });
    }
    check_name("officer.name", &raw.officer.name)?;
    check_id("officer.badge", &raw.officer.badge)?;
    check_id("case_id", &raw.case_id)?;
    check_id("incident_type", &raw.incident_type)?;

    let legal_basis = match (raw.legal_basis, raw.warrant_reference) {
        (LegalBasisKind::Warrant, Some(reference)) => {
            check_name("warrant_reference", &reference)?;
            LegalBasis::Warrant { reference }
        }
        (LegalBasisKind::Warrant, None) => {
            return Err(RequestError::MissingField {
                field: "warrant_reference".into(),
            })
        }
        (_, Some(_)) => {
            return Err(invalid(
                "warrant_reference",
                "only allowed with legal_basis \"warrant\"",
            ))
        }
        (LegalBasisKind::Consent, None) => LegalBasis::Consent,
        (LegalBasisKind::Emergency, None) => LegalBasis::Emergency,
    };

    let location = GeoPoint::new(raw.location.lat, raw.location.lon)
        .map_err(|problem| invalid("location", problem))?;
    let max_radius = f64::from(limits.max_radius_m);
    if !raw.radius_m.is_finite() || raw.radius_m <= 0.0 || raw.radius_m > max_radius {
        return Err(invalid(
            "radius_m",
            format!(
                "{} must be more than 0 and at most {} metres",
                raw.radius_m, limits.max_radius_m
            ),
        ));
    }

    let window = check_window(&raw.window, limits, now_us)?;

    let cameras = match raw.cameras {
        None => None,
        Some(list) => Some(check_cameras(list)?),
    };

    check_text("reason", &raw.reason, MAX_REASON_CHARS)?;

    Ok(ValidatedRequest {
        agency: agency.clone(),
        officer: raw.officer,
        case_id: raw.case_id,
        incident_type: raw.incident_type,
        legal_basis,
        location,
        radius_m: raw.radius_m,
        window,
        cameras,
        reason: raw.reason,
    })
}

fn check_window(
    wire: &WireWindow,
    limits: &RequestLimits,
    now_us: i64,
) -> Result<TimeWindow, RequestError> {
    // Bound the text before parsing so a huge string costs nothing.
    for (field, text) in [("window.from", &wire.from), ("window.to", &wire.to)] {
        if text.len() > 64 {
            return Err(invalid(field, "is not an RFC 3339 time"));
        }
    }
    let from_us = crate::time::parse_utc_us(&wire.from).map_err(|m| invalid("window.from", m))?;
    let to_us = crate::time::parse_utc_us(&wire.to).map_err(|m| invalid("window.to", m))?;
    if from_us >= to_us {
        return Err(invalid("window.to", "must be after window.from"));
    }
    let window = TimeWindow { from_us, to_us };
    let minutes = |d: Duration| d.as_secs() / 60;
    if window.len_us() < duration_us(limits.min_window) {
        return Err(invalid(
            "window",
            format!("must cover at least {} minutes", minutes(limits.min_window)),
        ));
    }
    if window.len_us() > duration_us(limits.max_window) {
        return Err(invalid(
            "window",
            format!("must cover at most {} minutes", minutes(limits.max_window)),
        ));
    }
    if to_us > now_us.saturating_add(duration_us(limits.clock_skew)) {
        return Err(invalid(
            "window.to",
            "lies in the future: only recorded footage can be requested",
        ));
    }
    Ok(window)
}

fn check_cameras(list: Vec<String>) -> Result<Vec<String>, RequestError> {
    if list.is_empty() {
        return Err(invalid(
            "cameras",
            "is empty: leave it out to ask for every camera in the radius",
        ));
    }
    if list.len() > MAX_NAMED_CAMERAS {
        return Err(invalid(
            "cameras",
            format!("names more than {MAX_NAMED_CAMERAS} cameras"),
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(list.len());
    for (i, name) in list.into_iter().enumerate() {
        if !is_camera_name(&name) {
            return Err(invalid(
                &format!("cameras[{i}]"),
                "is not a camera name (1-64 characters of a-z, 0-9, `_`, `-`)",
            ));
        }
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(unique)
}

/// The camera-name rule of the config file.
pub(crate) fn is_camera_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Identifiers may end up in file names and URLs: ASCII letters, digits,
/// `.`, `_`, `-`, starting with a letter or digit (so never `..` or `/`).
fn check_id(field: &str, value: &str) -> Result<(), RequestError> {
    let first_ok = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !first_ok || !rest_ok || value.len() > MAX_ID_CHARS {
        return Err(invalid(
            field,
            format!(
                "must be 1-{MAX_ID_CHARS} characters of A-Z, a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Names: any printable text, one line.
fn check_name(field: &str, value: &str) -> Result<(), RequestError> {
    check_text(field, value, MAX_NAME_CHARS)?;
    if value.contains(['\n', '\t']) {
        return Err(invalid(field, "must be a single line"));
    }
    Ok(())
}

/// Free text: not blank, bounded, no control characters but newline and tab.
fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), RequestError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(invalid(
            field,
            format!("is longer than {max_chars} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid(field, "contains control characters"));
    }
    // Bidirectional overrides and line separators can make text read
    // differently on the owner's screen from what was sent.
    if value.chars().any(|c| {
        matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}')
    }) {
        return Err(invalid(field, "contains text-direction or line-separator characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
