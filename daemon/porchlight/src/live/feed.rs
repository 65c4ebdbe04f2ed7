//! A camera's live feed: the current init segment, the frames since the
//! latest keyframe (where new viewers start), the last few whole GOPs (HLS
//! segments), and a bounded broadcast ring to every viewer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::broadcast;

use super::muxer::{init_segment, FrameMuxer};
use crate::ingest::fragmenter::TrackSetup;

/// Fragments (frames) a viewer may fall behind before it skips to the next
/// keyframe: about 4 s at 30 fps. The ring holds `Arc`s of the frames, so
/// its memory is shared by all viewers and bounded whatever they do.
pub const FEED_CAPACITY: usize = 128;
/// A GOP longer than this is not held for new viewers (they wait for the
/// next keyframe instead), so memory stays bounded on odd cameras.
const MAX_HELD_GOP_BYTES: usize = 16 << 20;
const MAX_HELD_GOP_FRAMES: usize = 600;
/// Whole GOPs kept for HLS players.
const HLS_SEGMENTS: usize = 4;
const MAX_HLS_BYTES: usize = 32 << 20;

/// The init segment of one camera session ("generation").
#[derive(Debug)]
pub struct LiveInit {
    pub generation: u64,
    /// RFC 6381 codec string, e.g. `avc1.640028`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub timescale: u32,
    pub bytes: Bytes,
}

/// One frame as an fMP4 fragment, shared by every viewer.
#[derive(Debug)]
pub struct LiveFragment {
    pub generation: u64,
    pub is_key: bool,
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    pub duration: u32,
}

/// A playlist line: (generation, sequence, seconds).
pub type HlsEntry = (u64, u64, f64);

/// A complete GOP, one HLS media segment.
#[derive(Debug)]
pub struct HlsSegment {
    pub generation: u64,
    pub sequence: u64,
    pub duration_s: f64,
    pub fragments: Vec<Arc<LiveFragment>>,
}

impl HlsSegment {
    fn byte_len(&self) -> usize {
        self.fragments.iter().map(|f| f.bytes.len()).sum()
    }
}

/// One HLS media segment's bytes: its fragments back to back. Called
/// without the feed's lock, so serving a segment never stalls ingest.
fn concat(fragments: &[Arc<LiveFragment>]) -> Bytes {
    let len = fragments.iter().map(|f| f.bytes.len()).sum();
    let mut out = Vec::with_capacity(len);
    for fragment in fragments {
        out.extend_from_slice(&fragment.bytes);
    }
    Bytes::from(out)
}

#[derive(Default)]
struct FeedState {
    init: Option<Arc<LiveInit>>,
    setup: Option<TrackSetup>,
    muxer: Option<FrameMuxer>,
    /// Frames since the latest keyframe (empty when it grew too long).
    gop: Vec<Arc<LiveFragment>>,
    gop_bytes: usize,
    gop_overflowed: bool,
    segments: VecDeque<HlsSegment>,
    /// Bytes of all fragments in `segments`.
    segments_bytes: usize,
    next_segment: u64,
    generations: u64,
}

/// What a new viewer gets: where to start, then everything after.
pub struct Subscription {
    pub init: Option<Arc<LiveInit>>,
    /// From the latest keyframe up to now.
    pub backlog: Vec<Arc<LiveFragment>>,
    pub receiver: broadcast::Receiver<Arc<LiveFragment>>,
}

pub struct LiveFeed {
    pub camera: String,
    state: Mutex<FeedState>,
    sender: broadcast::Sender<Arc<LiveFragment>>,
    viewers: AtomicUsize,
}

