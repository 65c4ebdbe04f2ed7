//! Choosing the stored samples for a time range and laying out the clip.
//!
//! The clip starts at the keyframe at or before `from` (an edit list makes
//! playback begin at `from`) and ends with the last frame before `to`.
//! **Gaps** inside the range (camera offline, daemon stopped) are collapsed:
//! the clip plays the footage on either side back to back; the recordings
//! API and evidence manifests say where the gaps were.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use porchlight_mp4::{Chunk, MovieTrack, Sample, TrackKind};
use rusqlite::{params, Connection};

use super::clip::{ClipFile, Part, Piece};
use super::ExportError;
use crate::config::StreamKind;
use crate::time::format_utc_us;

#[derive(Clone, Debug)]
pub struct ClipRequest {
    pub camera: String,
    pub stream: StreamKind,
    pub from_us: i64,
    pub to_us: i64,
    pub audio: bool,
    /// Longest range one clip may cover.
    pub max_duration_us: i64,
}

struct FragmentRow {
    segment_id: i64,
    file_name: String,
    segment_start_us: i64,
    file_offset: u64,
    start_us: i64,
    starts_with_key: bool,
}

/// Per segment: its open file and the sample entries of its init.
pub(super) struct SegmentInit {
    pub(super) file: Arc<File>,
    pub(super) video_entry: Vec<u8>,
    video_timescale: u32,
    audio: Option<(Vec<u8>, u32)>,
    width: u16,
    height: u16,
}

/// The footage chosen for a request, before it is laid out as a file.
pub struct ClipPlan {
    tracks: Vec<MovieTrack>,
    /// Footage in mdat order: each fragment's video part, then its audio part.
    parts: Vec<Part>,
    fragments: Vec<PlannedFragment>,
    etag: Fnv,
    /// UTC (µs) where each track's media timeline begins (before the trim).
    pub track_origins_us: Vec<(u32, i64)>,
    /// Where playback starts (the request's `from`, or later if footage does).
    pub start_us: i64,
    /// UTC spans actually covered; gaps between them were collapsed.
    pub spans: Vec<(i64, i64)>,
}

/// One stored fragment's share of the clip.
struct PlannedFragment {
    video: PlannedRun,
    audio: Option<PlannedRun>,
}

/// A track's samples of one fragment: which samples, which sample entry,
/// which part holds their bytes.
struct PlannedRun {
    samples: std::ops::Range<usize>,
    description_index: u32,
    part: usize,
}

/// Gaps shorter than this between fragments are timing jitter, not gaps.
const GAP_TOLERANCE_US: i64 = 500_000;

/// Builds the clip for `request` as a progressive MP4 (what players and
/// browsers seek in best).
pub fn plan_clip(
    conn: &Connection,
    data_dir: &Path,
    request: &ClipRequest,
) -> Result<ClipFile, ExportError> {
    Ok(plan_footage(conn, data_dir, request)?.into_progressive())
}

