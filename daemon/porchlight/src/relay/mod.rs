//! The police relay endpoint, speaking docs/relay-protocol.md: HTTPS with
//! mandatory client certificates on `[relay] listen`, and/or the same API
//! served over an outbound tunnel the box dials (`[relay] uplink`). It is
//! the only way in for an agency, and everything it does about footage goes
//! through [`crate::policy::decide`] and the owner's answers in
//! [`crate::requests`].

pub mod api;
mod delivery;
pub mod enrolment;
pub mod join;
pub mod leave;
pub mod listener;
mod live_share;
pub mod membership;
pub mod registry;
pub mod throttle;
pub mod tls;
pub mod uplink;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity, Outcome};
use crate::config::Config;
use crate::controls::SharedPolicy;
use crate::evidence::EvidenceSettings;
use crate::requests::RequestService;

type PackageKey = (String, String);

/// What the relay handlers share.
pub struct RelayState {
    /// The owner's policy in force, read per request.
    pub policy: SharedPolicy,
    pub requests: RequestService,
    pub audit: AuditLog,
    pub evidence: Arc<EvidenceSettings>,
    pub data_dir: PathBuf,
    pub max_clip_us: i64,
    /// Off once the owner leaves: every call is refused.
    pub membership: membership::Membership,
    /// Every camera's live feed, and the live shares running to the relay.
    pub live: crate::live::LiveHub,
    pub live_shares: crate::live::LiveShares,
    rate: throttle::RateLimiter,
    /// Shared by the listener (failed handshakes, per address) and the API
    /// (refused calls, per certificate).
    refusals: Arc<throttle::AuditThrottle>,
    preparing: Arc<Mutex<HashSet<PackageKey>>>,
    /// Held from counting a request's history to recording it.
    intake: tokio::sync::Mutex<()>,
    /// Tokens issued in this run, by (request, camera, certificate).
    tokens: Mutex<std::collections::HashMap<(String, String, String), String>>,
}

impl RelayState {
    /// `live` is every camera's live feed and `live_shares` the shares
    /// running to the relay (an empty hub: every live share reads
    /// `not_available`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &Config,
        policy: SharedPolicy,
        requests: RequestService,
        audit: AuditLog,
        evidence: Arc<EvidenceSettings>,
        membership: membership::Membership,
        live: crate::live::LiveHub,
        live_shares: crate::live::LiveShares,
    ) -> RelayState {
        RelayState {
            policy,
            requests,
            audit,
            evidence,
            data_dir: config.data_dir.clone(),
            max_clip_us: config.export.max_clip.as_micros() as i64,
            membership,
            live,
            live_shares,
            rate: throttle::RateLimiter::new(config.relay.calls_per_minute),
            refusals: Arc::new(throttle::AuditThrottle::new()),
            preparing: Arc::new(Mutex::new(HashSet::new())),
            intake: tokio::sync::Mutex::new(()),
            tokens: Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn preparing_handle(&self) -> Arc<Mutex<HashSet<PackageKey>>> {
        self.preparing.clone()
    }
}

/// Starts the relay listener (`[relay] listen`) and the uplink (`[relay]
/// uplink`), whichever are set; returns one task that ends with them.
pub async fn start(
    config: &Config,
    state: Arc<RelayState>,
    health: Arc<crate::health::Health>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (listen, uplink) = (config.relay.listen, config.relay.uplink.clone());
    if listen.is_none() && uplink.is_none() {
        return Ok(None);
    }
    if !state.membership.is_member() {
        tracing::info!(
            "relay off: this box left the relay program (`porchlight relay enroll` to join again)"
        );
        return Ok(None);
    }
    let agency_ca =
        config.relay.agency_ca.as_ref().context(
            "`relay.agency_ca` is required when `relay.listen` or `relay.uplink` is set",
        )?;
    let device = &state.evidence.device;
    let pinned = Arc::new(tls::PinnedCas::load(agency_ca)?);
    let router = api::router(state.clone());
    // The listener and the uplink stop when the daemon does, or as soon as
    // the owner leaves the relay program.
    let stop = stop_signal(shutdown.clone(), state.membership.left());
    let mut tasks = Vec::new();
    if let Some(listen) = listen {
        let tls = tls::server_config(
            agency_ca,
            device.certificate_der(),
            device.private_key_pem(),
        )?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for the relay on {listen}"))?;
        tracing::info!(%listen, agency_ca = %agency_ca.display(), "relay listener: mutual TLS");
        let parts = listener::ListenerParts {
            tls,
            router: router.clone(),
            audit: state.audit.clone(),
            failures: state.refusals.clone(),
            pinned: pinned.clone(),
        };
        tasks.push(tokio::spawn(listener::serve(listener, parts, stop.clone())));
    }
    if let Some(target) = uplink {
        let tls = tls::uplink_client_config(
            agency_ca,
            device.certificate_der(),
            device.private_key_pem(),
        )?;
        let parts = uplink::UplinkParts {
            target,
            tls,
            pinned,
            router,
            audit: state.audit.clone(),
            refusals: state.refusals.clone(),
            health,
            retry_max: config.relay.uplink_retry_max,
        };
        tasks.push(tokio::spawn(uplink::run(parts, stop)));
    }
    let summaries = tokio::spawn(write_refusal_summaries(state.clone(), shutdown));
    Ok(Some(tokio::spawn(async move {
        for task in tasks {
            let _ = task.await;
        }
        // It writes the last summary as the daemon stops.
        let _ = summaries.await;
    })))
}

/// Why the relay's listener and uplink stop serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Running,
    /// The owner left the relay program (for the rest of this run).
    Left,
    /// The daemon is stopping.
    ShuttingDown,
}

