//! The per-stream writer task: takes [`WriteJob`]s from ingest, does the
//! blocking file I/O on tokio's blocking pool, then tells the index.
//!
//! Ingest never waits on the disk: fragments are handed over with
//! `try_send`, and a writer that falls behind drops fragments (counted)
//! instead of growing memory.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::fragmenter::{FragmentJob, SegmentStart, WriteJob};
use crate::health::StreamHealth;
use crate::store::index::{FragmentRow, NewSegment};
use crate::store::retention::RetentionHandle;
use crate::store::segment_file::{is_disk_full, SegmentFile};
use crate::store::IndexWriter;

/// Fragments queued per stream before new ones are dropped (~8 s of GOPs).
pub const QUEUE_DEPTH: usize = 8;

pub struct WriterContext {
    pub data_dir: PathBuf,
    pub stream_id: i64,
    pub index: IndexWriter,
    pub retention: RetentionHandle,
    pub health: Arc<StreamHealth>,
    /// Bytes of disk footage must leave free for the index (see
    /// [`SegmentFile::create`]).
    pub index_headroom: u64,
}

struct OpenFile {
    segment_id: i64,
    file: SegmentFile,
}

/// Spawns the writer; returns the queue ingest feeds and the task, which
/// ends once the queue is closed and drained.
pub fn spawn(ctx: WriterContext) -> (mpsc::Sender<WriteJob>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<WriteJob>(QUEUE_DEPTH);
    let task = tokio::spawn(async move {
        let mut open: Option<OpenFile> = None;
        // After a failed segment start, fragments have nowhere to go until
        // the next start.
        while let Some(job) = rx.recv().await {
            match job {
                WriteJob::StartSegment(start) => {
                    if let Some(previous) = open.take() {
                        close(&ctx, previous);
                    }
                    open = start_segment(&ctx, start).await;
                }
                WriteJob::Fragment(fragment) => match open.take() {
                    Some(file) => open = write_fragment(&ctx, file, fragment).await,
                    None => {
                        ctx.health
                            .fragments_dropped_total
                            .fetch_add(1, Ordering::Relaxed);
                    }
                },
                WriteJob::EndSegment => {
                    if let Some(previous) = open.take() {
                        close(&ctx, previous);
                    }
                }
            }
        }
        if let Some(previous) = open.take() {
            close(&ctx, previous);
        }
    });
    (tx, task)
}

fn close(ctx: &WriterContext, open: OpenFile) {
    if let Err(e) = ctx.index.close_segment(open.segment_id) {
        tracing::error!(error = %e, "cannot close segment in the index");
    }
}

/// Removes the index row of a segment whose file could not be written. On
/// a full disk the index may not commit either: space is freed and the
/// removal tried once more, so no row is left pointing at no file.
async fn forget_unwritten_segment(ctx: &WriterContext, segment_id: i64) {
    if ctx.index.delete_segments(vec![segment_id]).await.is_ok() {
        return;
    }
    ctx.retention.free_space_now().await;
    if let Err(e) = ctx.index.delete_segments(vec![segment_id]).await {
        tracing::error!(segment_id, error = %e, "cannot remove the index row of a segment whose file was not written");
    }
}

async fn start_segment(ctx: &WriterContext, start: SegmentStart) -> Option<OpenFile> {
    let new = NewSegment {
        stream_id: ctx.stream_id,
        start_utc_us: start.start_utc_us,
        init_len: start.init.len() as u64,
        video_codec: start.setup.video.codec.clone(),
        width: start.setup.video.width,
        height: start.setup.video.height,
        audio_codec: start.setup.audio.as_ref().map(|a| a.codec.clone()),
        video_timescale: start.setup.video.clock_rate,
    };
    let init = Arc::new(start.init);
    for attempt in 0..2 {
        let (segment_id, file_name) = match ctx.index.create_segment(new.clone()).await {
            Ok(created) => created,
            Err(e) => {
                tracing::error!(error = %e, "cannot add segment to the index");
                if attempt == 0 {
                    ctx.retention.free_space_now().await;
                    continue;
                }
                return None;
            }
        };
        let path = ctx.data_dir.join(&file_name);
        let init_bytes = Arc::clone(&init);
        let headroom = ctx.index_headroom;
        let created =
            tokio::task::spawn_blocking(move || SegmentFile::create(&path, &init_bytes, headroom))
                .await;
        match created {
            Ok(Ok(file)) => {
                ctx.health
                    .bytes_written_total
                    .fetch_add(init.len() as u64, Ordering::Relaxed);
                return Some(OpenFile { segment_id, file });
            }
            Ok(Err(e)) => {
                tracing::warn!(file = %file_name, error = %e, "cannot create segment file");
                forget_unwritten_segment(ctx, segment_id).await;
                if attempt == 0 && is_disk_full(&e) {
                    ctx.retention.free_space_now().await;
                    continue;
                }
                return None;
            }
            Err(join) => {
                tracing::error!(error = %join, "segment creation task failed");
                return None;
            }
        }
    }
    None
}

async fn write_fragment(
    ctx: &WriterContext,
    mut open: OpenFile,
    job: FragmentJob,
) -> Option<OpenFile> {
    let job = Arc::new(job);
    for attempt in 0..2 {
        let fragment = Arc::clone(&job);
        let result = tokio::task::spawn_blocking(move || {
            let mut parts: Vec<&[u8]> = Vec::with_capacity(fragment.payloads.len() + 1);
            parts.push(&fragment.header);
            parts.extend(fragment.payloads.iter().map(Vec::as_slice));
            let offset = open.file.append(&parts);
            (open, offset)
        })
        .await;
        let (returned, offset) = match result {
            Ok(pair) => pair,
            Err(join) => {
                tracing::error!(error = %join, "fragment write task failed");
                return None;
            }
        };
        open = returned;
        match offset {
            Ok(file_offset) => {
                let length = job.total_len();
                let row = FragmentRow {
                    segment_id: open.segment_id,
                    seq: job.seq,
                    file_offset,
                    length,
                    start_utc_us: job.start_utc_us,
                    duration_us: job.duration_us,
                    media_start: job.media_start,
                    frames: job.frames,
                    starts_with_key: job.starts_with_key,
                };
                if let Err(e) = ctx.index.add_fragment(row) {
                    tracing::error!(error = %e, "cannot index fragment");
                }
                ctx.health
                    .bytes_written_total
                    .fetch_add(length, Ordering::Relaxed);
                let media_bytes = job.payloads.iter().map(|p| p.len() as u64).sum();
                ctx.health
                    .record_fragment(u64::from(job.frames), media_bytes);
                return Some(open);
            }
            Err(e) if is_disk_full(&e) && attempt == 0 => {
                tracing::warn!(file = %open.file.path().display(), "disk full; asking retention for space");
                ctx.retention.free_space_now().await;
            }
            Err(e) => {
                tracing::warn!(file = %open.file.path().display(), error = %e, "fragment dropped: write failed");
                ctx.health
                    .fragments_dropped_total
                    .fetch_add(1, Ordering::Relaxed);
                return Some(open);
            }
        }
    }
    ctx.health
        .fragments_dropped_total
        .fetch_add(1, Ordering::Relaxed);
    Some(open)
}
