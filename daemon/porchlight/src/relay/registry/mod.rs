//! The relay's registry (docs/registry.md): where this box lists the
//! cameras the owner shares, so investigators know whom to ask. The daemon
//! is the registry's TLS client with its device certificate; every message
//! is signed with the device key ([`signed`]). [`Registry::reconcile`]
//! makes the registry match the box: the first registration, an update
//! when the owner changes a level or a camera, and while leaving, the
//! deletion request until the relay confirms it. A registry that is down
//! only delays this: [`spawn_sync`] retries with backoff in its own task.

pub mod client;
pub mod listing;
pub mod signed;
pub mod state;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{watch, Notify};

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::controls::SharedPolicy;
use crate::events::{DaemonEvent, EventBus};
use crate::evidence::DeviceKey;
use crate::time::{format_utc_us, now_utc_us};
use client::{RegistryClient, RegistryError};
use listing::Listing;
use signed::SignedMessage;
use state::{Left, Registration};

/// What the registry may be asked to delete when the owner leaves.
pub const DELETE_SCOPE: [&str; 2] = ["registry_entry", "footage"];

/// First retry after a failed exchange; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What a reconcile did.
#[derive(Clone, Debug, PartialEq)]
pub enum Reconciled {
    /// Nothing to do: not enrolled with a registry, or already up to date.
    Idle,
    Registered {
        registration_id: String,
    },
    Updated {
        registration_id: String,
    },
    /// The relay confirmed the deletion; the registration is gone.
    Deleted {
        confirmation: serde_json::Value,
    },
}

/// The box's side of the registry, shared by the sync task, the owner API
/// and `porchlight relay leave`.
pub struct Registry {
    config: Config,
    device: Arc<crate::evidence::EvidenceSettings>,
    policy: SharedPolicy,
    audit: AuditLog,
    /// One exchange at a time (the sync task and a leave never interleave
    /// sequence numbers).
    exchange: tokio::sync::Mutex<()>,
    nudge: Notify,
}

impl Registry {
    pub fn new(
        config: &Config,
        device: Arc<crate::evidence::EvidenceSettings>,
        policy: SharedPolicy,
        audit: AuditLog,
    ) -> Registry {
        Registry {
            config: config.clone(),
            device,
            policy,
            audit,
            exchange: tokio::sync::Mutex::new(()),
            nudge: Notify::new(),
        }
    }

    fn device(&self) -> &DeviceKey {
        &self.device.device
    }

    fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    fn client(&self, registration: &Registration) -> Result<RegistryClient, RegistryError> {
        let registry = self.config.relay.registry.as_ref().ok_or_else(|| {
            RegistryError::Setup("`relay.registry_url` is not set in the config".into())
        })?;
        let url = url::Url::parse(&registration.registry_url)
            .map_err(|e| RegistryError::Setup(format!("registry URL: {e}")))?;
        RegistryClient::new(&url, &registry.ca, self.device())
    }

    /// Asks the sync task to look again now.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// The next message: sequence bumped and saved before it is sent, so a
    /// sequence number is never used twice even across a crash.
    fn next_message(
        &self,
        registration: &mut Registration,
        payload: serde_json::Value,
    ) -> Result<SignedMessage, RegistryError> {
        registration.sequence += 1;
        let mut payload = payload;
        payload["sequence"] = registration.sequence.into();
        payload["time"] = format_utc_us(now_utc_us()).into();
        payload["nonce"] = crate::evidence::certificate_fingerprint(&rand::random::<[u8; 16]>())
            [..32]
            .to_string()
            .into();
        payload["device_sha256"] = self.device().fingerprint().into();
        state::save(self.data_dir(), registration)
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        Ok(SignedMessage::sign(self.device(), &payload))
    }

