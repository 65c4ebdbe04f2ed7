//! Reading what we wrote, defensively: for crash recovery and `check`.

use std::io::{Read, Seek, SeekFrom};

use crate::write::Sample;

/// Largest `moov` or `moof` we will read into memory. Ours are a few KiB;
/// anything bigger is damage, not footage.
const MAX_HEADER_BOX: u64 = 16 << 20;
/// Most boxes `top_level_boxes` lists before giving up.
const MAX_TOP_LEVEL_BOXES: usize = 1_000_000;
/// Most samples one trun may declare.
const MAX_SAMPLES: u32 = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Mp4Error {
    #[error("box at offset {offset}: {what}")]
    Malformed { offset: u64, what: String },
    #[error("box `{box_type}` at offset {offset} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        box_type: String,
        offset: u64,
        size: u64,
        limit: u64,
    },
    #[error("missing `{0}` box")]
    Missing(&'static str),
    #[error("I/O error: {0}")]
    Io(String),
}

fn malformed(offset: u64, what: impl Into<String>) -> Mp4Error {
    Mp4Error::Malformed {
        offset,
        what: what.into(),
    }
}

/// A box's place in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    pub box_type: [u8; 4],
    pub offset: u64,
    pub header_len: u8,
    pub size: u64,
}

impl BoxHeader {
    /// Where the box ends; saturates, so a 64-bit size from a damaged file
    /// lands past any real file length instead of wrapping to a small one.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    fn type_name(&self) -> String {
        String::from_utf8_lossy(&self.box_type).into_owned()
    }
}

/// Parses a box header from `bytes` (which start at file offset `offset`).
/// `Ok(None)` when `bytes` is too short to hold the header.
fn parse_header(bytes: &[u8], offset: u64) -> Result<Option<BoxHeader>, Mp4Error> {
    if bytes.len() < 8 {
        return Ok(None);
    }
    let size32 = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let box_type = [bytes[4], bytes[5], bytes[6], bytes[7]];
    let (size, header_len) = match size32 {
        0 => {
            return Err(malformed(
                offset,
                "box extends to end of file (size 0), which we never write",
            ))
        }
        1 => {
            if bytes.len() < 16 {
                return Ok(None);
            }
            let mut large = [0u8; 8];
            large.copy_from_slice(&bytes[8..16]);
            (u64::from_be_bytes(large), 16u8)
        }
        n => (u64::from(n), 8u8),
    };
    if size < u64::from(header_len) {
        return Err(malformed(
            offset,
            format!("box size {size} is smaller than its header"),
        ));
    }
    Ok(Some(BoxHeader {
        box_type,
        offset,
        header_len,
        size,
    }))
}

/// Reads the header of the box at `offset`; `Ok(None)` at (or cut off before) `file_len`.
fn read_header<R: Read + Seek>(
    r: &mut R,
    offset: u64,
    file_len: u64,
) -> Result<Option<BoxHeader>, Mp4Error> {
    let available = file_len.saturating_sub(offset).min(16) as usize;
    if available < 8 {
        return Ok(None);
    }
    let mut buf = [0u8; 16];
    r.seek(SeekFrom::Start(offset))
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    r.read_exact(&mut buf[..available])
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    parse_header(&buf[..available], offset)
}

fn read_body<R: Read + Seek>(r: &mut R, header: &BoxHeader) -> Result<Vec<u8>, Mp4Error> {
    if header.size > MAX_HEADER_BOX {
        return Err(Mp4Error::TooLarge {
            box_type: header.type_name(),
            offset: header.offset,
            size: header.size,
            limit: MAX_HEADER_BOX,
        });
    }
    let mut body = vec![0u8; header.size as usize];
    r.seek(SeekFrom::Start(header.offset))
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    r.read_exact(&mut body)
        .map_err(|e| Mp4Error::Io(e.to_string()))?;
    Ok(body)
}

/// Lists the top-level boxes of a file without reading their payloads.
/// Stops (without error) at a box cut off by the end of the file.
pub fn top_level_boxes<R: Read + Seek>(
    mut r: R,
    file_len: u64,
) -> Result<Vec<BoxHeader>, Mp4Error> {
    let mut boxes = Vec::new();
    let mut offset = 0;
    while let Some(header) = read_header(&mut r, offset, file_len)? {
        if header.end() > file_len || boxes.len() >= MAX_TOP_LEVEL_BOXES {
            break;
        }
        offset = header.end();
        boxes.push(header);
    }
    Ok(boxes)
}

