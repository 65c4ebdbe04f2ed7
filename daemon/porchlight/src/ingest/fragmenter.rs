//! Turning a stream of frames into segment files of fragments, one per GOP.
//!
//! Pure state machine: frames in, [`WriteJob`]s out. No I/O, so it is tested
//! directly and costs the ingest task only a little bookkeeping per frame.
//! Frames are held until the next keyframe (that is when the last frame's
//! duration becomes known), then written with one vectored write.

use porchlight_mp4::{Sample, TrackConfig, TrackFragment, TrackKind};

use super::timeline::{Adjustment, Timeline};

/// Video and audio track descriptions; a change starts a new segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackSetup {
    pub video: VideoTrack,
    pub audio: Option<AudioTrack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoTrack {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub clock_rate: u32,
    pub sample_entry: Vec<u8>,
}

impl VideoTrack {
    /// The `trak` description of this video, for init segments (the store's
    /// and live view's share it).
    pub fn track_config(&self, track_id: u32) -> TrackConfig {
        TrackConfig {
            track_id,
            kind: TrackKind::Video {
                width: self.width.min(u32::from(u16::MAX)) as u16,
                height: self.height.min(u32::from(u16::MAX)) as u16,
            },
            timescale: self.clock_rate,
            sample_entry: self.sample_entry.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioTrack {
    pub codec: String,
    pub clock_rate: u32,
    pub channels: u16,
    pub sample_entry: Vec<u8>,
}

const VIDEO_TRACK_ID: u32 = 1;
const AUDIO_TRACK_ID: u32 = 2;

/// Without a keyframe for this long (or this much data), a fragment is cut
/// anyway, so memory stays bounded for cameras with huge or missing GOPs.
const MAX_GOP_US: i64 = 20_000_000;
const MAX_GOP_BYTES: usize = 16 << 20;
const MAX_GOP_FRAMES: usize = 1000;

/// Work for the stream's writer task.
#[derive(Debug)]
pub enum WriteJob {
    StartSegment(SegmentStart),
    Fragment(FragmentJob),
    EndSegment,
}

#[derive(Debug)]
pub struct SegmentStart {
    pub start_utc_us: i64,
    pub init: Vec<u8>,
    pub setup: TrackSetup,
}

#[derive(Debug)]
pub struct FragmentJob {
    pub seq: u32,
    pub start_utc_us: i64,
    pub duration_us: i64,
    /// Video decode time of the first frame, relative to the segment start.
    pub media_start: u64,
    pub frames: u32,
    pub starts_with_key: bool,
    /// moof + mdat header.
    pub header: Vec<u8>,
    /// Sample data in file order: video frames, then audio frames.
    pub payloads: Vec<Vec<u8>>,
}

impl FragmentJob {
    pub fn total_len(&self) -> u64 {
        self.header.len() as u64 + self.payloads.iter().map(|p| p.len() as u64).sum::<u64>()
    }
}

struct PendingVideo {
    media: i64,
    is_key: bool,
    data: Vec<u8>,
}

struct PendingAudio {
    media: i64,
    duration: u32,
    data: Vec<u8>,
}

struct OpenSegment {
    start_media: i64,
    start_utc_us: i64,
    next_seq: u32,
    /// (audio decode time, audio RTP time) of the first audio sample kept.
    audio_base: Option<(u64, i64)>,
}

pub struct Fragmenter {
    segment_duration_us: i64,
    setup: Option<TrackSetup>,
    video_time: Option<Timeline>,
    audio_time: Option<Timeline>,
    segment: Option<OpenSegment>,
    gop: Vec<PendingVideo>,
    gop_bytes: usize,
    last_video_duration: i64,
    audio: Vec<PendingAudio>,
    /// Frames dropped while waiting for the first keyframe.
    pub frames_before_keyframe: u64,
}

impl Fragmenter {
    pub fn new(segment_duration_us: i64) -> Fragmenter {
        Fragmenter {
            segment_duration_us,
            setup: None,
            video_time: None,
            audio_time: None,
            segment: None,
            gop: Vec::new(),
            gop_bytes: 0,
            last_video_duration: 0,
            audio: Vec::new(),
            frames_before_keyframe: 0,
        }
    }

    /// Feeds one video frame. `setup` is the stream's current track setup
    /// (the caller passes it on every keyframe; a change starts a new segment).
    pub fn push_video(
        &mut self,
        media: i64,
        is_key: bool,
        data: Vec<u8>,
        arrival_utc_us: i64,
        setup: Option<&TrackSetup>,
        jobs: &mut Vec<WriteJob>,
    ) {
        if self.video_time.is_none() {
            let (true, Some(setup)) = (is_key, setup) else {
                self.frames_before_keyframe += 1;
                return;
            };
            self.video_time = Some(Timeline::new(setup.video.clock_rate, media, arrival_utc_us));
            self.setup = Some(setup.clone());
        }
        let Some(timeline) = self.video_time.as_mut() else {
            return;
        };
        timeline.observe(media, arrival_utc_us);

        let gop_too_long = self.gop.first().is_some_and(|first| {
            let span = (media - first.media) * 1_000_000 / i64::from(self.video_clock_rate());
            span > MAX_GOP_US || self.gop_bytes > MAX_GOP_BYTES || self.gop.len() >= MAX_GOP_FRAMES
        });
        if (is_key || gop_too_long) && !self.gop.is_empty() {
            let reanchored = self.flush(media, jobs);
            let params_changed = is_key && setup.is_some_and(|s| Some(s) != self.setup.as_ref());
            let segment_full = self.segment.as_ref().is_some_and(|seg| {
                self.video_time
                    .as_ref()
                    .is_some_and(|t| t.utc_us(media) - seg.start_utc_us >= self.segment_duration_us)
            });
            if reanchored || params_changed || (is_key && segment_full) {
                self.end_segment(jobs);
            }
            if params_changed {
                self.setup = setup.cloned();
            }
        }
        if self.segment.is_none() {
            if !is_key {
                // A segment must start decodable; wait for the next keyframe.
                self.frames_before_keyframe += 1;
                return;
            }
            self.start_segment(media, jobs);
        }
        self.gop_bytes += data.len();
        self.gop.push(PendingVideo {
            media,
            is_key,
            data,
        });
    }

    /// Feeds one audio frame (kept only while a segment is open).
    pub fn push_audio(&mut self, media: i64, duration: u32, data: Vec<u8>, arrival_utc_us: i64) {
        let Some(audio) = self.setup.as_ref().and_then(|s| s.audio.as_ref()) else {
            return;
        };
        if self.segment.is_none() {
            return;
        }
        let clock_rate = audio.clock_rate;
        let timeline = self
            .audio_time
            .get_or_insert_with(|| Timeline::new(clock_rate, media, arrival_utc_us));
        timeline.observe(media, arrival_utc_us);
        self.audio.push(PendingAudio {
            media,
            duration,
            data,
        });
    }

    /// The session ended: write what is buffered and close the segment.
    pub fn finish(&mut self, jobs: &mut Vec<WriteJob>) {
        if let Some(last) = self.gop.last() {
            let next = last.media + self.last_video_duration.max(1);
            self.flush(next, jobs);
        }
        self.end_segment(jobs);
        self.video_time = None;
        self.audio_time = None;
        self.setup = None;
    }

    fn video_clock_rate(&self) -> u32 {
        self.setup.as_ref().map_or(90_000, |s| s.video.clock_rate)
    }

    fn start_segment(&mut self, media: i64, jobs: &mut Vec<WriteJob>) {
        let (Some(setup), Some(timeline)) = (self.setup.as_ref(), self.video_time.as_ref()) else {
            return;
        };
        let start_utc_us = timeline.utc_us(media);
        let mut tracks = vec![setup.video.track_config(VIDEO_TRACK_ID)];
        if let Some(audio) = &setup.audio {
            tracks.push(TrackConfig {
                track_id: AUDIO_TRACK_ID,
                kind: TrackKind::Audio {
                    channels: audio.channels,
                    sample_rate: audio.clock_rate,
                },
                timescale: audio.clock_rate,
                sample_entry: audio.sample_entry.clone(),
            });
        }
        let mut init = Vec::with_capacity(1024);
        porchlight_mp4::write_init_segment(&tracks, &mut init);
        self.segment = Some(OpenSegment {
            start_media: media,
            start_utc_us,
            next_seq: 1,
            audio_base: None,
        });
        // Audio captured before the segment's first frame cannot be placed in it.
        self.audio.clear();
        jobs.push(WriteJob::StartSegment(SegmentStart {
            start_utc_us,
            init,
            setup: setup.clone(),
        }));
    }

    fn end_segment(&mut self, jobs: &mut Vec<WriteJob>) {
        if self.segment.take().is_some() {
            jobs.push(WriteJob::EndSegment);
        }
    }

    /// Writes the buffered GOP as one fragment; `next_media` is the time of
    /// the frame after it. Returns true when the timeline re-anchored.
    fn flush(&mut self, next_media: i64, jobs: &mut Vec<WriteJob>) -> bool {
        let gop = std::mem::take(&mut self.gop);
        self.gop_bytes = 0;
        let audio = std::mem::take(&mut self.audio);
        let (Some(segment), Some(timeline), Some(setup)) = (
            self.segment.as_mut(),
            self.video_time.as_mut(),
            self.setup.as_ref(),
        ) else {
            return false;
        };
        let Some(first) = gop.first() else {
            return false;
        };

        let mut video_samples = Vec::with_capacity(gop.len());
        for (i, frame) in gop.iter().enumerate() {
            let next = gop.get(i + 1).map_or(next_media, |f| f.media);
            let mut duration = next - frame.media;
            if duration <= 0 {
                duration = self.last_video_duration.max(1);
            }
            self.last_video_duration = duration;
            video_samples.push(Sample {
                duration: duration.min(i64::from(u32::MAX)) as u32,
                size: frame.data.len() as u32,
                is_sync: frame.is_key,
                composition_offset: 0,
            });
        }
        let media_start = (first.media - segment.start_media).max(0) as u64;
        let start_utc_us = timeline.utc_us(first.media);
        let end_utc_us = timeline.utc_us(next_media);

        // Audio: anchor the segment's first sample by wall time, then follow
        // the audio RTP clock so samples stay contiguous.
        let mut audio_samples = Vec::with_capacity(audio.len());
        let mut audio_data = Vec::with_capacity(audio.len());
        let mut audio_decode = None;
        if let (Some(track), Some(audio_time)) = (setup.audio.as_ref(), self.audio_time.as_ref()) {
            for a in audio {
                let base = match segment.audio_base {
                    Some(base) => base,
                    None => {
                        let offset_us = audio_time.utc_us(a.media) - segment.start_utc_us;
                        if offset_us < 0 {
                            continue;
                        }
                        let decode = (i128::from(offset_us) * i128::from(track.clock_rate)
                            / 1_000_000) as u64;
                        *segment.audio_base.insert((decode, a.media))
                    }
                };
                let decode = base.0 as i64 + (a.media - base.1);
                if decode < 0 {
                    continue;
                }
                audio_decode.get_or_insert(decode as u64);
                audio_samples.push(Sample {
                    duration: a.duration,
                    size: a.data.len() as u32,
                    is_sync: true,
                    composition_offset: 0,
                });
                audio_data.push(a.data);
            }
        }

        let mut trafs = vec![TrackFragment {
            track_id: VIDEO_TRACK_ID,
            base_media_decode_time: media_start,
            sample_description_index: 1,
            samples: &video_samples,
        }];
        if let Some(decode) = audio_decode {
            trafs.push(TrackFragment {
                track_id: AUDIO_TRACK_ID,
                base_media_decode_time: decode,
                sample_description_index: 1,
                samples: &audio_samples,
            });
        }
        let mut header = Vec::with_capacity(256 + 16 * (video_samples.len() + audio_samples.len()));
        porchlight_mp4::write_fragment_header(segment.next_seq, &trafs, &mut header);

        let frames = gop.len() as u32;
        let starts_with_key = first.is_key;
        let mut payloads: Vec<Vec<u8>> = gop.into_iter().map(|f| f.data).collect();
        payloads.extend(audio_data);
        jobs.push(WriteJob::Fragment(FragmentJob {
            seq: segment.next_seq,
            start_utc_us,
            duration_us: end_utc_us - start_utc_us,
            media_start,
            frames,
            starts_with_key,
            header,
            payloads,
        }));
        segment.next_seq += 1;
        timeline.adjust(next_media) == Adjustment::Reanchored
    }
}

#[cfg(test)]
mod tests;
