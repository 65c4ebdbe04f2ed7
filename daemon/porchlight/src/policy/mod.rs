//! The owner's policy for police footage requests: sharing levels,
//! schedules, request validation and the single gate, [`decide`], that every
//! relay path goes through.
//!
//! The HTTP layer's order of calls for `POST /v1/requests`:
//!
//! 1. [`parse_request`] on the body (unknown fields refused),
//! 2. [`validate`] with the [`AgencyIdentity`] of the TLS client certificate,
//!    the policy's [`RequestLimits`] and the clock,
//! 3. [`decide`] with the request history from `requests::RequestStore::history`,
//!    then `RequestStore::record` to keep the request and its decision,
//! 4. log and notify the owner; answer with the agency-visible part.
//!
//! Everything here is pure logic: no I/O, no clock reads, no state.

mod decide;
mod from_config;
mod geo;
mod level;
mod live;
mod request;
mod schedule;
mod window;

pub use decide::{
    decide, CameraDecision, CameraPolicy, Decision, Outcome, Policy, Refusal, RequestHistory,
};
pub use geo::GeoPoint;
pub use level::{SharingLevel, UnknownSharingLevel};
pub use live::{decide_live, LiveAsk, LiveRefusal};
pub use request::{
    parse_request, validate, AgencyIdentity, FootageRequest, LegalBasis, LegalBasisKind, Officer,
    RequestError, RequestLimits, ValidatedRequest, WireWindow, MAX_ID_CHARS, MAX_NAMED_CAMERAS,
    MAX_NAME_CHARS, MAX_REASON_CHARS,
};
pub use schedule::{Schedule, ScheduleWindow, TimeOfDay, Weekdays};
pub use window::TimeWindow;

#[cfg(test)]
mod proptests;
