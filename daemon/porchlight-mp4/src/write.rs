//! Init segments and fragment headers.

use crate::boxes::{u16be, u32be, u64be, unity_matrix, write_box, write_full_box};

/// What kind of media a track carries (for tkhd/hdlr/media header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Video { width: u16, height: u16 },
    Audio { channels: u16, sample_rate: u32 },
}

/// One track of an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    pub track_id: u32,
    pub kind: TrackKind,
    pub timescale: u32,
    /// One complete sample entry box (`avc1`, `hvc1`, `mp4a`, `ulaw`, ...),
    /// embedded verbatim in `stsd`.
    pub sample_entry: Vec<u8>,
}

/// One sample of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    pub is_sync: bool,
    pub composition_offset: i32,
}

/// The samples of one track in one fragment.
#[derive(Clone, Copy, Debug)]
pub struct TrackFragment<'a> {
    pub track_id: u32,
    pub base_media_decode_time: u64,
    /// 1-based index into the track's `stsd` entries; 1 is the default
    /// (from `trex`) and is not written.
    pub sample_description_index: u32,
    pub samples: &'a [Sample],
}

/// G.711 companding law.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G711Law {
    Mu,
    A,
}

/// Sample flags (ISO 14496-12 8.8.3.1): sync = "depends on no other sample";
/// non-sync = "depends on others, is not a sync sample".
const SYNC_FLAGS: u32 = 0x0200_0000;
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// Writes `ftyp` + `moov` describing `tracks`.
pub fn write_init_segment(tracks: &[TrackConfig], out: &mut Vec<u8>) {
    write_box(out, b"ftyp", |out| {
        out.extend_from_slice(b"iso6");
        u32be(out, 0);
        for brand in [b"iso6", b"isom", b"iso2", b"mp41"] {
            out.extend_from_slice(brand);
        }
    });
    write_box(out, b"moov", |out| {
        write_mvhd(
            out,
            1000,
            0,
            tracks.iter().map(|t| t.track_id).max().unwrap_or(0) + 1,
        );
        for track in tracks {
            write_trak(out, track);
        }
        let track_ids: Vec<u32> = tracks.iter().map(|t| t.track_id).collect();
        write_mvex(out, &track_ids, None);
    });
}

/// `mvex`: says the movie continues in fragments; `mehd` (when the whole
/// duration is known, in movie timescale) lets players show it up front.
pub(crate) fn write_mvex(out: &mut Vec<u8>, track_ids: &[u32], fragment_duration: Option<u64>) {
    write_box(out, b"mvex", |out| {
        if let Some(duration) = fragment_duration {
            write_full_box(out, b"mehd", 1, 0, |out| u64be(out, duration));
        }
        for &track_id in track_ids {
            write_full_box(out, b"trex", 0, 0, |out| {
                u32be(out, track_id);
                u32be(out, 1); // sample description index
                u32be(out, 0);
                u32be(out, 0);
                u32be(out, 0);
            });
        }
    });
}

fn write_trak(out: &mut Vec<u8>, track: &TrackConfig) {
    write_box(out, b"trak", |out| {
        write_tkhd(out, track.track_id, track.kind, 0);
        write_box(out, b"mdia", |out| {
            write_mdhd(out, track.timescale, 0);
            write_handler(out, track.kind);
            write_box(out, b"minf", |out| {
                write_media_header_and_dinf(out, track.kind);
                write_box(out, b"stbl", |out| {
                    write_empty_sample_tables(out, std::slice::from_ref(&track.sample_entry))
                });
            });
        });
    });
}

