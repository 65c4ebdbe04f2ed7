//! The owner's side of police footage requests: list them, read one,
//! approve (perhaps fewer cameras, perhaps a shorter window) or deny.
//!
//! Ids are checked against `^req_[0-9a-f]{20}$` before anything touches the
//! database; bodies refuse unknown fields and name what is wrong.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::OwnerUser;
use super::recordings::{query_or_error, ApiError};
use super::AppState;
use crate::policy::TimeWindow;
use crate::requests::{
    is_request_id, Activity, ErrorKind, RequestState, ServiceError, StoredRequest,
};
use crate::time::parse_utc_us;

#[derive(Deserialize)]
pub struct ListParams {
    state: Option<String>,
}

/// `POST /api/requests/{id}/approve`. Every field is optional: no cameras
/// means every camera waiting for the owner, no window the policy's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    cameras: Option<Vec<String>>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    reason: String,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn checked_id(id: &str) -> Result<(), ApiError> {
    if is_request_id(id) {
        Ok(())
    } else {
        Err(bad(format!(
            "`id`: `{}` is not a request id (req_ followed by 20 lowercase hex digits)",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// Parses a JSON body, naming the field at fault (`cameras[1]`, `colour`).
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            bad(format!("body: {inner}"))
        } else {
            bad(format!("`{path}`: {inner}"))
        }
    })?;
    deserializer.end().map_err(|e| bad(format!("body: {e}")))?;
    Ok(value)
}

fn service_error(e: ServiceError) -> ApiError {
    let status = match &e {
        ServiceError::Store(store) => match store.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::BadInput => StatusCode::BAD_REQUEST,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
        ServiceError::Audit { .. } | ServiceError::Cancelled(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    ApiError(status, e.to_string())
}

/// A request with what came of it: the packages delivered and each
/// download (from `requests.db`, not the audit log).
#[derive(Serialize)]
pub struct RequestView {
    #[serde(flatten)]
    request: StoredRequest,
    #[serde(flatten)]
    activity: Activity,
}

async fn activity_of(
    state: &AppState,
    only: Option<String>,
) -> Result<std::collections::HashMap<String, Activity>, ApiError> {
    let store = state.requests.store.clone();
    tokio::task::spawn_blocking(move || match only {
        Some(id) => store.activity(&id).map(|a| [(id, a)].into_iter().collect()),
        None => store.all_activity(),
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| service_error(e.into()))
}

fn with_activity(
    requests: Vec<StoredRequest>,
    mut activity: std::collections::HashMap<String, Activity>,
) -> Vec<RequestView> {
    requests
        .into_iter()
        .map(|request| RequestView {
            activity: activity.remove(&request.id).unwrap_or_default(),
            request,
        })
        .collect()
}

/// `GET /api/requests[?state=pending]`: newest first, each with its
/// deliveries and downloads.
pub async fn list(
    State(state): State<Arc<AppState>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let params = query_or_error(params)?;
    let wanted = params
        .state
        .map(|text| {
            text.parse::<RequestState>()
                .map_err(|e| bad(format!("`state`: {e}")))
        })
        .transpose()?;
    let requests = state.requests.list(wanted).await.map_err(service_error)?;
    let activity = activity_of(&state, None).await?;
    Ok(Json(with_activity(requests, activity)))
}

/// `GET /api/requests/{id}`, with its deliveries and downloads.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    checked_id(&id)?;
    match state
        .requests
        .get(id.clone())
        .await
        .map_err(service_error)?
    {
        Some(request) => {
            let mut activity = activity_of(&state, Some(id.clone())).await?;
            Ok(Json(RequestView {
                activity: activity.remove(&id).unwrap_or_default(),
                request,
            }))
        }
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown request id `{id}`"),
        )),
    }
}

/// `POST /api/requests/{id}/approve`.
pub async fn approve(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<StoredRequest>, ApiError> {
    checked_id(&id)?;
    // An empty body approves every waiting camera, like `{}`.
    let body: ApproveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ApproveBody::default()
    } else {
        parse_body(&body)?
    };
    let time =
        |name: &str, text: &str| parse_utc_us(text).map_err(|e| bad(format!("`{name}`: {e}")));
    let window = match (&body.from, &body.to) {
        (Some(from), Some(to)) => Some(TimeWindow {
            from_us: time("from", from)?,
            to_us: time("to", to)?,
        }),
        (None, None) => None,
        (Some(_), None) => return Err(bad("`to` is missing: `from` and `to` go together")),
        (None, Some(_)) => return Err(bad("`from` is missing: `from` and `to` go together")),
    };
    let request = state
        .requests
        .as_owner(owner.0)
        .approve(id, body.cameras, window)
        .await
        .map_err(service_error)?;
    Ok(Json(request))
}

/// `POST /api/requests/{id}/deny`.
pub async fn deny(
    State(state): State<Arc<AppState>>,
    owner: OwnerUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<StoredRequest>, ApiError> {
    checked_id(&id)?;
    let body: DenyBody = parse_body(&body)?;
    let request = state
        .requests
        .as_owner(owner.0)
        .deny(id, body.reason)
        .await
        .map_err(service_error)?;
    Ok(Json(request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<ApproveBody, ApiError>) -> String {
        match result {
            Ok(body) => panic!("accepted {body:?}"),
            Err(ApiError(status, message)) => {
                assert_eq!(status, StatusCode::BAD_REQUEST);
                message
            }
        }
    }

    #[test]
    fn bodies_name_what_is_wrong() {
        assert!(message(parse_body(br#"{"colour": "red"}"#)).contains("colour"));
        assert!(message(parse_body(br#"{"cameras": ["a", 7]}"#)).contains("cameras[1]"));
        assert!(message(parse_body(b"{} trailing")).starts_with("body"));
        let body: ApproveBody = parse_body(br#"{"cameras": ["porch"]}"#)
            .ok()
            .expect("valid");
        assert_eq!(body.cameras, Some(vec!["porch".to_string()]));
    }

    #[test]
    fn ids_are_checked_before_lookup() {
        assert!(checked_id("req_0123456789abcdef0123").is_ok());
        for bad in ["req_0123456789ABCDEF0123", "req_123", "../audit.db", ""] {
            assert!(checked_id(bad).is_err(), "{bad}");
        }
    }
}
