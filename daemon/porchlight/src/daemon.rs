//! `porchlight run`: opens the store, starts ingest, retention and HTTP, and
//! shuts down cleanly on SIGTERM/SIGINT.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::health::Health;
use crate::store::retention::Retention;
use crate::store::Store;

/// Runs the daemon until `stop` resolves (or a signal arrives).
pub async fn run(
    config: Config,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let health = Arc::new(Health::new(&config.cameras));
    let store = Store::open(&config.data_dir, &config.cameras, health.clone())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
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
    let mut ingest = Vec::new();
    for camera in &config.cameras {
        let Some(camera_health) = health.cameras.get(&camera.name).cloned() else {
            continue;
        };
        ingest.extend(crate::ingest::spawn_camera(
            camera,
            camera_health,
            &store,
            retention.clone(),
            config.storage.segment_duration,
            shutdown_rx.clone(),
        ));
    }

    // The device key is made at first start, so its fingerprint can be
    // registered before any footage is ever asked for.
    let evidence = crate::evidence::EvidenceSettings::load(&config)
        .context("cannot load or create the device key")?;
    tracing::info!(fingerprint = %evidence.device.fingerprint(), "device key");
    let router = crate::http::router(crate::http::AppState {
        evidence: Arc::new(evidence),
        health: health.clone(),
        data_dir: config.data_dir.clone(),
        max_clip_us: config.export.max_clip.as_micros() as i64,
        snapshots: Default::default(),
    });
    let mut http_shutdown = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        let served = axum::serve(listener, router)
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
            loop {
                ticker.tick().await;
                // Only vouch for ourselves while the store can write.
                if health.store_ok.load(Ordering::Relaxed) {
                    crate::notify::notify("WATCHDOG=1");
                }
            }
        })
    });

    tokio::select! {
        _ = stop => {}
        _ = crate::signals::terminated() => {}
    }
    tracing::info!("stopping: finishing the fragments in flight");
    crate::notify::notify("STOPPING=1");
    let _ = shutdown_tx.send(true);
    for task in ingest {
        let _ = task.await;
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    let _ = http.await;
    store
        .index
        .flush()
        .await
        .context("final index commit failed")?;
    tracing::info!("stopped cleanly");
    Ok(())
}