/// Iterates the child boxes inside `body[start..]` (a box's payload).
pub(crate) fn children(
    body: &[u8],
    start: usize,
    base_offset: u64,
) -> Result<Vec<(BoxHeader, &[u8])>, Mp4Error> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < body.len() {
        let offset = base_offset + pos as u64;
        let header = parse_header(&body[pos..], offset)?
            .ok_or_else(|| malformed(offset, "truncated child box header"))?;
        let end = (pos as u64).saturating_add(header.size);
        if end > body.len() as u64 {
            return Err(malformed(
                offset,
                format!("child box `{}` runs past its parent", header.type_name()),
            ));
        }
        out.push((
            header,
            &body[pos + header.header_len as usize..end as usize],
        ));
        pos = end as usize;
    }
    Ok(out)
}

pub(crate) fn find<'a>(
    kids: &[(BoxHeader, &'a [u8])],
    box_type: &[u8; 4],
) -> Option<(BoxHeader, &'a [u8])> {
    kids.iter().find(|(h, _)| &h.box_type == box_type).copied()
}

/// A cursor over a box payload that reports short reads as errors.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    offset: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], offset: u64) -> Self {
        Cursor {
            bytes,
            pos: 0,
            offset,
        }
    }
    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.pos..]
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Mp4Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(malformed(
                self.offset,
                "box payload is shorter than its fields",
            ));
        };
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Mp4Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Mp4Error> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// Version and flags of a full box.
    pub(crate) fn version_flags(&mut self) -> Result<(u8, u32), Mp4Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// One track as described by an init segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitTrack {
    pub track_id: u32,
    pub timescale: u32,
    pub handler: [u8; 4],
    pub sample_entry_type: [u8; 4],
    pub sample_entry: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitInfo {
    pub tracks: Vec<InitTrack>,
}

impl InitInfo {
    /// The first video track, which Porchlight always writes.
    pub fn video_track(&self) -> Option<&InitTrack> {
        self.tracks.iter().find(|t| &t.handler == b"vide")
    }
}

/// Parses a `moov` box (given with its header) or `ftyp`+`moov` bytes.
pub fn parse_init(bytes: &[u8]) -> Result<InitInfo, Mp4Error> {
    let top = children(bytes, 0, 0)?;
    let (moov_header, moov) = find(&top, b"moov").ok_or(Mp4Error::Missing("moov"))?;
    let moov_start = moov_header.offset + u64::from(moov_header.header_len);
    let mut tracks = Vec::new();
    for (trak_header, trak) in children(moov, 0, moov_start)? {
        if &trak_header.box_type != b"trak" {
            continue;
        }
        let base = trak_header.offset + u64::from(trak_header.header_len);
        let kids = children(trak, 0, base)?;
        let (tkhd_h, tkhd) = find(&kids, b"tkhd").ok_or(Mp4Error::Missing("tkhd"))?;
        let mut c = Cursor::new(tkhd, tkhd_h.offset);
        let (version, _) = c.version_flags()?;
        c.take(if version == 1 { 16 } else { 8 })?;
        let track_id = c.u32()?;

        let (mdia_h, mdia) = find(&kids, b"mdia").ok_or(Mp4Error::Missing("mdia"))?;
        let mdia_kids = children(mdia, 0, mdia_h.offset + u64::from(mdia_h.header_len))?;
        let (mdhd_h, mdhd) = find(&mdia_kids, b"mdhd").ok_or(Mp4Error::Missing("mdhd"))?;
        let mut c = Cursor::new(mdhd, mdhd_h.offset);
        let (version, _) = c.version_flags()?;
        c.take(if version == 1 { 16 } else { 8 })?;
        let timescale = c.u32()?;
        if timescale == 0 {
            return Err(malformed(mdhd_h.offset, "mdhd timescale is 0"));
        }
        let (hdlr_h, hdlr) = find(&mdia_kids, b"hdlr").ok_or(Mp4Error::Missing("hdlr"))?;
        let mut c = Cursor::new(hdlr, hdlr_h.offset);
        c.version_flags()?;
        c.u32()?;
        let mut handler = [0u8; 4];
        handler.copy_from_slice(c.take(4)?);

        let (minf_h, minf) = find(&mdia_kids, b"minf").ok_or(Mp4Error::Missing("minf"))?;
        let minf_kids = children(minf, 0, minf_h.offset + u64::from(minf_h.header_len))?;
        let (stbl_h, stbl) = find(&minf_kids, b"stbl").ok_or(Mp4Error::Missing("stbl"))?;
        let stbl_kids = children(stbl, 0, stbl_h.offset + u64::from(stbl_h.header_len))?;
        let (stsd_h, stsd) = find(&stbl_kids, b"stsd").ok_or(Mp4Error::Missing("stsd"))?;
        let entries = children(stsd, 8, stsd_h.offset + u64::from(stsd_h.header_len))?;
        let (entry_header, _) = entries.first().ok_or(Mp4Error::Missing("sample entry"))?;
        let sample_entry_type = entry_header.box_type;
        // The whole entry, header included, for copying into exported files.
        let sample_entry = stsd
            .get(8..8 + entry_header.size as usize)
            .ok_or_else(|| malformed(entry_header.offset, "sample entry runs past stsd"))?
            .to_vec();

        tracks.push(InitTrack {
            track_id,
            timescale,
            handler,
            sample_entry_type,
            sample_entry,
        });
    }
    if tracks.is_empty() {
        return Err(Mp4Error::Missing("trak"));
    }
    Ok(InitInfo { tracks })
}

