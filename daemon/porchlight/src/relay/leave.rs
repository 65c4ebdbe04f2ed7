//! Leaving the relay program (`porchlight relay leave`, `POST
//! /api/relay/leave`): one action that, in this order,
//!
//! 1. stops the relay at once ([`Membership`]: the listener refuses every
//!    connection and call, live shares end; `DaemonEvent::RelayLeft`),
//! 2. takes back every grant, pending request and download token,
//! 3. deletes the evidence packages made for the relay,
//! 4. wipes the pinned agency CA and the enrolment,
//! 5. sends a signed deletion request for the registry entry and any
//!    footage the relay holds, waits (bounded, with retries) for the
//!    relay's confirmation and records it; unconfirmed, the daemon keeps
//!    re-sending it, and then wipes the registration and registry CA.
//!
//! Each step is in the audit log.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::membership::Membership;
use super::registry::{self, Reconciled, Registry};
use crate::audit::{AuditEvent, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::events::DaemonEvent;
use crate::requests::RequestService;
use crate::time::{format_utc_us, now_utc_us};

/// The reason pending requests and grants carry afterwards.
pub const REASON: &str = "the owner left the relay program";

/// What leaving did, for the owner.
#[derive(Clone, Debug, Serialize)]
pub struct LeaveReport {
    pub left_at: String,
    pub grants_revoked: usize,
    pub pending_denied: usize,
    pub tokens_revoked: usize,
    pub packages_deleted: usize,
    pub wiped: Vec<String>,
    /// `confirmed`, `pending` (the daemon keeps re-sending it) or
    /// `not_registered` (no registry had this box).
    pub deletion: &'static str,
    /// The relay's confirmation, as received.
    pub confirmation: Option<serde_json::Value>,
    /// Why the deletion is not confirmed yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_error: Option<String>,
}

/// What leaving needs.
pub struct Leaver {
    pub config: Config,
    pub requests: RequestService,
    pub membership: Membership,
    pub registry: Option<Arc<Registry>>,
    /// Which channel asked (owner API or CLI), for the audit log.
    pub component: Component,
}

impl Leaver {
    /// Leaves; waits up to `wait` for the relay to confirm the deletion.
    pub async fn leave(&self, wait: Duration) -> anyhow::Result<LeaveReport> {
        self.leave_as(None, wait).await
    }

    /// Leaves for the owner account `user` (named in the audit log).
    pub async fn leave_as(
        &self,
        user: Option<&str>,
        wait: Duration,
    ) -> anyhow::Result<LeaveReport> {
        let audit = &self.requests.audit;
        let data_dir = &self.config.data_dir;
        let owner = |event: EventType| {
            AuditEvent::new(self.component.clone(), event, Identity::owner(user))
        };
        audit
            .append(owner(EventType::Leave).outcome(Outcome::ok()).details(
                json!({ "what": "the owner leaves the relay program: relay access stopped" }),
            ))
            .await?;
        // 1. Nothing more goes out from this moment.
        self.membership.leave();
        self.requests.bus.publish(DaemonEvent::RelayLeft);

        // 2. Grants, waiting requests, tokens.
        let store = self.requests.store.clone();
        let revoked =
            tokio::task::spawn_blocking(move || store.revoke_all(REASON, now_utc_us())).await??;
        for (request, cameras) in &revoked.requests {
            for (camera, before) in cameras {
                let entry = owner(EventType::Revocation)
                    .request(request.id.clone())
                    .camera(camera.clone())
                    .outcome(Outcome::ok())
                    .details(json!({ "was": before, "now": request.camera(camera).map(|c| c.outcome.clone()), "reason": REASON }));
                audit.append(entry).await?;
            }
            self.requests.bus.publish(DaemonEvent::RequestChanged {
                id: request.id.clone(),
                state: request.state,
            });
        }

        // 3. The packages made for the relay.
        let deliveries = data_dir.join("deliveries");
        let packages_deleted = count_files(&deliveries);
        let wiped_packages = match std::fs::remove_dir_all(&deliveries) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                tracing::error!(error = %e, path = %deliveries.display(), "cannot delete relay packages");
                false
            }
        };
        if wiped_packages {
            // The owner's history shows them gone (best effort).
            let store = self.requests.store.clone();
            let marked = tokio::task::spawn_blocking(move || {
                store.mark_all_deliveries_removed(now_utc_us())
            })
            .await;
            match marked {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot record removed packages in the request history")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot record removed packages in the request history")
                }
            }
        }
        audit
            .append(owner(EventType::Revocation).outcome(Outcome::ok()).details(json!({
                "what": "every grant, pending request and download token revoked; relay packages deleted",
                "grants_revoked": revoked.grants,
                "pending_denied": revoked.pending,
                "tokens_revoked": revoked.tokens,
                "packages_deleted": packages_deleted,
            })))
            .await?;

        // 4. The credentials that let agencies in.
        let mut wiped = Vec::new();
        let enrolment = data_dir.join("relay").join("enrolment.json");
        for path in self.config.relay.agency_ca.iter().chain([&enrolment]) {
            if std::fs::remove_file(path).is_ok() {
                wiped.push(path.display().to_string());
            }
        }
        let left_at = format_utc_us(now_utc_us());
        if registry::state::load_left(data_dir)?.is_none() {
            registry::state::save_left(
                data_dir,
                &registry::state::Left {
                    left_at: left_at.clone(),
                    registration_id: None,
                    deletion: None,
                    confirmation: None,
                },
            )?;
        }
        audit
            .append(
                owner(EventType::Leave)
                    .outcome(Outcome::ok())
                    .details(json!({
                        "what": "relay credentials wiped (pinned agency CA, enrolment)",
                        "wiped": wiped,
                    })),
            )
            .await?;

        // 5. The registry entry and footage at the relay.
        let mut report = LeaveReport {
            left_at,
            grants_revoked: revoked.grants,
            pending_denied: revoked.pending,
            tokens_revoked: revoked.tokens,
            packages_deleted,
            wiped,
            deletion: "not_registered",
            confirmation: None,
            deletion_error: None,
        };
        let deletion = match &self.registry {
            Some(registry) => registry.begin_leave().await?,
            None => None,
        };
        let (Some(registry), Some(deletion)) = (&self.registry, deletion) else {
            return Ok(report);
        };
        audit
            .append(owner(EventType::Leave).outcome(Outcome::ok()).details(json!({
                "what": "signed deletion request for the registry entry and any footage the relay holds",
                "delete": registry::DELETE_SCOPE,
                "request": deletion,
            })))
            .await?;
        match registry.reconcile_within(wait).await {
            Ok(Reconciled::Deleted { confirmation }) => {
                report.deletion = "confirmed";
                report.confirmation = Some(confirmation);
                report
                    .wiped
                    .extend(["registration".to_string(), "registry CA".to_string()]);
            }
            Ok(other) => {
                report.deletion = "pending";
                report.deletion_error = Some(format!("unexpected: {other:?}"));
            }
            Err(e) => {
                report.deletion = "pending";
                report.deletion_error = Some(e.to_string());
                audit
                    .append(owner(EventType::Leave).outcome(Outcome::error(format!(
                        "the relay has not confirmed the deletion yet ({e}); the daemon keeps sending it"
                    ))))
                    .await?;
                registry.nudge();
            }
        }
        Ok(report)
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                count_files(&path)
            } else {
                1
            }
        })
        .sum()
}