    /// Makes the registry match the box (see the module doc). Errors that
    /// are worth retrying say so ([`RegistryError::is_retryable`]).
    pub async fn reconcile(&self) -> Result<Reconciled, RegistryError> {
        let _one = self.exchange.lock().await;
        let saved = |r: &Registration| {
            state::save(self.data_dir(), r).map_err(|e| RegistryError::Setup(e.to_string()))
        };
        let Some(mut registration) =
            state::load(self.data_dir()).map_err(|e| RegistryError::Setup(e.to_string()))?
        else {
            return Ok(Reconciled::Idle);
        };
        if let Some(leaving) = registration.leaving.clone() {
            return self.send_deletion(&registration, &leaving.deletion).await;
        }
        let Some(registry) = self.config.relay.registry.as_ref() else {
            return Ok(Reconciled::Idle);
        };
        let listing = Listing::build(&self.config, registry, &self.policy.current());
        let digest = listing.digest();
        match registration.registration_id.clone() {
            None => {
                let client = self.client(&registration)?;
                let message = self.next_message(
                    &mut registration,
                    json!({
                        "type": "registration",
                        "device_cert_pem": self.device().certificate_pem(),
                        "listing": listing,
                    }),
                )?;
                let answer = client.send("POST", "v1/registrations", &message).await?;
                let id = answer["registration_id"]
                    .as_str()
                    .filter(|id| !id.is_empty() && id.len() <= 128)
                    .ok_or_else(|| {
                        RegistryError::BadAnswer("no `registration_id` in the answer".into())
                    })?
                    .to_string();
                registration.registration_id = Some(id.clone());
                registration.confirmed_digest = Some(digest);
                registration.confirmed_at = Some(format_utc_us(now_utc_us()));
                saved(&registration)?;
                self.audit_ok(
                    EventType::Enrolment,
                    format!("registered with the relay's registry as {id}"),
                    json!({ "registry": registration.registry_url, "registration_id": id, "listing": listing }),
                )
                .await;
                Ok(Reconciled::Registered {
                    registration_id: id,
                })
            }
            Some(id) if registration.confirmed_digest.as_deref() != Some(digest.as_str()) => {
                let client = self.client(&registration)?;
                let message = self.next_message(
                    &mut registration,
                    json!({ "type": "update", "registration_id": id, "listing": listing }),
                )?;
                client
                    .send("PUT", &format!("v1/registrations/{id}"), &message)
                    .await?;
                registration.confirmed_digest = Some(digest);
                registration.confirmed_at = Some(format_utc_us(now_utc_us()));
                saved(&registration)?;
                self.audit_ok(
                    EventType::Enrolment,
                    format!("registry entry {id} updated"),
                    json!({ "registry": registration.registry_url, "registration_id": id, "listing": listing }),
                )
                .await;
                Ok(Reconciled::Updated {
                    registration_id: id,
                })
            }
            Some(_) => Ok(Reconciled::Idle),
        }
    }

    /// Starts leaving: signs the deletion request (registry entry and any
    /// footage the relay holds) and keeps it, so it is re-sent as is until
    /// confirmed. Returns `None` when no registry ever had this box.
    pub async fn begin_leave(&self) -> anyhow::Result<Option<SignedMessage>> {
        let _one = self.exchange.lock().await;
        let Some(mut registration) = state::load(self.data_dir())? else {
            return Ok(None);
        };
        if let Some(leaving) = &registration.leaving {
            return Ok(Some(leaving.deletion.clone()));
        }
        let Some(id) = registration.registration_id.clone() else {
            // The registry never answered: nothing there to delete.
            std::fs::remove_file(state::registration_path(self.data_dir()))?;
            return Ok(None);
        };
        let deletion = self.next_message(
            &mut registration,
            json!({ "type": "deletion", "registration_id": id, "delete": DELETE_SCOPE }),
        )?;
        registration.leaving = Some(state::Leaving {
            started_at: format_utc_us(now_utc_us()),
            deletion: deletion.clone(),
        });
        state::save(self.data_dir(), &registration)?;
        Ok(Some(deletion))
    }