/// One track's samples in a fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRun {
    pub track_id: u32,
    pub base_media_decode_time: u64,
    pub samples: Vec<Sample>,
    /// Where the first sample's data is in the file.
    pub data_offset_in_file: u64,
}

impl TrackRun {
    pub fn data_len(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    pub sequence_number: u32,
    pub tracks: Vec<TrackRun>,
}

/// Parses a whole `moof` box (with its header) found at `moof_offset_in_file`.
pub fn parse_moof(moof_bytes: &[u8], moof_offset_in_file: u64) -> Result<FragmentInfo, Mp4Error> {
    let header = parse_header(moof_bytes, moof_offset_in_file)?
        .ok_or_else(|| malformed(moof_offset_in_file, "truncated moof header"))?;
    if &header.box_type != b"moof" || header.size != moof_bytes.len() as u64 {
        return Err(malformed(moof_offset_in_file, "not a complete moof box"));
    }
    let kids = children(moof_bytes, header.header_len as usize, moof_offset_in_file)?;
    let (mfhd_h, mfhd) = find(&kids, b"mfhd").ok_or(Mp4Error::Missing("mfhd"))?;
    let mut c = Cursor::new(mfhd, mfhd_h.offset);
    c.version_flags()?;
    let sequence_number = c.u32()?;

    let mut tracks = Vec::new();
    // Samples without per-sample fields take no bytes, so the moof's size
    // does not bound them: cap them across all the moof's runs.
    let mut total_samples = 0u32;
    for (traf_h, traf) in kids.iter().filter(|(h, _)| &h.box_type == b"traf") {
        let traf_kids = children(traf, 0, traf_h.offset + u64::from(traf_h.header_len))?;
        let (tfhd_h, tfhd) = find(&traf_kids, b"tfhd").ok_or(Mp4Error::Missing("tfhd"))?;
        let mut c = Cursor::new(tfhd, tfhd_h.offset);
        let (_, tfhd_flags) = c.version_flags()?;
        let track_id = c.u32()?;
        if tfhd_flags & 0x01 != 0 {
            return Err(malformed(
                tfhd_h.offset,
                "explicit base data offsets are not supported",
            ));
        }
        let base_media_decode_time = match find(&traf_kids, b"tfdt") {
            Some((h, body)) => {
                let mut c = Cursor::new(body, h.offset);
                let (version, _) = c.version_flags()?;
                if version == 1 {
                    c.u64()?
                } else {
                    u64::from(c.u32()?)
                }
            }
            None => return Err(Mp4Error::Missing("tfdt")),
        };
        let (trun_h, trun) = find(&traf_kids, b"trun").ok_or(Mp4Error::Missing("trun"))?;
        let mut c = Cursor::new(trun, trun_h.offset);
        let (_, flags) = c.version_flags()?;
        let count = c.u32()?;
        total_samples = total_samples.saturating_add(count);
        if total_samples > MAX_SAMPLES {
            return Err(malformed(
                trun_h.offset,
                format!("moof declares over {MAX_SAMPLES} samples"),
            ));
        }
        let data_offset = if flags & 0x001 != 0 {
            c.u32()? as i32
        } else {
            0
        };
        if flags & 0x004 != 0 {
            c.u32()?; // first-sample flags
        }
        let mut samples = Vec::with_capacity(count.min(4096) as usize);
        for _ in 0..count {
            let duration = if flags & 0x100 != 0 { c.u32()? } else { 0 };
            let size = if flags & 0x200 != 0 { c.u32()? } else { 0 };
            let sample_flags = if flags & 0x400 != 0 { c.u32()? } else { 0 };
            // Version 0 offsets are unsigned; we only write version 1 (signed).
            let composition_offset = if flags & 0x800 != 0 {
                c.u32()? as i32
            } else {
                0
            };
            samples.push(Sample {
                duration,
                size,
                // sample_is_non_sync_sample is bit 16.
                is_sync: sample_flags & 0x0001_0000 == 0,
                composition_offset,
            });
        }
        if data_offset < 0 {
            return Err(malformed(trun_h.offset, "negative trun data offset"));
        }
        tracks.push(TrackRun {
            track_id,
            base_media_decode_time,
            samples,
            data_offset_in_file: moof_offset_in_file + data_offset as u64,
        });
    }
    Ok(FragmentInfo {
        sequence_number,
        tracks,
    })
}

/// One whole fragment found by [`scan_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedFragment {
    /// Offset of the moof.
    pub offset: u64,
    /// moof + mdat.
    pub length: u64,
    pub sequence_number: u32,
    /// Video track decode time of the first sample (video timescale).
    pub video_decode_time: u64,
    /// Sum of the video sample durations.
    pub video_duration: u64,
    pub video_samples: u32,
    pub audio_samples: u32,
    pub starts_with_sync: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    pub init: InitInfo,
    pub init_len: u64,
    /// Length of the longest prefix made of the init and whole fragments.
    pub valid_len: u64,
    pub fragments: Vec<ScannedFragment>,
}

