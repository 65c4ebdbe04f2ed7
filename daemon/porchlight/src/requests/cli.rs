//! `porchlight requests ...`: the owner answers from a shell.
//!
//! While the daemon runs it holds the audit log's single-writer lock, so the
//! CLI asks the daemon's owner API (`[http] bind`, plain HTTP on loopback)
//! and the daemon stores, audits and announces the answer. When nothing
//! answers there, the CLI opens the files itself: `requests.db` (WAL, safe
//! beside other writers) and the audit log.

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

use super::{is_request_id, RequestService, RequestState, RequestStore, StoredRequest};
use crate::audit::{AuditLog, Component};
use crate::config::Config;
use crate::events::EventBus;
use crate::policy::TimeWindow;
use crate::time::parse_utc_us;

/// What the owner asked for on the command line.
pub enum OwnerAction {
    List {
        state: Option<RequestState>,
    },
    Approve {
        id: String,
        cameras: Vec<String>,
        from: Option<String>,
        to: Option<String>,
    },
    Deny {
        id: String,
        reason: String,
    },
}

/// Runs `action`, through the daemon if it answers, else on the files.
/// Returns the requests concerned as the owner API renders them (JSON).
pub fn run(config: &Config, action: &OwnerAction) -> anyhow::Result<Vec<Value>> {
    match action {
        OwnerAction::Approve { id, .. } | OwnerAction::Deny { id, .. } if !is_request_id(id) => {
            bail!("`{id}` is not a request id (req_ followed by 20 lowercase hex digits)")
        }
        OwnerAction::Approve { from, to, .. } if from.is_some() != to.is_some() => {
            bail!("--from and --to go together: give both to trim the window, or neither")
        }
        _ => {}
    }
    let (method, path, body) = http_call(action);
    match crate::owner_client::call_if_running(config, method, &path, body.as_ref())? {
        Some(Value::Array(list)) => Ok(list),
        Some(one) => Ok(vec![one]),
        None => on_files(config, action),
    }
}

fn http_call(action: &OwnerAction) -> (&'static str, String, Option<Value>) {
    match action {
        OwnerAction::List { state } => (
            "GET",
            match state {
                Some(state) => format!("/api/requests?state={state}"),
                None => "/api/requests".into(),
            },
            None,
        ),
        OwnerAction::Approve {
            id,
            cameras,
            from,
            to,
        } => {
            let mut body = json!({});
            if !cameras.is_empty() {
                body["cameras"] = json!(cameras);
            }
            if let (Some(from), Some(to)) = (from, to) {
                body["from"] = json!(from);
                body["to"] = json!(to);
            }
            ("POST", format!("/api/requests/{id}/approve"), Some(body))
        }
        OwnerAction::Deny { id, reason } => (
            "POST",
            format!("/api/requests/{id}/deny"),
            Some(json!({ "reason": reason })),
        ),
    }
}

/// No daemon: act on the files, auditing as the CLI.
fn on_files(config: &Config, action: &OwnerAction) -> anyhow::Result<Vec<Value>> {
    let data_dir = &config.data_dir;
    let store = RequestStore::open(data_dir)?;
    let audit = AuditLog::open(data_dir);
    let to_json = |requests: Vec<StoredRequest>| -> anyhow::Result<Vec<Value>> {
        requests
            .iter()
            .map(|r| serde_json::to_value(r).context("cannot render a request"))
            .collect()
    };
    if let OwnerAction::List { state } = action {
        return match audit {
            Ok(audit) => to_json(service(store, audit).list_blocking(*state)?),
            // Listing needs no audit entry unless something expires; say why
            // overdue requests may still read as pending.
            Err(e) => {
                eprintln!("note: not expiring overdue requests ({e})");
                to_json(store.list(*state)?)
            }
        };
    }
    let audit = audit.with_context(|| {
        format!(
            "no daemon answered at http.bind = {}, and the audit log cannot be opened",
            config.http.bind
        )
    })?;
    let service = service(store, audit);
    let answered = match action {
        OwnerAction::Approve {
            id,
            cameras,
            from,
            to,
        } => {
            let window = match (from, to) {
                (Some(from), Some(to)) => Some(TimeWindow {
                    from_us: parse_utc_us(from).map_err(|e| anyhow!("--from: {e}"))?,
                    to_us: parse_utc_us(to).map_err(|e| anyhow!("--to: {e}"))?,
                }),
                _ => None,
            };
            let cameras = (!cameras.is_empty()).then_some(cameras.as_slice());
            service.approve_blocking(id, cameras, window)?
        }
        OwnerAction::Deny { id, reason } => service.deny_blocking(id, reason)?,
        OwnerAction::List { .. } => unreachable!("handled above"),
    };
    to_json(vec![answered])
}

fn service(store: RequestStore, audit: AuditLog) -> RequestService {
    RequestService::new(store, audit, EventBus::new()).with_component(Component::Cli)
}

pub const TABLE_HEADER: &str =
    "ID                        STATE               RECEIVED (UTC)        EXPIRES (UTC)         AGENCY / CASE";

/// A request for people: one summary line, then one line per camera.
pub fn render(request: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let time = |v: &Value| text(v).chars().take(20).collect::<String>();
    let mut out = format!(
        "{:<25} {:<19} {:<21} {:<21} {} / {}",
        text(&request["id"]),
        text(&request["state"]),
        time(&request["received"]),
        time(&request["expires"]),
        text(&request["agency"]),
        text(&request["case_id"]),
    );
    if let Some(reason) = request["denial_reason"].as_str() {
        out.push_str(&format!("\n    denied: {reason}"));
    }
    for camera in request["cameras"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n    {:<16} {}",
            text(&camera["camera"]),
            text(&camera["outcome"])
        ));
        if let (Some(from), Some(to)) = (
            camera["window"]["from"].as_str(),
            camera["window"]["to"].as_str(),
        ) {
            out.push_str(&format!(" {from}..{to}"));
        }
        if let Some(refusal) = camera["refusal"].as_str() {
            out.push_str(&format!(" ({refusal})"));
        }
    }
    out
}