/// Chooses the stored samples for `request` from the index and the segment files.
pub fn plan_footage(
    conn: &Connection,
    data_dir: &Path,
    request: &ClipRequest,
) -> Result<ClipPlan, ExportError> {
    let ClipRequest {
        camera,
        stream,
        from_us,
        to_us,
        ..
    } = request;
    if from_us >= to_us {
        return Err(ExportError::EmptyRange {
            from: format_utc_us(*from_us),
            to: format_utc_us(*to_us),
        });
    }
    if to_us - from_us > request.max_duration_us {
        return Err(ExportError::TooLong {
            requested_s: (to_us - from_us) / 1_000_000,
            max_s: request.max_duration_us / 1_000_000,
        });
    }
    let no_footage = || ExportError::NoFootage {
        camera: camera.clone(),
        from: format_utc_us(*from_us),
        to: format_utc_us(*to_us),
    };

    let mut rows = fragments_in_range(conn, camera, *stream, *from_us, *to_us)?;
    // Start at a keyframe: drop leading fragments that do not begin with one.
    let first_key = rows
        .iter()
        .position(|r| r.starts_with_key)
        .ok_or_else(no_footage)?;
    rows.drain(..first_key);

    let mut inits: HashMap<i64, SegmentInit> = HashMap::new();
    let mut video_entries: Vec<Vec<u8>> = Vec::new();
    let mut audio_entries: Vec<Vec<u8>> = Vec::new();
    let mut video = TrackBuilder::default();
    let mut audio = TrackBuilder::default();
    let mut parts = Vec::new();
    let mut mdat_len = 0u64;
    let mut first_video_us = None;
    let mut first_audio_us = None;
    let mut fragments = Vec::new();
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut etag = Fnv::new();
    etag.add(&from_us.to_le_bytes());
    etag.add(&to_us.to_le_bytes());
    etag.add(&[u8::from(request.audio)]);

    for row in &rows {
        let init = match inits.entry(row.segment_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(read_init(data_dir, &row.file_name)?)
            }
        };
        let segment_error = |error: String| ExportError::Segment {
            file: row.file_name.clone(),
            error,
        };
        let info = read_moof(&init.file, row.file_offset).map_err(segment_error)?;
        etag.add(&row.segment_id.to_le_bytes());
        etag.add(&row.file_offset.to_le_bytes());

        // Video: frames from the fragment start until `to`.
        let Some(run) = info.tracks.iter().find(|t| t.track_id == 1) else {
            continue;
        };
        let (kept, kept_bytes) =
            samples_before(&run.samples, row.start_us, init.video_timescale, *to_us);
        if kept == 0 {
            break;
        }
        first_video_us.get_or_insert(row.start_us);
        let index = entry_index(&mut video_entries, &init.video_entry);
        let first_sample = video.samples.len();
        video.add(&run.samples[..kept], mdat_len, index);
        let kept_us: i64 = run.samples[..kept]
            .iter()
            .map(|s| ticks_to_us(u64::from(s.duration), init.video_timescale))
            .sum();
        let span_end = row.start_us + kept_us;
        match spans.last_mut() {
            Some((_, end)) if row.start_us - *end <= GAP_TOLERANCE_US => *end = span_end,
            _ => spans.push((row.start_us, span_end)),
        }
        let mut fragment = PlannedFragment {
            video: PlannedRun {
                samples: first_sample..video.samples.len(),
                description_index: index,
                part: parts.len(),
            },
            audio: None,
        };
        parts.push(Part {
            file: init.file.clone(),
            offset: run.data_offset_in_file,
            len: kept_bytes,
        });
        mdat_len += kept_bytes;

        // Audio: the fragment's audio samples that start before `to`.
        if let (true, Some((entry, rate)), Some(run)) = (
            request.audio,
            init.audio.as_ref(),
            info.tracks.iter().find(|t| t.track_id == 2),
        ) {
            let start = row.segment_start_us + ticks_to_us(run.base_media_decode_time, *rate);
            first_audio_us.get_or_insert(start);
            let (kept, kept_bytes) = samples_before(&run.samples, start, *rate, *to_us);
            if kept > 0 {
                let index = entry_index(&mut audio_entries, entry);
                let first_sample = audio.samples.len();
                audio.add(&run.samples[..kept], mdat_len, index);
                fragment.audio = Some(PlannedRun {
                    samples: first_sample..audio.samples.len(),
                    description_index: index,
                    part: parts.len(),
                });
                parts.push(Part {
                    file: init.file.clone(),
                    offset: run.data_offset_in_file,
                    len: kept_bytes,
                });
                mdat_len += kept_bytes;
            }
        }
        fragments.push(fragment);
    }

    let (Some(first_video_us), Some(first_init)) = (
        first_video_us,
        rows.first().and_then(|r| inits.get(&r.segment_id)),
    ) else {
        return Err(no_footage());
    };
    let start_us = (*from_us).max(first_video_us);
    if let Some((start, _)) = spans.first_mut() {
        *start = (*start).max(start_us);
    }
    let mut track_origins_us = vec![(1, first_video_us)];
    let video_timescale = first_init.video_timescale;
    let video_skip = us_to_ticks(start_us - first_video_us, video_timescale).min(video.duration());
    let mut tracks = vec![MovieTrack {
        track_id: 1,
        kind: TrackKind::Video {
            width: first_init.width,
            height: first_init.height,
        },
        timescale: video_timescale,
        sample_entries: video_entries,
        edit_media_time: video_skip,
        edit_duration: video.duration() - video_skip,
        samples: video.samples,
        chunks: video.chunks,
    }];
    if let (Some(first_audio_us), Some((_, rate))) = (first_audio_us, first_init.audio.as_ref()) {
        if !audio.samples.is_empty() {
            track_origins_us.push((2, first_audio_us));
            let skip = us_to_ticks((start_us - first_audio_us).max(0), *rate).min(audio.duration());
            tracks.push(MovieTrack {
                track_id: 2,
                kind: TrackKind::Audio {
                    channels: 1,
                    sample_rate: *rate,
                },
                timescale: *rate,
                sample_entries: audio_entries,
                edit_media_time: skip,
                edit_duration: audio.duration() - skip,
                samples: audio.samples,
                chunks: audio.chunks,
            });
        }
    }
    Ok(ClipPlan {
        tracks,
        parts,
        fragments,
        etag,
        track_origins_us,
        start_us,
        spans,
    })
}

