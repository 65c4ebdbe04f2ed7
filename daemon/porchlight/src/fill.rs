//! `porchlight bench-fill`: writes hours of the simulated camera's clip into
//! the store in seconds, through the same fragmenter, writer and index as
//! live recording, so export benchmarks have real footage to read.

use std::sync::Arc;

use anyhow::{bail, Context};
use porchlight_simcam::Clip;

use crate::config::{Config, StreamKind};
use crate::health::Health;
use crate::ingest::fragmenter::{Fragmenter, TrackSetup, VideoTrack};
use crate::ingest::writer::{self, WriterContext};
use crate::store::retention::Retention;
use crate::store::Store;
use crate::time::now_utc_us;

/// Writes `seconds` of `clip` for `camera`, ending now.
pub async fn fill(config: Config, camera: &str, seconds: u64, clip: Clip) -> anyhow::Result<u64> {
    let health = Arc::new(Health::new(&config.cameras));
    let store = Store::open(&config.data_dir, &config.cameras, health.clone())?;
    let Some(stream_id) = store.stream_id(camera, StreamKind::Main) else {
        bail!("camera `{camera}` is not in the config");
    };
    let stream_health = health
        .cameras
        .get(camera)
        .and_then(|c| c.stream(StreamKind::Main).cloned())
        .context("camera health")?;
    let retention = Retention::new(
        &config,
        store.index.clone(),
        store.ballast.clone(),
        health.clone(),
    )
    .spawn();
    let (tx, task) = writer::spawn(WriterContext {
        data_dir: store.data_dir.clone(),
        stream_id,
        index: store.index.clone(),
        retention,
        health: stream_health.clone(),
        index_headroom: store.ballast.size(),
    });

    let samples = porchlight_simcam::clip_samples(clip).map_err(anyhow::Error::msg)?;
    let codec = format!(
        "avc1.{:02x}{:02x}{:02x}",
        samples.sps.get(1).copied().unwrap_or(0),
        samples.sps.get(2).copied().unwrap_or(0),
        samples.sps.get(3).copied().unwrap_or(0)
    );
    let setup = TrackSetup {
        video: VideoTrack {
            codec,
            width: samples.width,
            height: samples.height,
            clock_rate: 90_000,
            sample_entry: porchlight_mp4::avc1_sample_entry(
                &samples.sps,
                &samples.pps,
                samples.width as u16,
                samples.height as u16,
            ),
        },
        audio: None,
    };
    let mut fragmenter = Fragmenter::new(config.storage.segment_duration.as_micros() as i64);
    let frames = seconds * 30;
    let start_us = now_utc_us() - seconds as i64 * 1_000_000;
    let mut jobs = Vec::new();
    for n in 0..frames {
        let (data, is_key) = &samples.frames[(n as usize) % samples.frames.len()];
        let media = n as i64 * 3000;
        let arrival = start_us + n as i64 * 1_000_000 / 30;
        fragmenter.push_video(
            media,
            *is_key,
            data.clone(),
            arrival,
            is_key.then_some(&setup),
            &mut jobs,
        );
        for job in jobs.drain(..) {
            tx.send(job).await.context("writer stopped")?;
        }
    }
    fragmenter.finish(&mut jobs);
    for job in jobs.drain(..) {
        tx.send(job).await.context("writer stopped")?;
    }
    drop(tx);
    task.await?;
    store.index.flush().await?;
    Ok(stream_health
        .bytes_written_total
        .load(std::sync::atomic::Ordering::Relaxed))
}