impl LiveFeed {
    pub fn new(camera: &str) -> LiveFeed {
        let (sender, _) = broadcast::channel(FEED_CAPACITY);
        LiveFeed {
            camera: camera.to_string(),
            state: Mutex::new(FeedState::default()),
            sender,
            viewers: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        // A panic elsewhere must not take live view down with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one video frame from ingest. `setup` is the stream's current
    /// track setup (given at least on keyframes). Never blocks on viewers.
    pub fn publish_video(&self, media: i64, is_key: bool, data: &[u8], setup: Option<&TrackSetup>) {
        let mut state = self.lock();
        if is_key {
            if let Some(setup) = setup {
                if state.setup.as_ref() != Some(setup) || state.muxer.is_none() {
                    Self::start_generation(&mut state, setup, media);
                }
            }
        }
        let (Some(init), Some(muxer)) = (state.init.clone(), state.muxer.as_mut()) else {
            return; // waiting for the first keyframe
        };
        let (bytes, _, duration) = muxer.fragment(media, is_key, data);
        let fragment = Arc::new(LiveFragment {
            generation: init.generation,
            is_key,
            bytes,
            duration,
        });
        if is_key {
            Self::close_gop(&mut state, init.timescale);
        }
        if !state.gop_overflowed {
            state.gop_bytes += fragment.bytes.len();
            state.gop.push(fragment.clone());
            if state.gop_bytes > MAX_HELD_GOP_BYTES || state.gop.len() > MAX_HELD_GOP_FRAMES {
                state.gop.clear();
                state.gop_bytes = 0;
                state.gop_overflowed = true;
            }
        }
        // Sent under the lock, so a viewer subscribing now sees each frame
        // exactly once (in its backlog or from the ring). No receivers is fine.
        let _ = self.sender.send(fragment);
    }

    /// The camera session ended: viewers stay, waiting for the next one.
    pub fn end_session(&self) {
        let mut state = self.lock();
        state.muxer = None;
        state.setup = None;
        state.gop.clear();
        state.gop_bytes = 0;
        state.gop_overflowed = false;
    }

    fn start_generation(state: &mut FeedState, setup: &TrackSetup, media: i64) {
        state.generations += 1;
        state.init = Some(Arc::new(LiveInit {
            generation: state.generations,
            codec: setup.video.codec.clone(),
            width: setup.video.width,
            height: setup.video.height,
            timescale: setup.video.clock_rate,
            bytes: Bytes::from(init_segment(setup)),
        }));
        state.setup = Some(setup.clone());
        state.muxer = Some(FrameMuxer::new(media, setup.video.clock_rate));
        state.gop.clear();
        state.gop_bytes = 0;
        state.gop_overflowed = false;
        // HLS segments of the old generation need the old init; drop them.
        state.segments.clear();
        state.segments_bytes = 0;
    }

    /// A keyframe arrived: the held GOP is complete and becomes an HLS segment.
    fn close_gop(state: &mut FeedState, timescale: u32) {
        let gop = std::mem::take(&mut state.gop);
        state.gop_bytes = 0;
        let overflowed = std::mem::replace(&mut state.gop_overflowed, false);
        let Some(first) = gop.first() else {
            return;
        };
        if overflowed || !first.is_key {
            return;
        }
        let ticks: u64 = gop.iter().map(|f| u64::from(f.duration)).sum();
        let segment = HlsSegment {
            generation: first.generation,
            sequence: state.next_segment,
            duration_s: ticks as f64 / f64::from(timescale.max(1)),
            fragments: gop,
        };
        state.next_segment += 1;
        state.segments_bytes += segment.byte_len();
        state.segments.push_back(segment);
        while state.segments.len() > HLS_SEGMENTS
            || (state.segments.len() > 1 && state.segments_bytes > MAX_HLS_BYTES)
        {
            if let Some(dropped) = state.segments.pop_front() {
                state.segments_bytes -= dropped.byte_len();
            }
        }
    }

    /// Where a new viewer starts: the init, the frames since the latest
    /// keyframe, and a receiver for what follows.
    pub fn subscribe(&self) -> Subscription {
        let state = self.lock();
        Subscription {
            init: state.init.clone(),
            backlog: state.gop.clone(),
            receiver: self.sender.subscribe(),
        }
    }

    pub fn init(&self) -> Option<Arc<LiveInit>> {
        self.lock().init.clone()
    }

    /// True while a camera session is feeding frames.
    pub fn streaming(&self) -> bool {
        self.lock().muxer.is_some()
    }

    /// The HLS playlist's view: the init and the complete GOPs held.
    pub fn hls(&self) -> (Option<Arc<LiveInit>>, Vec<HlsEntry>) {
        let state = self.lock();
        let segments = state
            .segments
            .iter()
            .map(|s| (s.generation, s.sequence, s.duration_s))
            .collect();
        (state.init.clone(), segments)
    }

    pub fn hls_segment(&self, generation: u64, sequence: u64) -> Option<Bytes> {
        // Only the `Arc`s are cloned under the lock; ingest needs it per frame.
        let fragments = {
            let state = self.lock();
            state
                .segments
                .iter()
                .find(|s| s.generation == generation && s.sequence == sequence)
                .map(|s| s.fragments.clone())
        }?;
        Some(concat(&fragments))
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Counts a viewer for as long as the guard lives.
    pub fn viewer(self: &Arc<Self>) -> ViewerGuard {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        ViewerGuard(self.clone())
    }
}

pub struct ViewerGuard(Arc<LiveFeed>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::fragmenter::VideoTrack;

    fn setup() -> TrackSetup {
        TrackSetup {
            video: VideoTrack {
                codec: "avc1.640028".into(),
                width: 640,
                height: 360,
                clock_rate: 90_000,
                sample_entry: b"\0\0\0\x08avc1".to_vec(),
            },
            audio: None,
        }
    }

    #[test]
    fn new_viewers_start_at_the_latest_keyframe() {
        let feed = LiveFeed::new("porch");
        let s = setup();
        feed.publish_video(0, false, b"before any key", Some(&s));
        assert!(feed.init().is_none());
        for i in 0..10i64 {
            feed.publish_video(i * 3000, i % 5 == 0, b"frame", Some(&s));
        }
        let sub = feed.subscribe();
        assert_eq!(sub.init.expect("init").generation, 1);
        assert_eq!(sub.backlog.len(), 5);
        assert!(sub.backlog[0].is_key);
        // Its fragment's `tfdt`: `moof`, then an 8-byte `mdat` header and the frame.
        let first = &sub.backlog[0].bytes;
        let moof = porchlight_mp4::parse_moof(&first[..first.len() - 8 - b"frame".len()], 0)
            .expect("moof");
        assert_eq!(moof.tracks[0].base_media_decode_time, 15_000);
        // One complete GOP became an HLS segment.
        let (_, segments) = feed.hls();
        assert_eq!(segments.len(), 1);
        assert!((segments[0].2 - 5.0 * 3000.0 / 90_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_lagging_receiver_is_told_and_memory_stays_in_the_ring() {
        let feed = LiveFeed::new("porch");
        let s = setup();
        let mut sub = feed.subscribe();
        for i in 0..(FEED_CAPACITY as i64 * 3) {
            feed.publish_video(i * 3000, i % 30 == 0, &[0u8; 1000], Some(&s));
        }
        assert!(matches!(
            sub.receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn a_new_setup_starts_a_new_generation_and_drops_old_segments() {
        let feed = LiveFeed::new("porch");
        let mut s = setup();
        for i in 0..12i64 {
            feed.publish_video(i * 3000, i % 5 == 0, b"f", Some(&s));
        }
        assert_eq!(feed.hls().1.len(), 2);
        s.video.width = 1280;
        feed.publish_video(12 * 3000, true, b"f", Some(&s));
        let (init, segments) = feed.hls();
        assert_eq!(init.expect("init").generation, 2);
        assert!(segments.is_empty());
    }
}