/// One signal for the relay's tasks: [`Stop::Left`] once the owner leaves
/// (`left` turns true), [`Stop::ShuttingDown`] once `shutdown` does (also
/// after a leave).
pub fn stop_signal(
    mut shutdown: watch::Receiver<bool>,
    mut left: watch::Receiver<bool>,
) -> watch::Receiver<Stop> {
    let (tx, rx) = watch::channel(Stop::Running);
    tokio::spawn(async move {
        // A dropped shutdown sender stops the relay too; a dropped
        // membership only means nobody can leave any more.
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => {
                tx.send_replace(Stop::ShuttingDown);
                return;
            }
            Ok(_) = left.wait_for(|left| *left) => {
                tx.send_replace(Stop::Left);
            }
            _ = tx.closed() => return,
        }
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => {
                tx.send_replace(Stop::ShuttingDown);
            }
            _ = tx.closed() => {}
        }
    });
    rx
}

/// Once a minute, one audit entry per caller for refusals that a flood made
/// too many to log one by one: every refusal is accounted for.
async fn write_refusal_summaries(state: Arc<RelayState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => {}
        }
        for (caller, count) in state.refusals.drain() {
            // The caller is a certificate fingerprint or, for failed
            // handshakes, an address.
            let event = AuditEvent::new(Component::Relay, EventType::RequestRefused, Identity::anonymous())
                .outcome(Outcome::refused(format!(
                    "{count} further refused calls or handshakes from {caller} (flood: counted, not logged one by one)"
                )))
                .details(serde_json::json!({ "caller": caller, "refused_calls": count }));
            if let Err(e) = state.audit.append(event).await {
                tracing::error!(error = %e, "cannot write to the audit log");
            }
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Makes the evidence packages of requests as soon as the owner approves
/// them, so the agency's download is ready when it polls; every minute
/// (a directory listing when nothing is due), removes packages whose links
/// have expired, so the owner's history says "removed" within a minute.
pub fn spawn_package_maker(
    state: Arc<RelayState>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut events = state.requests.bus.subscribe();
    let mut cleanup = tokio::time::interval(Duration::from_secs(60));
    cleanup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                _ = cleanup.tick() => {
                    let state = state.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        delivery::remove_expired(&state, crate::time::now_utc_us())
                    })
                    .await;
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let id = match event {
                Ok(crate::events::DaemonEvent::RequestChanged { id, .. }) => id,
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let store = state.requests.store.clone();
            match tokio::task::spawn_blocking(move || store.get(&id)).await {
                Ok(Ok(Some(stored))) => delivery::prepare_servable(&state, &stored),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "relay: cannot read a changed request"),
                Err(e) => tracing::warn!(error = %e, "relay: request lookup failed"),
            }
        }
    })
}

/// Where this box stands with the relay program, for `GET /api/relay` and
/// `porchlight relay status`.
pub fn status(
    config: &Config,
    membership: &membership::Membership,
) -> anyhow::Result<serde_json::Value> {
    let data_dir = &config.data_dir;
    let registration = registry::state::load(data_dir)?;
    let left = registry::state::load_left(data_dir)?;
    let agency_ca_pinned = config.relay.agency_ca.as_ref().is_some_and(|p| p.is_file());
    let state = if !membership.is_member() || left.is_some() {
        if registration.as_ref().is_some_and(|r| r.leaving.is_some()) {
            "leaving"
        } else {
            "left"
        }
    } else if agency_ca_pinned || registration.is_some() {
        "enrolled"
    } else {
        "not_enrolled"
    };
    Ok(serde_json::json!({
        "state": state,
        "listener": config.relay.listen.map(|l| l.to_string()),
        "agency_ca_pinned": agency_ca_pinned,
        "registry": config.relay.registry.as_ref().map(|r| r.url.to_string()),
        "registration": registration.map(|r| serde_json::json!({
            "registry": r.registry_url,
            "registration_id": r.registration_id,
            "state": if r.leaving.is_some() { "deletion_pending" }
                     else if r.registration_id.is_none() { "pending" }
                     else { "registered" },
            "confirmed_at": r.confirmed_at,
            "sequence": r.sequence,
        })),
        "left": left,
    }))
}
