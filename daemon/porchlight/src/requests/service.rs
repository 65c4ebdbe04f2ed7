//! The owner's answers as the rest of Porchlight sees them: each change of
//! a request's state is stored, audited and announced, in that order.

use crate::audit::{AuditError, AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::events::{DaemonEvent, EventBus};
use crate::policy::TimeWindow;
use crate::time::{format_utc_us, now_utc_us};

use super::{outcome, RequestState, RequestStore, RequestStoreError, StoredRequest};

/// Why an owner action through the service failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] RequestStoreError),
    /// The change is stored but its audit entry is not: the owner must know.
    #[error("request {id} is now {state}, but the audit log could not record it: {source}")]
    Audit {
        id: String,
        state: RequestState,
        source: AuditError,
    },
    #[error("request work was cancelled: {0}")]
    Cancelled(String),
}

/// The request store plus the audit log and the event bus. Every state
/// change made here is written to the store first (the record the relay
/// obeys), then audited, then published.
#[derive(Clone)]
pub struct RequestService {
    pub store: RequestStore,
    pub audit: AuditLog,
    pub bus: EventBus,
    /// Which part of Porchlight audit entries name (owner API, CLI).
    component: Component,
    /// The logged-in owner account acting, when known.
    owner: Option<String>,
}

impl RequestService {
    /// A service whose audit entries name the owner API.
    pub fn new(store: RequestStore, audit: AuditLog, bus: EventBus) -> RequestService {
        RequestService {
            store,
            audit,
            bus,
            component: Component::OwnerApi,
            owner: None,
        }
    }

    /// The same service, its answers audited as the owner account `user`.
    pub fn as_owner(&self, user: Option<String>) -> RequestService {
        RequestService {
            owner: user,
            ..self.clone()
        }
    }

    /// The same service, audited as `component` (the CLI acting on the files).
    pub fn with_component(mut self, component: Component) -> RequestService {
        self.component = component;
        self
    }

    /// The owner approves; see [`RequestStore::approve`]. Blocking.
    pub fn approve_blocking(
        &self,
        id: &str,
        cameras: Option<&[String]>,
        window: Option<TimeWindow>,
    ) -> Result<StoredRequest, ServiceError> {
        let before = self.store.get(id)?;
        let now = now_utc_us();
        let after = match self.store.approve(id, cameras, window, now) {
            Err(expired @ RequestStoreError::Expired { .. }) => {
                // Record the expiry the clock already decided, then refuse.
                self.expire_due_at(now)?;
                return Err(expired.into());
            }
            other => other?,
        };
        self.announce(
            before.as_ref(),
            &after,
            Identity::owner(self.owner.as_deref()),
            None,
        )?;
        Ok(after)
    }

    /// The owner denies every waiting camera; see [`RequestStore::deny`]. Blocking.
    pub fn deny_blocking(&self, id: &str, reason: &str) -> Result<StoredRequest, ServiceError> {
        let before = self.store.get(id)?;
        let now = now_utc_us();
        let after = match self.store.deny(id, reason, now) {
            Err(expired @ RequestStoreError::Expired { .. }) => {
                self.expire_due_at(now)?;
                return Err(expired.into());
            }
            other => other?,
        };
        self.announce(
            before.as_ref(),
            &after,
            Identity::owner(self.owner.as_deref()),
            Some(reason.trim()),
        )?;
        Ok(after)
    }

    /// Expires overdue requests (no answer is a denial). Blocking.
    pub fn expire_due_blocking(&self) -> Result<Vec<StoredRequest>, ServiceError> {
        self.expire_due_at(now_utc_us())
    }

    fn expire_due_at(&self, now_us: i64) -> Result<Vec<StoredRequest>, ServiceError> {
        let expired = self.store.expire_due(now_us)?;
        for request in &expired {
            self.announce(None, request, Identity::system(), None)?;
        }
        Ok(expired)
    }

