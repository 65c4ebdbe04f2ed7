//! One frame in, one fMP4 fragment out: the live path cannot wait for the
//! next keyframe (as the store's GOP fragments do), so each frame is sent
//! as soon as it arrives. Its duration is not known yet; the previous
//! frame's is used, and each fragment's decode time comes from the camera's
//! RTP clock, so players never drift.

use bytes::Bytes;
use porchlight_mp4::{Sample, TrackFragment};

use crate::ingest::fragmenter::TrackSetup;

const VIDEO_TRACK_ID: u32 = 1;

/// A video-only init segment for `setup` (live view carries no audio).
pub fn init_segment(setup: &TrackSetup) -> Vec<u8> {
    let track = setup.video.track_config(VIDEO_TRACK_ID);
    let mut out = Vec::with_capacity(1024);
    porchlight_mp4::write_init_segment(&[track], &mut out);
    out
}

/// Per-session timing state.
pub struct FrameMuxer {
    base_media: i64,
    last_media: Option<i64>,
    last_duration: u32,
    next_sequence: u32,
}

impl FrameMuxer {
    /// Starts a session at the first keyframe's RTP time.
    pub fn new(first_media: i64, clock_rate: u32) -> FrameMuxer {
        FrameMuxer {
            base_media: first_media,
            last_media: None,
            // Until two frames are seen, assume 30 fps.
            last_duration: (clock_rate / 30).max(1),
            next_sequence: 1,
        }
    }

    /// `moof` + `mdat` holding one frame; returns it with its decode time
    /// and estimated duration (in the track's timescale).
    pub fn fragment(&mut self, media: i64, is_key: bool, data: &[u8]) -> (Bytes, u64, u32) {
        if let Some(last) = self.last_media {
            let delta = media - last;
            if delta > 0 && delta < i64::from(u32::MAX) {
                self.last_duration = delta as u32;
            }
        }
        self.last_media = Some(media);
        let decode_time = (media - self.base_media).max(0) as u64;
        let sample = [Sample {
            duration: self.last_duration,
            size: data.len() as u32,
            is_sync: is_key,
            composition_offset: 0,
        }];
        let traf = [TrackFragment {
            track_id: VIDEO_TRACK_ID,
            base_media_decode_time: decode_time,
            sample_description_index: 1,
            samples: &sample,
        }];
        let mut out = Vec::with_capacity(128 + data.len());
        porchlight_mp4::write_fragment_header(self.next_sequence, &traf, &mut out);
        out.extend_from_slice(data);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        (Bytes::from(out), decode_time, self.last_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_carry_rtp_decode_times_and_the_previous_duration() {
        let mut muxer = FrameMuxer::new(1000, 90_000);
        let (first, t0, d0) = muxer.fragment(1000, true, b"key");
        assert_eq!((t0, d0), (0, 3000));
        let (_, t1, d1) = muxer.fragment(4600, false, b"p");
        assert_eq!((t1, d1), (3600, 3600));
        let info = porchlight_mp4::parse_moof(&first[..first.len() - 3 - 8], 0).expect("moof");
        assert_eq!(info.tracks.len(), 1);
        assert_eq!(info.tracks[0].base_media_decode_time, 0);
        assert!(info.tracks[0].samples[0].is_sync);
        // The sample data sits right after the mdat header.
        assert_eq!(info.tracks[0].data_offset_in_file, first.len() as u64 - 3);
        assert!(first.ends_with(b"key"));
    }
}
