//! `--live`: latency from a frame reaching the live feed (where ingest hands
//! it over, right after the camera's RTP is depacketized) to the frame being
//! read off the socket by 1 and 16 WebSocket viewers on 127.0.0.1, and the
//! time from opening the WebSocket to the first keyframe fragment.
//!
//! In-process: the daemon's own `LiveFeed` and live HTTP routes, fed the
//! simulated camera's HD clip (real H.264 frames, ~4 Mbit/s) at 30 fps. The
//! clients read real WebSocket frames (tokio-tungstenite) but do not decode;
//! receipt by the client bounds "written to the socket" from above.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use porchlight::ingest::fragmenter::{TrackSetup, VideoTrack};
use porchlight::live::{LiveFeed, LiveHub};
use tokio_tungstenite::tungstenite::Message;

const FPS: u64 = 30;

type SentTimes = Arc<Mutex<Vec<Option<Instant>>>>;

pub fn run(viewer_counts: &[usize], seconds: u64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let clip = porchlight_simcam::clip_samples(porchlight_simcam::Clip::Hd)
            .map_err(|e| anyhow::anyhow!("cannot read the HD clip: {e}"))?;
        println!("| viewers | frames/viewer | p50 ms | p99 ms | max ms | first frame p50 ms | first frame p99 ms |");
        println!("|---|---|---|---|---|---|---|");
        for &viewers in viewer_counts {
            let row = one_run(&clip, viewers, seconds).await?;
            println!(
                "| {viewers} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
                row.frames_per_viewer,
                row.latency_ms.0,
                row.latency_ms.1,
                row.latency_ms.2,
                row.first_frame_ms.0,
                row.first_frame_ms.1
            );
        }
        Ok(())
    })
}

struct Row {
    frames_per_viewer: usize,
    latency_ms: (f64, f64, f64),
    first_frame_ms: (f64, f64),
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The `mfhd` sequence number of a live fragment (bytes 20..24).
fn sequence(fragment: &[u8]) -> Option<usize> {
    Some(u32::from_be_bytes(fragment.get(20..24)?.try_into().ok()?) as usize)
}

async fn one_run(
    clip: &porchlight_simcam::ClipSamples,
    viewers: usize,
    seconds: u64,
) -> anyhow::Result<Row> {
    let hub = LiveHub::new(["bench"]);
    let feed: Arc<LiveFeed> = hub.feed("bench").context("feed")?.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, porchlight::live::http::routes(hub)).await;
    });
    let setup = TrackSetup {
        video: VideoTrack {
            codec: "avc1.640028".into(),
            width: clip.width,
            height: clip.height,
            clock_rate: 90_000,
            sample_entry: b"\0\0\0\x08avc1".to_vec(),
        },
        audio: None,
    };
    let total = (seconds * FPS) as usize;
    let sent: SentTimes = Arc::new(Mutex::new(vec![None; total + 2]));

    // The camera: frames at 30 fps, each stamped as it is handed over.
    let publisher = {
        let feed = feed.clone();
        let sent = sent.clone();
        let frames = clip.frames.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
            for i in 0..total {
                ticker.tick().await;
                let (data, is_key) = &frames[i % frames.len()];
                let now = Instant::now();
                if let Ok(mut sent) = sent.lock() {
                    sent[i + 1] = Some(now);
                }
                feed.publish_video(i as i64 * 3000, *is_key || i == 0, data, Some(&setup));
            }
        })
    };

    let url = format!("ws://{addr}/api/cameras/bench/live.ws");
    // Time to the first frame: open, get the init and the first fragment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut first_frames = Vec::new();
    for _ in 0..20 {
        let opened = Instant::now();
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await?;
        while let Some(message) = socket.next().await {
            if let Message::Binary(bytes) = message? {
                if bytes.get(4..8) == Some(b"moof") {
                    break;
                }
            }
        }
        first_frames.push(opened.elapsed().as_secs_f64() * 1000.0);
    }

    // Latency: N viewers for the rest of the run.
    let mut clients = Vec::new();
    for _ in 0..viewers {
        let (socket, _) = tokio_tungstenite::connect_async(&url).await?;
        let joined = Instant::now();
        let sent = sent.clone();
        clients.push(tokio::spawn(async move {
            let mut socket = socket;
            let mut latencies = Vec::new();
            while let Some(Ok(message)) = socket.next().await {
                let received = Instant::now();
                let Message::Binary(bytes) = message else {
                    continue;
                };
                if bytes.get(4..8) != Some(b"moof") {
                    continue;
                }
                let Some(seq) = sequence(&bytes) else {
                    continue;
                };
                let stamped = sent.lock().ok().and_then(|s| s.get(seq).copied().flatten());
                // The backlog (frames from before the viewer joined) is not latency.
                if let Some(at) = stamped.filter(|at| *at >= joined) {
                    latencies.push((received - at).as_secs_f64() * 1000.0);
                }
                if seq >= total {
                    break;
                }
            }
            latencies
        }));
    }
    publisher.await?;
    let mut all = Vec::new();
    let mut frames = usize::MAX;
    for client in clients {
        let latencies = tokio::time::timeout(Duration::from_secs(10), client)
            .await
            .context("a viewer did not get the last frame")??;
        frames = frames.min(latencies.len());
        all.extend(latencies);
    }
    server.abort();
    all.sort_by(f64::total_cmp);
    first_frames.sort_by(f64::total_cmp);
    Ok(Row {
        frames_per_viewer: frames,
        latency_ms: (
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN),
        ),
        first_frame_ms: (
            percentile(&first_frames, 0.50),
            percentile(&first_frames, 0.99),
        ),
    })
}