    /// Requests (newest first), overdue ones expired first so the owner
    /// never sees a request as waiting that can no longer be answered.
    /// Blocking.
    pub fn list_blocking(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<StoredRequest>, ServiceError> {
        self.expire_quietly();
        Ok(self.store.list(state)?)
    }

    /// One request, overdue ones expired first. Blocking.
    pub fn get_blocking(&self, id: &str) -> Result<Option<StoredRequest>, ServiceError> {
        self.expire_quietly();
        Ok(self.store.get(id)?)
    }

    /// Reading must not fail because expiry could not be audited; the
    /// failure is logged and retried on the next read or tick.
    fn expire_quietly(&self) {
        if let Err(e) = self.expire_due_blocking() {
            tracing::error!(error = %e, "cannot expire overdue requests");
        }
    }

    pub async fn approve(
        &self,
        id: String,
        cameras: Option<Vec<String>>,
        window: Option<TimeWindow>,
    ) -> Result<StoredRequest, ServiceError> {
        self.blocking(move |s| s.approve_blocking(&id, cameras.as_deref(), window))
            .await
    }

    pub async fn deny(&self, id: String, reason: String) -> Result<StoredRequest, ServiceError> {
        self.blocking(move |s| s.deny_blocking(&id, &reason)).await
    }

    pub async fn expire_due(&self) -> Result<Vec<StoredRequest>, ServiceError> {
        self.blocking(|s| s.expire_due_blocking()).await
    }

    pub async fn list(
        &self,
        state: Option<RequestState>,
    ) -> Result<Vec<StoredRequest>, ServiceError> {
        self.blocking(move |s| s.list_blocking(state)).await
    }

    pub async fn get(&self, id: String) -> Result<Option<StoredRequest>, ServiceError> {
        self.blocking(move |s| s.get_blocking(&id)).await
    }

    /// SQLite and the audit writer block: run on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&RequestService) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|e| ServiceError::Cancelled(e.to_string()))?
    }

    /// Audits every camera whose outcome changed between `before` and
    /// `after` (one entry per camera, so `audit show --camera` finds it),
    /// then tells the bus.
    fn announce(
        &self,
        before: Option<&StoredRequest>,
        after: &StoredRequest,
        who: Identity,
        reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        let details = serde_json::json!({
            "state": after.state,
            "cameras": after.cameras.iter().map(|c| serde_json::json!({
                "camera": c.camera, "outcome": c.outcome,
            })).collect::<Vec<_>>(),
        });
        for camera in &after.cameras {
            let previous = before.and_then(|b| b.camera(&camera.camera));
            if previous.is_some_and(|p| p.outcome == camera.outcome) {
                continue;
            }
            let (event, outcome_, window) = match camera.outcome.as_str() {
                outcome::APPROVED => (EventType::Approval, Outcome::ok(), camera.window),
                outcome::DENIED => (
                    EventType::Denial,
                    Outcome::refused(reason.unwrap_or("left out of the owner's approval")),
                    Some(after.window),
                ),
                outcome::EXPIRED => (
                    EventType::Expiry,
                    Outcome::refused(format!(
                        "no answer from the owner by {}",
                        format_utc_us(after.expires_us)
                    )),
                    Some(after.window),
                ),
                _ => continue,
            };
            let mut entry = AuditEvent::new(self.component.clone(), event, who.clone())
                .request(after.id.clone())
                .camera(camera.camera.clone())
                .outcome(outcome_)
                .details(details.clone());
            if let Some(w) = window {
                entry = entry.window(w.from_us, w.to_us);
            }
            self.audit
                .append_blocking(entry)
                .map_err(|source| ServiceError::Audit {
                    id: after.id.clone(),
                    state: after.state,
                    source,
                })?;
        }
        self.bus.publish(DaemonEvent::RequestChanged {
            id: after.id.clone(),
            state: after.state,
        });
        Ok(())
    }
}