/// Walks a segment file: the init segment, then (moof, mdat) pairs whose
/// mdat holds exactly the bytes the moof's runs reference. Stops at the
/// first thing that is not such a pair (a crash's partial tail).
pub fn scan_segment<R: Read + Seek>(mut r: R, file_len: u64) -> Result<SegmentScan, Mp4Error> {
    let mut offset = 0;
    let mut init_bytes = Vec::new();
    // ftyp (optional) then moov.
    loop {
        let header = read_header(&mut r, offset, file_len)?.ok_or(Mp4Error::Missing("moov"))?;
        if header.end() > file_len {
            return Err(Mp4Error::Missing("moov"));
        }
        match &header.box_type {
            b"ftyp" | b"moov" => {
                init_bytes.extend_from_slice(&read_body(&mut r, &header)?);
                offset = header.end();
                if &header.box_type == b"moov" {
                    break;
                }
            }
            _ => {
                return Err(malformed(
                    header.offset,
                    format!("expected ftyp or moov, found `{}`", header.type_name()),
                ))
            }
        }
    }
    let init = parse_init(&init_bytes)?;
    let video_id = init.video_track().map(|t| t.track_id);
    let init_len = offset;
    let mut fragments = Vec::new();
    // Past the init, anything that is not a whole fragment is a damaged
    // tail: stop there (keeping the fragments before it) rather than fail.
    while let Ok(Some(moof)) = read_header(&mut r, offset, file_len) {
        if &moof.box_type != b"moof" || moof.end() > file_len || moof.size > MAX_HEADER_BOX {
            break;
        }
        let Ok(Some(mdat)) = read_header(&mut r, moof.end(), file_len) else {
            break;
        };
        if &mdat.box_type != b"mdat" || mdat.end() > file_len {
            break;
        }
        let Ok(body) = read_body(&mut r, &moof) else {
            break;
        };
        let Ok(info) = parse_moof(&body, moof.offset) else {
            break;
        };
        // Every run must lie inside this mdat, and together fill it exactly.
        let data_start = mdat.offset + u64::from(mdat.header_len);
        let mut expected = data_start;
        let mut consistent = true;
        for run in &info.tracks {
            if run.data_offset_in_file != expected {
                consistent = false;
            }
            expected += run.data_len();
        }
        if !consistent || expected != mdat.end() {
            break;
        }
        let video = info.tracks.iter().find(|t| Some(t.track_id) == video_id);
        fragments.push(ScannedFragment {
            offset: moof.offset,
            length: mdat.end() - moof.offset,
            sequence_number: info.sequence_number,
            video_decode_time: video.map_or(0, |v| v.base_media_decode_time),
            video_duration: video
                .map_or(0, |v| v.samples.iter().map(|s| u64::from(s.duration)).sum()),
            video_samples: video.map_or(0, |v| v.samples.len() as u32),
            audio_samples: info
                .tracks
                .iter()
                .filter(|t| Some(t.track_id) != video_id)
                .map(|t| t.samples.len() as u32)
                .sum(),
            starts_with_sync: video
                .and_then(|v| v.samples.first())
                .is_some_and(|s| s.is_sync),
        });
        offset = mdat.end();
    }
    Ok(SegmentScan {
        init,
        init_len,
        valid_len: offset,
        fragments,
    })
}