/// `porchlight relay leave`: through the running daemon's owner API (it
/// holds the audit log and the relay listener), else on the files.
pub fn run_cli(config: &Config, wait: Duration) -> anyhow::Result<serde_json::Value> {
    let body = json!({ "wait_s": wait.as_secs().max(1) });
    match crate::owner_client::call_if_running(config, "POST", "/api/relay/leave", Some(&body))? {
        Some(answer) => Ok(answer),
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let audit = crate::audit::AuditLog::open(&config.data_dir)?;
                let bus = crate::events::EventBus::new();
                let controls = crate::controls::Controls::load(config, audit.clone(), bus.clone())?;
                let evidence = Arc::new(crate::evidence::EvidenceSettings::load(config)?);
                let store = crate::requests::RequestStore::open(&config.data_dir)?;
                let requests =
                    RequestService::new(store, audit.clone(), bus).with_component(Component::Cli);
                let registry = config.relay.registry.as_ref().map(|_| {
                    Arc::new(Registry::new(
                        config,
                        evidence,
                        controls.policy(),
                        audit.clone(),
                    ))
                });
                let leaver = Leaver {
                    config: config.clone(),
                    requests,
                    membership: Membership::load(&config.data_dir),
                    registry,
                    component: Component::Cli,
                };
                let report = leaver.leave(wait).await?;
                drop(leaver);
                // The last handle: the writer closes the log cleanly.
                tokio::task::spawn_blocking(move || drop(audit)).await?;
                Ok(serde_json::to_value(report)?)
            })
        }
    }
}
