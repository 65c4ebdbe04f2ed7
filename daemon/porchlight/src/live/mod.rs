//! Live view: one camera connection feeds every viewer.
//!
//! Ingest hands each video frame to the camera's [`LiveFeed`] as well as to
//! the fragmenter; the feed wraps it at once in its own small fMP4 fragment
//! (one frame, `moof` + `mdat`, no decoding) and fans it out on a bounded
//! broadcast ring. The recording path never waits: publishing is a short
//! lock and a non-blocking send. Viewers start at the latest keyframe held
//! in memory; one that falls behind the ring skips to the next keyframe
//! instead of growing memory. See `docs/live.md`.

pub mod cli;
mod feed;
pub mod http;
mod muxer;
pub mod share;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use feed::{LiveFeed, LiveFragment, LiveInit, Subscription, FEED_CAPACITY};
pub use share::{EndReason, LiveShareInfo, LiveShares};

/// Every camera's live feed, by camera name.
#[derive(Clone, Default)]
pub struct LiveHub {
    feeds: Arc<BTreeMap<String, Arc<LiveFeed>>>,
}

impl LiveHub {
    /// A feed for each named camera.
    pub fn new<'a>(cameras: impl IntoIterator<Item = &'a str>) -> LiveHub {
        let feeds = cameras
            .into_iter()
            .map(|name| (name.to_string(), Arc::new(LiveFeed::new(name))))
            .collect();
        LiveHub {
            feeds: Arc::new(feeds),
        }
    }

    pub fn feed(&self, camera: &str) -> Option<&Arc<LiveFeed>> {
        self.feeds.get(camera)
    }

    pub fn feeds(&self) -> impl Iterator<Item = &Arc<LiveFeed>> {
        self.feeds.values()
    }
}

/// True for codecs every current browser's MSE plays (H.264); H.265 plays
/// only in some, so the page checks and offers the snapshot instead.
pub fn browser_playable(codec: &str) -> bool {
    codec.starts_with("avc1") || codec.starts_with("avc3")
}