/// Writes `moof` and the `mdat` header for `trafs`. The caller writes each
/// track's sample data, in the order of `trafs`, right after. Returns the
/// whole fragment's length (moof + mdat header + sample data).
pub fn write_fragment_header(
    sequence_number: u32,
    trafs: &[TrackFragment<'_>],
    out: &mut Vec<u8>,
) -> u64 {
    let moof_start = out.len();
    let mut data_offset_fields = Vec::with_capacity(trafs.len());
    write_box(out, b"moof", |out| {
        write_full_box(out, b"mfhd", 0, 0, |out| u32be(out, sequence_number));
        for traf in trafs {
            write_box(out, b"traf", |out| {
                // default-base-is-moof: data offsets count from the moof.
                let other_entry = traf.sample_description_index > 1;
                let tfhd_flags = 0x02_0000 | if other_entry { 0x02 } else { 0 };
                write_full_box(out, b"tfhd", 0, tfhd_flags, |out| {
                    u32be(out, traf.track_id);
                    if other_entry {
                        u32be(out, traf.sample_description_index);
                    }
                });
                write_full_box(out, b"tfdt", 1, 0, |out| {
                    u64be(out, traf.base_media_decode_time)
                });
                let any_cto = traf.samples.iter().any(|s| s.composition_offset != 0);
                let flags = 0x001 | 0x100 | 0x200 | 0x400 | if any_cto { 0x800 } else { 0 };
                write_full_box(out, b"trun", 1, flags, |out| {
                    u32be(out, traf.samples.len() as u32);
                    data_offset_fields.push(out.len());
                    u32be(out, 0); // patched below
                    for s in traf.samples {
                        u32be(out, s.duration);
                        u32be(out, s.size);
                        u32be(
                            out,
                            if s.is_sync {
                                SYNC_FLAGS
                            } else {
                                NON_SYNC_FLAGS
                            },
                        );
                        if any_cto {
                            out.extend_from_slice(&s.composition_offset.to_be_bytes());
                        }
                    }
                });
            });
        }
    });
    let moof_len = (out.len() - moof_start) as u64;
    let data_len: u64 = trafs
        .iter()
        .flat_map(|t| t.samples.iter())
        .map(|s| u64::from(s.size))
        .sum();
    let mdat_header_len: u64 = if data_len + 8 <= u64::from(u32::MAX) {
        8
    } else {
        16
    };
    let mut offset = moof_len + mdat_header_len;
    for (traf, field) in trafs.iter().zip(data_offset_fields) {
        let value = offset.min(i32::MAX as u64) as u32;
        out[field..field + 4].copy_from_slice(&value.to_be_bytes());
        offset += traf.samples.iter().map(|s| u64::from(s.size)).sum::<u64>();
    }
    if mdat_header_len == 8 {
        u32be(out, (data_len + 8) as u32);
        out.extend_from_slice(b"mdat");
    } else {
        u32be(out, 1);
        out.extend_from_slice(b"mdat");
        u64be(out, data_len + 16);
    }
    moof_len + mdat_header_len + data_len
}

/// A QuickTime-style `ulaw`/`alaw` sample entry (AudioSampleEntry layout),
/// which ffmpeg and most players read as G.711.
pub fn g711_sample_entry(law: G711Law, sample_rate: u32, channels: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(36);
    let box_type = match law {
        G711Law::Mu => b"ulaw",
        G711Law::A => b"alaw",
    };
    write_box(&mut out, box_type, |out| {
        out.extend_from_slice(&[0; 6]);
        u16be(out, 1); // data reference index
        out.extend_from_slice(&[0; 8]);
        u16be(out, channels.max(1));
        u16be(out, 16); // sample size as decoded
        u16be(out, 0);
        u16be(out, 0);
        // 16.16 fixed point; rates above 65535 Hz do not occur for G.711.
        u32be(out, sample_rate.min(65_535) << 16);
    });
    out
}

/// An `avc1` sample entry built from one SPS and one PPS (for footage that
/// did not come through retina, which builds its own).
pub fn avc1_sample_entry(sps: &[u8], pps: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + sps.len() + pps.len());
    write_box(&mut out, b"avc1", |out| {
        out.extend_from_slice(&[0; 6]);
        u16be(out, 1); // data reference index
        out.extend_from_slice(&[0; 16]);
        u16be(out, width);
        u16be(out, height);
        u32be(out, 0x0048_0000); // 72 dpi
        u32be(out, 0x0048_0000);
        u32be(out, 0);
        u16be(out, 1); // frame count
        out.extend_from_slice(&[0; 32]); // compressor name
        u16be(out, 0x0018); // depth
        u16be(out, 0xffff);
        write_box(out, b"avcC", |out| {
            let byte = |i: usize| sps.get(i).copied().unwrap_or(0);
            out.extend_from_slice(&[1, byte(1), byte(2), byte(3), 0xff, 0xe1]);
            u16be(out, sps.len() as u16);
            out.extend_from_slice(sps);
            out.push(1);
            u16be(out, pps.len() as u16);
            out.extend_from_slice(pps);
        });
    });
    out
}

