//! `GET /api/audit`: the owner reads their audit log, a page at a time.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::recordings::{query_or_error, ApiError};
use super::AppState;
use crate::audit::{AuditEntry, AuditQuery};
use crate::time::parse_utc_us;

/// Largest page the API serves (the CLI pages through everything).
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

/// Everything arrives as text so each bad value gets an error naming it.
#[derive(Deserialize)]
pub struct AuditParams {
    since: Option<String>,
    until: Option<String>,
    camera: Option<String>,
    request: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

#[derive(Serialize)]
struct AuditPage {
    entries: Vec<AuditEntry>,
    /// Pass as `after=` for the next page; null when this was the last.
    next_after: Option<i64>,
}

fn bad(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("`{name}`: {message}"))
}

fn to_query(params: AuditParams) -> Result<AuditQuery, ApiError> {
    let time = |name: &str, value: Option<String>| {
        value
            .map(|text| parse_utc_us(&text).map_err(|e| bad(name, e)))
            .transpose()
    };
    let since = time("since", params.since)?;
    let until = time("until", params.until)?;
    if let (Some(since), Some(until)) = (since, until) {
        if since >= until {
            return Err(bad("since", "must be before `until`"));
        }
    }
    let limit = match params.limit {
        None => DEFAULT_PAGE,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(bad(
                    "limit",
                    format!("`{text}` is not a whole number from 1 to {MAX_PAGE}"),
                ))
            }
        },
    };
    let after_seq = match params.after {
        None => None,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(bad(
                    "after",
                    format!(
                        "`{text}` is not an entry number (use `next_after` from the last page)"
                    ),
                ))
            }
        },
    };
    let non_empty = |name: &str, value: Option<String>| match value {
        Some(text) if text.is_empty() => Err(bad(name, "must not be empty")),
        other => Ok(other),
    };
    Ok(AuditQuery {
        since,
        until,
        camera: non_empty("camera", params.camera)?,
        request_id: non_empty("request", params.request)?,
        limit: Some(limit),
        after_seq,
    })
}

pub async fn audit(
    State(state): State<Arc<AppState>>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let query = to_query(query_or_error(params)?)?;
    let log = state.audit.clone();
    let limit = query.effective_limit();
    let entries = tokio::task::spawn_blocking(move || log.query(&query))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let next_after = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_after,
    })
    .into_response())
}

/// What `GET /api/audit/verify` answers: `porchlight audit verify` as JSON.
#[derive(Serialize)]
struct VerifyBody {
    intact: bool,
    entries: u64,
    first_seq: Option<i64>,
    head_seq: Option<i64>,
    head_hash: Option<String>,
    /// Each problem in the words of `porchlight audit verify`.
    problems: Vec<String>,
    /// Entries recording tampering noticed earlier.
    alerts: Vec<i64>,
}

/// `GET /api/audit/verify`: walks the whole chain (on the blocking pool).
pub async fn verify(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let log = state.audit.clone();
    let report = tokio::task::spawn_blocking(move || log.verify())
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (head_seq, head_hash) = report
        .head
        .clone()
        .map_or((None, None), |(seq, hash)| (Some(seq), Some(hash)));
    Ok(Json(VerifyBody {
        intact: report.is_intact(),
        entries: report.entries,
        first_seq: report.first_seq,
        head_seq,
        head_hash,
        problems: report.problems.iter().map(ToString::to_string).collect(),
        alerts: report.alerts.clone(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> AuditParams {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        AuditParams {
            since: get("since"),
            until: get("until"),
            camera: get("camera"),
            request: get("request"),
            limit: get("limit"),
            after: get("after"),
        }
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        match to_query(params(pairs)) {
            Ok(q) => panic!("accepted {q:?}"),
            Err(ApiError(status, message)) => {
                assert_eq!(status, StatusCode::BAD_REQUEST);
                message
            }
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(error(&[("since", "yesterday")]).starts_with("`since`"));
        assert!(error(&[("until", "soon")]).starts_with("`until`"));
        assert!(error(&[("limit", "0")]).starts_with("`limit`"));
        assert!(error(&[("limit", "5000")]).starts_with("`limit`"));
        assert!(error(&[("after", "-3")]).starts_with("`after`"));
        assert!(error(&[("camera", "")]).starts_with("`camera`"));
        assert!(error(&[
            ("since", "2026-01-02T00:00:00Z"),
            ("until", "2026-01-01T00:00:00Z")
        ])
        .contains("before"));
    }

    #[test]
    fn good_parameters_make_a_query() {
        let query = to_query(params(&[
            ("since", "2026-01-01T00:00:00Z"),
            ("camera", "porch"),
            ("request", "R1"),
            ("limit", "10"),
            ("after", "42"),
        ]))
        .ok()
        .expect("valid");
        assert_eq!(query.camera.as_deref(), Some("porch"));
        assert_eq!(query.request_id.as_deref(), Some("R1"));
        assert_eq!(query.limit, Some(10));
        assert_eq!(query.after_seq, Some(42));
        assert!(query.since.is_some() && query.until.is_none());
    }
}
