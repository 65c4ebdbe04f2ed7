//! Movie headers for clips assembled on the fly. Progressive: `ftyp` +
//! `moov` with full sample tables, then an `mdat` header. Fragmented (for
//! evidence exports): `ftyp` + `moov` with `mvex`, then `moof`+`mdat` pairs.
//! The sample bytes themselves stay in the segment files; the caller streams
//! them after the headers, so a clip needs no temp file.

use crate::boxes::{u32be, u64be, write_box, write_full_box};
use crate::write::{
    write_empty_sample_tables, write_handler, write_mdhd, write_media_header_and_dinf, write_mvex,
    write_mvhd, write_stsd, write_tkhd, Sample, TrackKind,
};

/// A run of samples stored together in the mdat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the chunk's first byte from the start of the mdat payload.
    pub offset_in_mdat: u64,
    pub sample_count: u32,
    /// 1-based index into the track's sample entries.
    pub description_index: u32,
}

/// One track of a clip.
#[derive(Clone, Debug)]
pub struct MovieTrack {
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    pub sample_entries: Vec<Vec<u8>>,
    pub samples: Vec<Sample>,
    pub chunks: Vec<Chunk>,
    /// Media time (track timescale) where presentation starts: trims the
    /// frames between the keyframe and the requested start.
    pub edit_media_time: u64,
    /// How long to present, in track timescale units.
    pub edit_duration: u64,
}

const MOVIE_TIMESCALE: u32 = 1000;

/// Writes `ftyp`, `moov` and the mdat header for `mdat_len` payload bytes.
/// Chunk offsets are made absolute by adding the header's own length.
pub fn write_movie_header(tracks: &[MovieTrack], mdat_len: u64, out: &mut Vec<u8>) {
    // The moov's size does not depend on the offsets it holds (co64 is fixed
    // width), so write once with zero base to learn it, then for real.
    let mut probe = Vec::new();
    write_all(tracks, mdat_len, 0, &mut probe);
    let header_len = probe.len() as u64;
    write_all(tracks, mdat_len, header_len, out);
}