/// `stsd`: the sample entries, verbatim.
pub(crate) fn write_stsd(out: &mut Vec<u8>, sample_entries: &[Vec<u8>]) {
    write_full_box(out, b"stsd", 0, 0, |out| {
        u32be(out, sample_entries.len() as u32);
        for entry in sample_entries {
            out.extend_from_slice(entry);
        }
    });
}

/// `stbl` contents of a fragmented track: its sample entries, no samples
/// (the `moof` boxes describe those).
pub(crate) fn write_empty_sample_tables(out: &mut Vec<u8>, sample_entries: &[Vec<u8>]) {
    write_stsd(out, sample_entries);
    write_full_box(out, b"stts", 0, 0, |out| u32be(out, 0));
    write_full_box(out, b"stsc", 0, 0, |out| u32be(out, 0));
    write_full_box(out, b"stsz", 0, 0, |out| {
        u32be(out, 0);
        u32be(out, 0);
    });
    write_full_box(out, b"stco", 0, 0, |out| u32be(out, 0));
}

/// `hdlr`: says whether a track is video or sound.
pub(crate) fn write_handler(out: &mut Vec<u8>, kind: TrackKind) {
    let (handler, name): (&[u8; 4], &[u8]) = match kind {
        TrackKind::Video { .. } => (b"vide", b"Porchlight video\0"),
        TrackKind::Audio { .. } => (b"soun", b"Porchlight audio\0"),
    };
    write_full_box(out, b"hdlr", 0, 0, |out| {
        u32be(out, 0);
        out.extend_from_slice(handler);
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(name);
    });
}

/// The start of `minf`: `vmhd` or `smhd`, and a `dinf` saying "data is in this file".
pub(crate) fn write_media_header_and_dinf(out: &mut Vec<u8>, kind: TrackKind) {
    match kind {
        TrackKind::Video { .. } => {
            write_full_box(out, b"vmhd", 0, 1, |out| out.extend_from_slice(&[0; 8]))
        }
        TrackKind::Audio { .. } => {
            write_full_box(out, b"smhd", 0, 0, |out| out.extend_from_slice(&[0; 4]))
        }
    }
    write_box(out, b"dinf", |out| {
        write_full_box(out, b"dref", 0, 0, |out| {
            u32be(out, 1);
            write_full_box(out, b"url ", 0, 1, |_| {});
        });
    });
}

/// `tkhd` (version 1): enabled, in the movie; size for video, volume for sound.
pub(crate) fn write_tkhd(out: &mut Vec<u8>, track_id: u32, kind: TrackKind, duration: u64) {
    write_full_box(out, b"tkhd", 1, 0x3, |out| {
        u64be(out, 0); // creation time
        u64be(out, 0); // modification time
        u32be(out, track_id);
        u32be(out, 0);
        u64be(out, duration);
        out.extend_from_slice(&[0; 8]);
        u16be(out, 0); // layer
        u16be(out, 0); // alternate group
        u16be(
            out,
            if matches!(kind, TrackKind::Audio { .. }) {
                0x0100
            } else {
                0
            },
        );
        u16be(out, 0);
        unity_matrix(out);
        let (w, h) = match kind {
            TrackKind::Video { width, height } => (width, height),
            TrackKind::Audio { .. } => (0, 0),
        };
        u32be(out, u32::from(w) << 16);
        u32be(out, u32::from(h) << 16);
    });
}

/// `mdhd` (version 1), language "und".
pub(crate) fn write_mdhd(out: &mut Vec<u8>, timescale: u32, duration: u64) {
    write_full_box(out, b"mdhd", 1, 0, |out| {
        u64be(out, 0);
        u64be(out, 0);
        u32be(out, timescale);
        u64be(out, duration);
        u16be(out, 0x55c4);
        u16be(out, 0);
    });
}

/// `mvhd` (version 1): movie timescale and duration (0 when fragmented).
pub(crate) fn write_mvhd(out: &mut Vec<u8>, timescale: u32, duration: u64, next_track_id: u32) {
    write_full_box(out, b"mvhd", 1, 0, |out| {
        u64be(out, 0); // creation time
        u64be(out, 0); // modification time
        u32be(out, timescale);
        u64be(out, duration);
        u32be(out, 0x0001_0000); // rate 1.0
        u16be(out, 0x0100); // volume 1.0
        out.extend_from_slice(&[0; 10]);
        unity_matrix(out);
        out.extend_from_slice(&[0; 24]);
        u32be(out, next_track_id);
    });
}