    /// Sends the deletion request; on the relay's confirmation, records it
    /// in `left.json` and the audit log and wipes the registration and the
    /// pinned registry CA.
    async fn send_deletion(
        &self,
        registration: &Registration,
        deletion: &SignedMessage,
    ) -> Result<Reconciled, RegistryError> {
        let id = registration.registration_id.clone().unwrap_or_default();
        let client = self.client(registration)?;
        let answer = client
            .send("POST", &format!("v1/registrations/{id}/deletion"), deletion)
            .await?;
        let sent = deletion
            .verify(self.device().certificate_der())
            .map_err(RegistryError::Setup)?;
        let confirmation = answer["confirmation"].clone();
        let deleted: Vec<&str> = confirmation["deleted"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        if confirmation["registration_id"] != json!(id)
            || confirmation["nonce"] != sent["nonce"]
            || DELETE_SCOPE.iter().any(|d| !deleted.contains(d))
        {
            return Err(RegistryError::BadAnswer(format!(
                "the confirmation does not confirm this deletion of {id}: {confirmation}"
            )));
        }
        let mut left = state::load_left(self.data_dir())
            .ok()
            .flatten()
            .unwrap_or(Left {
                left_at: format_utc_us(now_utc_us()),
                registration_id: Some(id.clone()),
                deletion: None,
                confirmation: None,
            });
        left.registration_id = Some(id.clone());
        left.deletion = Some(deletion.clone());
        left.confirmation = Some(confirmation.clone());
        state::save_left(self.data_dir(), &left)
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        let mut wiped = Vec::new();
        let registration_file = state::registration_path(self.data_dir());
        if std::fs::remove_file(&registration_file).is_ok() {
            wiped.push(registration_file.display().to_string());
        }
        if let Some(registry) = &self.config.relay.registry {
            if std::fs::remove_file(&registry.ca).is_ok() {
                wiped.push(registry.ca.display().to_string());
            }
        }
        self.audit_ok(
            EventType::Leave,
            format!("the relay confirmed the deletion of registry entry {id} and its footage"),
            json!({ "registration_id": id, "confirmation": confirmation, "wiped": wiped }),
        )
        .await;
        Ok(Reconciled::Deleted { confirmation })
    }

    /// Like [`Registry::reconcile`], retrying what is worth retrying until
    /// `within` has passed.
    pub async fn reconcile_within(&self, within: Duration) -> Result<Reconciled, RegistryError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut wait = FIRST_BACKOFF;
        loop {
            match self.reconcile().await {
                Err(e) if e.is_retryable() && tokio::time::Instant::now() + wait < deadline => {
                    tracing::info!(error = %e, "registry: retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(4));
                }
                other => return other,
            }
        }
    }

    async fn audit_ok(&self, event: EventType, summary: String, details: serde_json::Value) {
        let entry = AuditEvent::new(Component::Relay, event, Identity::system())
            .outcome(Outcome::ok())
            .details(json!({ "what": summary, "details": details }));
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }

    async fn audit_unreachable(&self, error: &RegistryError, retry_in: Duration) {
        let entry = AuditEvent::new(Component::Relay, EventType::Enrolment, Identity::system())
            .outcome(Outcome::error(format!(
                "registry: {error}; retrying (next in {} s, then with backoff)",
                retry_in.as_secs_f64()
            )));
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }
}

/// Keeps the registry in step: at start, on every change of the owner's
/// switches, and when nudged; a failed exchange is retried with capped
/// exponential backoff (jittered), never blocking anything else. One audit
/// entry per outage, not per retry.
pub fn spawn_sync(
    registry: Arc<Registry>,
    bus: EventBus,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        let mut backoff: Option<Duration> = None;
        loop {
            let result = tokio::select! {
                r = registry.reconcile() => r,
                _ = shutdown.changed() => return,
            };
            match result {
                Ok(done) => {
                    if done != Reconciled::Idle {
                        tracing::info!(?done, "registry in step");
                    }
                    backoff = None;
                }
                Err(e) if e.is_retryable() => {
                    let next = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
                    if backoff.is_none() {
                        registry.audit_unreachable(&e, next).await;
                    }
                    tracing::warn!(error = %e, retry_in_s = next.as_secs_f64(), "registry unreachable");
                    backoff = Some(next);
                }
                Err(e) => {
                    // Refused or unusable: retrying the same message will
                    // not help; wait for the next change.
                    tracing::error!(error = %e, "registry refused the update");
                    let entry =
                        AuditEvent::new(Component::Relay, EventType::Enrolment, Identity::system())
                            .outcome(Outcome::error(format!("registry: {e}")));
                    let _ = registry.audit.append(entry).await;
                    backoff = None;
                }
            }
            let retry = async {
                match backoff {
                    Some(wait) => {
                        let jitter = rand::random::<f64>() * 0.2 + 0.9;
                        tokio::time::sleep(wait.mul_f64(jitter)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = retry => {}
                _ = registry.nudge.notified() => {}
                event = wait_for_settings(&mut events) => {
                    if !event { return; }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Resolves on a change of the owner's switches (or a lag, which may hide
/// one); `false` when the bus is gone.
async fn wait_for_settings(events: &mut tokio::sync::broadcast::Receiver<DaemonEvent>) -> bool {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(DaemonEvent::SettingsChanged) | Err(RecvError::Lagged(_)) => return true,
            Ok(_) => continue,
            Err(RecvError::Closed) => return false,
        }
    }
}

/// `porchlight relay enroll` with a registry configured: records that this
/// box should be registered at `registry_url`. The daemon registers it (and
/// keeps it up to date) from its next start.
pub fn request_registration(config: &Config) -> anyhow::Result<Registration> {
    let registry = config
        .relay
        .registry
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("`relay.registry_url` is not set"))?;
    if !registry.ca.is_file() {
        anyhow::bail!(
            "the registry CA {} does not exist (pass --registry-ca FILE, or set `relay.registry_ca`)",
            registry.ca.display()
        );
    }
    let mut registration = state::load(&config.data_dir)?.unwrap_or_default();
    if registration.leaving.is_some() {
        anyhow::bail!("this box is still leaving the relay (waiting for the deletion to be confirmed); try again once it is");
    }
    if registration.registry_url != registry.url.as_str() {
        // Another registry: start afresh there.
        registration = Registration {
            registry_url: registry.url.to_string(),
            ..Registration::default()
        };
    }
    state::save(&config.data_dir, &registration)?;
    Ok(registration)
}