/// Writes `ftyp` and `moov` (with `mvex`) for a fragmented file holding
/// `tracks`: sample tables stay empty, every sample entry and the edit list
/// are in place, and `mehd` gives the whole duration so players show it.
/// The caller follows with one `moof`+`mdat` per fragment.
pub fn write_fragmented_movie_header(tracks: &[MovieTrack], out: &mut Vec<u8>) {
    write_box(out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        u32be(out, 0);
        for brand in [b"iso6", b"isom", b"iso2", b"avc1", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    write_box(out, b"moov", |out| {
        write_movie_boxes(out, tracks, Layout::Fragmented);
        let track_ids: Vec<u32> = tracks.iter().map(|t| t.track_id).collect();
        write_mvex(out, &track_ids, Some(movie_duration(tracks)));
    });
}

/// Where the samples of a movie are described.
#[derive(Clone, Copy)]
enum Layout {
    /// Full sample tables; chunk offsets are `base` + offset in the mdat.
    Progressive { base: u64 },
    /// Empty sample tables; `moof` boxes describe the samples.
    Fragmented,
}

fn movie_duration(tracks: &[MovieTrack]) -> u64 {
    tracks
        .iter()
        .map(|t| to_movie(t.edit_duration, t.timescale))
        .max()
        .unwrap_or(0)
}

fn write_movie_boxes(out: &mut Vec<u8>, tracks: &[MovieTrack], layout: Layout) {
    write_mvhd(
        out,
        MOVIE_TIMESCALE,
        movie_duration(tracks),
        tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1,
    );
    for track in tracks {
        write_track(out, track, layout);
    }
}

fn write_all(tracks: &[MovieTrack], mdat_len: u64, base: u64, out: &mut Vec<u8>) {
    write_box(out, b"ftyp", |out| {
        out.extend_from_slice(b"isom");
        u32be(out, 0x200);
        for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    write_box(out, b"moov", |out| {
        write_movie_boxes(out, tracks, Layout::Progressive { base })
    });
    if mdat_len + 8 <= u64::from(u32::MAX) {
        // Pad the 8-byte header form to 16 so the header length (and so the
        // offsets) never depends on which form was chosen.
        write_box(out, b"free", |_| {});
        u32be(out, (mdat_len + 8) as u32);
        out.extend_from_slice(b"mdat");
    } else {
        u32be(out, 1);
        out.extend_from_slice(b"mdat");
        u64be(out, mdat_len + 16);
    }
}

fn to_movie(duration: u64, timescale: u32) -> u64 {
    (u128::from(duration) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1))) as u64
}

fn write_track(out: &mut Vec<u8>, track: &MovieTrack, layout: Layout) {
    let media_duration: u64 = match layout {
        Layout::Progressive { .. } => track.samples.iter().map(|s| u64::from(s.duration)).sum(),
        Layout::Fragmented => 0,
    };
    write_box(out, b"trak", |out| {
        write_tkhd(
            out,
            track.track_id,
            track.kind,
            to_movie(track.edit_duration, track.timescale),
        );
        write_box(out, b"edts", |out| {
            write_full_box(out, b"elst", 1, 0, |out| {
                u32be(out, 1);
                u64be(out, to_movie(track.edit_duration, track.timescale));
                u64be(out, track.edit_media_time);
                u32be(out, 0x0001_0000);
            });
        });
        write_box(out, b"mdia", |out| {
            write_mdhd(out, track.timescale, media_duration);
            write_handler(out, track.kind);
            write_box(out, b"minf", |out| {
                write_media_header_and_dinf(out, track.kind);
                write_box(out, b"stbl", |out| match layout {
                    Layout::Progressive { base } => write_sample_tables(out, track, base),
                    Layout::Fragmented => write_empty_sample_tables(out, &track.sample_entries),
                });
            });
        });
    });
}

fn write_sample_tables(out: &mut Vec<u8>, track: &MovieTrack, base: u64) {
    write_stsd(out, &track.sample_entries);
    // Run-length encoded durations.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for s in &track.samples {
        match runs.last_mut() {
            Some((count, duration)) if *duration == s.duration => *count += 1,
            _ => runs.push((1, s.duration)),
        }
    }
    write_full_box(out, b"stts", 0, 0, |out| {
        u32be(out, runs.len() as u32);
        for (count, duration) in &runs {
            u32be(out, *count);
            u32be(out, *duration);
        }
    });
    if track.samples.iter().any(|s| !s.is_sync) {
        let sync: Vec<u32> = (1..)
            .zip(&track.samples)
            .filter(|(_, s)| s.is_sync)
            .map(|(i, _)| i)
            .collect();
        write_full_box(out, b"stss", 0, 0, |out| {
            u32be(out, sync.len() as u32);
            for i in sync {
                u32be(out, i);
            }
        });
    }
    write_full_box(out, b"stsc", 0, 0, |out| {
        let mut entries: Vec<(u32, u32, u32)> = Vec::new();
        for (i, chunk) in (1..).zip(&track.chunks) {
            let same = entries
                .last()
                .is_some_and(|&(_, n, d)| n == chunk.sample_count && d == chunk.description_index);
            if !same {
                entries.push((i, chunk.sample_count, chunk.description_index));
            }
        }
        u32be(out, entries.len() as u32);
        for (first, count, index) in entries {
            u32be(out, first);
            u32be(out, count);
            u32be(out, index);
        }
    });
    write_full_box(out, b"stsz", 0, 0, |out| {
        u32be(out, 0);
        u32be(out, track.samples.len() as u32);
        for s in &track.samples {
            u32be(out, s.size);
        }
    });
    write_full_box(out, b"co64", 0, 0, |out| {
        u32be(out, track.chunks.len() as u32);
        for chunk in &track.chunks {
            u64be(out, base + chunk.offset_in_mdat);
        }
    });
}
