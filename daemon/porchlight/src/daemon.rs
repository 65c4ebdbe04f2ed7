//! `porchlight run`: opens the store, starts ingest, retention and HTTP, and
//! shuts down cleanly on SIGTERM/SIGINT.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, Component, EventType, Identity};
use crate::config::Config;
use crate::events::EventBus;
use crate::health::Health;
use crate::requests::{RequestService, RequestStore};
use crate::store::retention::Retention;
use crate::store::Store;

/// Why [`run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop (signal or `stop`).
    Stopped,
    /// The camera set changed (a camera was added or moved): everything was
    /// shut down cleanly, and the caller starts the daemon again in place
    /// (`porchlight run` re-executes itself, keeping its process id).
    Restart,
}

/// Runs the daemon until `stop` resolves (or a signal arrives).
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Exit> {
    // An owner API open to the network without any login: refuse at once.
    // The same account store goes to the login layer below (one read).
    let accounts = crate::http::auth::AccountStore::new(&config.data_dir);
    if let Some(refusal) =
        crate::http::auth::refusal(config.http.bind, &accounts, config.http.setup_token)
    {
        anyhow::bail!(refusal);
    }
    // First, so a SIGTERM sent as soon as we answer still stops us cleanly.
    let mut stop_signals = crate::signals::StopSignals::register();
    // Cameras the owner added from discovery are recorded like configured ones.
    let config = crate::onboard::with_saved_cameras(config)
        .context("cannot load the cameras added from discovery")?;
    let health = Arc::new(Health::new(&config.cameras));
    let store = Store::open(&config.data_dir, &config.cameras, health.clone())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    // Before anything can serve footage, so nothing goes unrecorded.
    let audit = AuditLog::open(&config.data_dir)
        .with_context(|| format!("cannot open the audit log in {}", config.data_dir.display()))?;
    audit
        .append(
            AuditEvent::new(
                Component::Daemon,
                EventType::DaemonStart,
                Identity::system(),
            )
            .details(serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "cameras": config.cameras.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            })),
        )
        .await
        .context("cannot write to the audit log")?;
    let audit_retention = spawn_audit_retention(audit.clone(), config.audit.max_age);
    let bus = EventBus::new();
    let controls = Arc::new(
        crate::controls::Controls::load(&config, audit.clone(), bus.clone())
            .context("cannot load the owner's settings")?,
    );
    let requests = RequestService::new(
        RequestStore::open(&config.data_dir).with_context(|| {
            format!(
                "cannot open the request database in {}",
                config.data_dir.display()
            )
        })?,
        audit.clone(),
        bus.clone(),
    );
    let request_expiry = spawn_request_expiry(requests.clone());
    let listener = tokio::net::TcpListener::bind(config.http.bind)
        .await
        .with_context(|| format!("cannot listen on http.bind = {}", config.http.bind))?;
    let http_addr = listener.local_addr()?;

    let retention = Retention::new(
        &config,
        store.index.clone(),
        store.ballast.clone(),
        health.clone(),
    )
    .spawn();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let live = crate::live::LiveHub::new(config.cameras.iter().map(|c| c.name.as_str()));
    let mut ingest = Vec::new();
    for camera in &config.cameras {
        let Some(camera_health) = health.cameras.get(&camera.name).cloned() else {
            continue;
        };
        let Some(recording) = controls.recording_watch(&camera.name) else {
            continue;
        };
        ingest.extend(crate::ingest::spawn_camera(
            camera,
            camera_health,
            &store,
            retention.clone(),
            config.storage.segment_duration,
            recording,
            live.feed(&camera.name).cloned(),
            shutdown_rx.clone(),
        ));
    }

    // The device key is made at first start, so its fingerprint can be
    // registered before any footage is ever asked for.
    let evidence = crate::evidence::EvidenceSettings::load(&config)
        .context("cannot load or create the device key")?;
    tracing::info!(fingerprint = %evidence.device.fingerprint(), "device key");
    let evidence = Arc::new(evidence);

    // Motion and tamper from cameras with an ONVIF address (and their clock
    // skew, for evidence manifests).
    let camera_events = crate::camera_events::spawn(
        &config.cameras,
        bus.clone(),
        evidence.camera_clock_skews.clone(),
        shutdown_rx.clone(),
    );

    // Background ONVIF discovery, and the owner adding what it finds.
    let (onboarding, onboard_tasks) = crate::onboard::Onboarding::start(
        &config,
        evidence.camera_clock_skews.clone(),
        audit.clone(),
        shutdown_rx.clone(),
    )
    .context("cannot start ONVIF onboarding")?;

    // The police relay, when configured: its own mutual-TLS listener and/or
    // the outbound tunnel to a relay.
    crate::relay::enrolment::audit_pinned_cas(&config, &audit)
        .await
        .context("cannot read the pinned agency CA")?;
    crate::relay::enrolment::audit_policy(&config, &controls.policy().current(), &audit)
        .await
        .context("cannot record the sharing policy in the audit log")?;
    let membership = crate::relay::membership::Membership::load(&config.data_dir);
    // The registry: registered, kept up to date, or the deletion of a
    // leave re-sent, in its own task (a registry that is down delays only
    // itself).
    let registry = config.relay.registry.as_ref().map(|_| {
        Arc::new(crate::relay::registry::Registry::new(
            &config,
            evidence.clone(),
            controls.policy(),
            audit.clone(),
        ))
    });
    let registry_sync = registry.clone().map(|registry| {
        crate::relay::registry::spawn_sync(registry, bus.clone(), shutdown_rx.clone())
    });
    let leaver = Arc::new(crate::relay::leave::Leaver {
        config: config.clone(),
        requests: requests.clone(),
        membership: membership.clone(),
        registry,
        component: Component::OwnerApi,
    });
    // Live shares to the relay end the moment the gate stops allowing them.
    let live_shares = crate::live::LiveShares::new(audit.clone(), bus.clone());
    let live_enforcer = crate::live::share::spawn_enforcer(
        live_shares.clone(),
        controls.policy(),
        membership.clone(),
        shutdown_rx.clone(),
    );
    let relay_state = Arc::new(crate::relay::RelayState::new(
        &config,
        controls.policy(),
        requests.clone(),
        audit.clone(),
        evidence.clone(),
        membership,
        live.clone(),
        live_shares.clone(),
    ));
    let relay = crate::relay::start(
        &config,
        relay_state.clone(),
        health.clone(),
        shutdown_rx.clone(),
    )
    .await?;
    let relay_packages = relay
        .is_some()
        .then(|| crate::relay::spawn_package_maker(relay_state, shutdown_rx.clone()));

    // Home Assistant over MQTT: a plugin on the event bus, never on the
    // recording path (a broker that is down only delays what HA sees).
    let snapshots = crate::export::snapshot::SnapshotCache::default();
    let mqtt = config.mqtt.as_ref().map(|mqtt| {
        let host = crate::plugin_host::DaemonHost::start(
            health.clone(),
            controls.clone(),
            requests.clone(),
            live_shares.clone(),
            config.data_dir.clone(),
            snapshots.clone(),
            shutdown_rx.clone(),
        );
        tracing::info!(broker = %format!("{}:{}", mqtt.host, mqtt.port), "Home Assistant over MQTT");
        porchlight_mqtt::spawn(
            porchlight_mqtt::MqttConfig {
                host: mqtt.host.clone(),
                port: mqtt.port,
                tls: mqtt.tls.as_ref().map(|tls| porchlight_mqtt::MqttTls {
                    ca_file: tls.ca_file.clone(),
                    client_cert: tls.client_cert.clone(),
                }),
                username: mqtt.username.clone(),
                password: mqtt.password.as_ref().map(|p| p.expose().to_string()),
                client_id: mqtt.client_id.clone(),
                base_topic: mqtt.base_topic.clone(),
                discovery_prefix: mqtt.discovery_prefix.clone(),
                ..porchlight_mqtt::MqttConfig::default()
            },
            host,
            shutdown_rx.clone(),
        )
    });

    let auth = crate::http::auth::Auth::start(accounts, &config.data_dir, http_addr, audit.clone())
        .context("cannot start the owner login")?;
    let router = crate::http::router(crate::http::AppState {
        bind: http_addr,
        evidence,
        health: health.clone(),
        data_dir: config.data_dir.clone(),
        max_clip_us: config.export.max_clip.as_micros() as i64,
        snapshots,
        audit: audit.clone(),
        requests,
        controls: controls.clone(),
        onboarding: onboarding.clone(),
        leaver,
        live,
        live_shares,
        auth: auth.clone(),
    });
    let mut http_shutdown = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            // The client address, for per-address login limits.
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_shutdown.changed().await;
        })
        .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    tracing::info!(
        http = %http_addr,
        data_dir = %config.data_dir.display(),
        cameras = config.cameras.len(),
        "porchlight is recording"
    );
    crate::notify::notify("READY=1");

    let watchdog = crate::notify::watchdog_interval().map(|every| {
        let health = health.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            let mut withheld = false;
            loop {
                ticker.tick().await;
                // Only vouch for ourselves while the store can write and
                // some camera records (or none is meant to).
                let ok = health.watchdog_ok();
                if ok {
                    crate::notify::notify("WATCHDOG=1");
                } else if !withheld {
                    tracing::error!(
                        store_ok = health.store_ok.load(Ordering::Relaxed),
                        ingest_ok = health.ingest_ok(),
                        "unhealthy: no longer feeding the systemd watchdog (systemd will restart the daemon)"
                    );
                }
                withheld = !ok;
            }
        })
    });

    let exit = tokio::select! {
        _ = stop => Exit::Stopped,
        _ = stop_signals.received() => Exit::Stopped,
        _ = onboarding.restart_requested() => Exit::Restart,
    };
    if exit == Exit::Restart {
        tracing::info!(
            "restarting in place (the cameras changed, or the owner joined the relay program)"
        );
        crate::notify::notify("RELOADING=1");
    } else {
        tracing::info!("stopping: finishing the fragments in flight");
        crate::notify::notify("STOPPING=1");
    }
    let _ = shutdown_tx.send(true);
    for task in ingest {
        let _ = task.await;
    }
    for task in camera_events.into_iter().chain(onboard_tasks) {
        let _ = task.await;
    }
    for task in [
        relay,
        relay_packages,
        registry_sync,
        mqtt,
        Some(live_enforcer),
    ]
    .into_iter()
    .flatten()
    {
        let _ = task.await;
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    let _ = http.await;
    auth.forget_cli_token();
    let sessions = auth.clone();
    let _ = tokio::task::spawn_blocking(move || sessions.save_sessions()).await;
    audit_retention.abort();
    let _ = audit_retention.await;
    request_expiry.abort();
    let _ = request_expiry.await;
    if let Err(e) = audit
        .append(AuditEvent::new(
            Component::Daemon,
            EventType::DaemonStop,
            Identity::system(),
        ))
        .await
    {
        tracing::error!(error = %e, "cannot record the stop in the audit log");
    }
    // The last handle: waits for the writer to close the database cleanly.
    let _ = tokio::task::spawn_blocking(move || drop(audit)).await;
    store
        .index
        .flush()
        .await
        .context("final index commit failed")?;
    tracing::info!("stopped cleanly");
    Ok(exit)
}

/// Prunes audit entries older than `max_age` at start and then daily. A
/// damaged log is left alone (and said so in the daemon's log).
fn spawn_audit_retention(
    audit: AuditLog,
    max_age: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut daily = tokio::time::interval(std::time::Duration::from_secs(86_400));
        loop {
            daily.tick().await;
            match audit.prune(max_age).await {
                Ok(Some(entry)) => tracing::info!(seq = entry.seq, "pruned old audit entries"),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "audit log retention"),
            }
        }
    })
}

/// How often overdue requests are expired. Reads expire them too, so the
/// owner never sees a stale "pending"; this tick makes sure the audit log
/// and subscribers learn of an expiry even when nobody looks.
const REQUEST_EXPIRY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Expires requests the owner did not answer in time (no answer is a denial).
fn spawn_request_expiry(requests: RequestService) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(REQUEST_EXPIRY_INTERVAL);
        loop {
            ticker.tick().await;
            match requests.expire_due().await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "expired unanswered requests")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "request expiry"),
            }
        }
    })
}