impl ClipPlan {
    /// A progressive MP4: one `moov` with full sample tables, then one `mdat`.
    pub fn into_progressive(self) -> ClipFile {
        let mdat_len: u64 = self.parts.iter().map(|p| p.len).sum();
        let mut header = Vec::with_capacity(64 * 1024);
        porchlight_mp4::write_movie_header(&self.tracks, mdat_len, &mut header);
        let mut pieces = vec![Piece::Bytes(header.into())];
        pieces.extend(self.parts.into_iter().map(Piece::Footage));
        ClipFile::new(pieces, format!("\"{:016x}\"", self.etag.finish()))
    }

    /// A fragmented MP4 (as the ONVIF Export File Format asks): the movie
    /// header, then one `moof`+`mdat` per stored fragment.
    pub fn into_fragmented(self) -> ClipFile {
        let mut header = Vec::with_capacity(4096);
        porchlight_mp4::write_fragmented_movie_header(&self.tracks, &mut header);
        let mut pieces = vec![Piece::Bytes(header.into())];
        let mut decode_times = vec![0u64; self.tracks.len()];
        for (number, fragment) in (1u32..).zip(&self.fragments) {
            let runs = std::iter::once(&fragment.video).chain(fragment.audio.as_ref());
            let mut trafs = Vec::new();
            let mut footage = Vec::new();
            for (track_index, run) in runs.enumerate() {
                let Some(track) = self.tracks.get(track_index) else {
                    continue; // audio left out of the clip
                };
                let samples = &track.samples[run.samples.clone()];
                trafs.push(porchlight_mp4::TrackFragment {
                    track_id: track.track_id,
                    base_media_decode_time: decode_times[track_index],
                    sample_description_index: run.description_index,
                    samples,
                });
                decode_times[track_index] +=
                    samples.iter().map(|s| u64::from(s.duration)).sum::<u64>();
                footage.push(self.parts[run.part].clone());
            }
            let mut moof =
                Vec::with_capacity(256 + 16 * trafs.iter().map(|t| t.samples.len()).sum::<usize>());
            porchlight_mp4::write_fragment_header(number, &trafs, &mut moof);
            pieces.push(Piece::Bytes(moof.into()));
            pieces.extend(footage.into_iter().map(Piece::Footage));
        }
        let mut etag = self.etag;
        etag.add(b"fragmented");
        ClipFile::new(pieces, format!("\"{:016x}\"", etag.finish()))
    }
}

#[derive(Default)]
struct TrackBuilder {
    samples: Vec<Sample>,
    chunks: Vec<Chunk>,
}

impl TrackBuilder {
    fn add(&mut self, samples: &[Sample], offset_in_mdat: u64, description_index: u32) {
        self.samples.extend_from_slice(samples);
        self.chunks.push(Chunk {
            offset_in_mdat,
            sample_count: samples.len() as u32,
            description_index,
        });
    }

    fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

/// 1-based index of `entry` in `entries`, adding it when new (a camera that
/// changed resolution inside the range gives the clip two sample entries).
fn entry_index(entries: &mut Vec<Vec<u8>>, entry: &[u8]) -> u32 {
    match entries.iter().position(|e| e == entry) {
        Some(i) => i as u32 + 1,
        None => {
            entries.push(entry.to_vec());
            entries.len() as u32
        }
    }
}

/// How many of `samples` (the first starting at `start_us`) start before
/// `to_us`, and their total size.
fn samples_before(samples: &[Sample], start_us: i64, timescale: u32, to_us: i64) -> (usize, u64) {
    let mut t = start_us;
    let mut kept = 0;
    let mut bytes = 0u64;
    for s in samples {
        if t >= to_us {
            break;
        }
        kept += 1;
        bytes += u64::from(s.size);
        t += ticks_to_us(u64::from(s.duration), timescale);
    }
    (kept, bytes)
}

fn ticks_to_us(ticks: u64, timescale: u32) -> i64 {
    (u128::from(ticks) * 1_000_000 / u128::from(timescale.max(1))) as i64
}

fn us_to_ticks(us: i64, timescale: u32) -> u64 {
    (i128::from(us.max(0)) * i128::from(timescale) / 1_000_000) as u64
}

fn fragments_in_range(
    conn: &Connection,
    camera: &str,
    stream: StreamKind,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<FragmentRow>, ExportError> {
    super::ensure_camera(conn, camera)?;
    let mut stmt = conn.prepare(
        "SELECT f.segment_id, s.file_name, s.start_utc_us, f.file_offset, f.start_utc_us, f.starts_with_key
         FROM fragments f JOIN segments s ON s.id = f.segment_id JOIN streams st ON st.id = s.stream_id
         WHERE st.camera = ?1 AND st.kind = ?2 AND f.start_utc_us < ?4
           AND f.start_utc_us + f.duration_us > ?3
         ORDER BY f.start_utc_us, f.segment_id, f.seq",
    )?;
    let rows = stmt.query_map(params![camera, stream.as_str(), from_us, to_us], |r| {
        Ok(FragmentRow {
            segment_id: r.get(0)?,
            file_name: r.get(1)?,
            segment_start_us: r.get(2)?,
            file_offset: r.get::<_, i64>(3)?.max(0) as u64,
            start_us: r.get(4)?,
            starts_with_key: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn read_init(data_dir: &Path, file_name: &str) -> Result<SegmentInit, ExportError> {
    let error = |error: String| ExportError::Segment {
        file: file_name.to_string(),
        error,
    };
    let mut file = File::open(data_dir.join(file_name)).map_err(|e| error(e.to_string()))?;
    let len = file.metadata().map_err(|e| error(e.to_string()))?.len();
    let boxes =
        porchlight_mp4::top_level_boxes(&mut file, len).map_err(|e| error(e.to_string()))?;
    let moov = boxes
        .iter()
        .find(|b| &b.box_type == b"moov")
        .ok_or_else(|| error("no moov box".into()))?;
    if moov.size > 1 << 20 {
        return Err(error("moov box is implausibly large".into()));
    }
    let mut bytes = vec![0u8; moov.size as usize];
    file.seek(SeekFrom::Start(moov.offset))
        .map_err(|e| error(e.to_string()))?;
    file.read_exact(&mut bytes)
        .map_err(|e| error(e.to_string()))?;
    let info = porchlight_mp4::parse_init(&bytes).map_err(|e| error(e.to_string()))?;
    let video = info
        .video_track()
        .ok_or_else(|| error("no video track".into()))?;
    let audio = info.tracks.iter().find(|t| &t.handler == b"soun");
    let (width, height) = visual_size(&video.sample_entry);
    Ok(SegmentInit {
        file: Arc::new(file),
        video_entry: video.sample_entry.clone(),
        video_timescale: video.timescale,
        audio: audio.map(|a| (a.sample_entry.clone(), a.timescale)),
        width,
        height,
    })
}

/// Width and height from a VisualSampleEntry (bytes 32..36 of the box).
fn visual_size(entry: &[u8]) -> (u16, u16) {
    match entry.get(32..36) {
        Some(b) => (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        ),
        None => (0, 0),
    }
}

pub(super) fn read_moof(file: &File, offset: u64) -> Result<porchlight_mp4::FragmentInfo, String> {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, offset)
        .map_err(|e| e.to_string())?;
    let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    if &head[4..8] != b"moof" || !(8..=16 << 20).contains(&size) {
        return Err(format!("no fragment at offset {offset}"));
    }
    let mut moof = vec![0u8; size as usize];
    file.read_exact_at(&mut moof, offset)
        .map_err(|e| e.to_string())?;
    porchlight_mp4::parse_moof(&moof, offset).map_err(|e| e.to_string())
}

/// FNV-1a: a stable, dependency-free hash for ETags.
#[derive(Clone, Copy, Debug)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
