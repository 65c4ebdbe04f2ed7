//! `porchlight live-shares list|end`: the owner's live shares to the relay,
//! through the running daemon's owner API (shares live in the daemon only).

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::config::Config;
use crate::owner_client::call_if_running;

/// What the owner asks.
pub enum LiveSharesAction {
    List,
    /// End one share by id, or every running share (`None`).
    End(Option<String>),
}

/// Runs `action` against the daemon; returns its JSON answer.
pub fn run(config: &Config, action: &LiveSharesAction) -> anyhow::Result<Value> {
    let (method, path) = match action {
        LiveSharesAction::List => ("GET", "/api/live-shares".to_string()),
        LiveSharesAction::End(Some(id)) => ("DELETE", format!("/api/live-shares/{id}")),
        LiveSharesAction::End(None) => ("DELETE", "/api/live-shares".to_string()),
    };
    if let LiveSharesAction::End(Some(id)) = action {
        let well_formed = id.len() == 19
            && id
                .strip_prefix("ls_")
                .is_some_and(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if !well_formed {
            bail!("`{id}` is not a live share id (ls_ followed by 16 lowercase hex digits; see `porchlight live-shares list`)");
        }
    }
    // No daemon, no live shares: they end when it stops.
    call_if_running(config, method, &path, None)?.ok_or_else(|| {
        anyhow!(
            "the daemon is not running at http.bind = {}: no live share can be running",
            config.http.bind
        )
    })
}

/// One line per share.
pub fn render(share: &Value) -> String {
    let text = |key: &str| share[key].as_str().unwrap_or("-").to_string();
    format!(
        "{}  {}  camera {}  request {}  started {}  ends {}  minutes {}  streams {}",
        text("id"),
        text("agency"),
        text("camera"),
        text("request_id"),
        text("started"),
        text("expires"),
        share["minutes_audited"].as_u64().unwrap_or(0),
        share["streams"].as_u64().unwrap_or(0),
    )
}
