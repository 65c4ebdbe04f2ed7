//! Minimal fragmented-MP4 (ISO/IEC 14496-12) writing and reading for
//! Porchlight's recording store.
//!
//! Writing: an init segment (`ftyp` + `moov` with `mvex`) and fragments
//! (`moof` + `mdat`), with samples handed in already encoded: nothing is
//! ever re-encoded. Reading: just enough to recover a segment file after a
//! crash (find the last whole fragment) and to check it against the index.
//! The reader treats its input as hostile: bounded sizes, no panics.

mod boxes;
mod movie;
mod read;
mod seal;
mod write;

pub use movie::{write_fragmented_movie_header, write_movie_header, Chunk, MovieTrack};
pub use read::{
    parse_init, parse_moof, scan_segment, top_level_boxes, BoxHeader, FragmentInfo, InitInfo,
    InitTrack, Mp4Error, ScannedFragment, SegmentScan, TrackRun,
};
pub use seal::{
    read_seal, write_seal, ExportDescription, ExportSource, FoundSeal, SealBox, SealContents,
    TrackStartTime, ISO_EPOCH_OFFSET_S, WINDOWS_EPOCH_OFFSET_100NS,
};
pub use write::{
    avc1_sample_entry, g711_sample_entry, write_fragment_header, write_init_segment, G711Law,
    Sample, TrackConfig, TrackFragment, TrackKind,
};

#[cfg(test)]
mod tests;
