//! Start-up recovery over a segment file as a crash, power cut or full disk
//! may leave it: `porchlight_mp4::scan_segment` (what `store::recovery`
//! reads every open or size-mismatched file with) and the index rows the
//! repair derives from the scan.
//!
//! Beyond "no panic": the scan's whole fragments tile the file from the end
//! of the init to `valid_len`; cutting the file to `valid_len` (the repair)
//! and scanning again finds exactly the same (repair is idempotent); cutting
//! it anywhere inside the last fragment loses that fragment only; the index
//! rows are numbered from 1 and never start before the segment does.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use porchlight::fuzzing::recovered_fragment_rows;
use porchlight_mp4::{scan_segment, SegmentScan};

/// 2026-01-01T00:00:00Z, as a segment start.
const SEGMENT_START_US: i64 = 1_767_225_600_000_000;

fn scan(bytes: &[u8]) -> Option<SegmentScan> {
    scan_segment(Cursor::new(bytes), bytes.len() as u64).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(found) = scan(data) else { return };
    let len = data.len() as u64;
    assert!(found.init_len <= found.valid_len && found.valid_len <= len);

    // Whole fragments, back to back, from the init to valid_len.
    let mut end = found.init_len;
    for f in &found.fragments {
        assert_eq!(f.offset, end, "gap or overlap before {f:?}");
        assert!(f.length > 0);
        end = f.offset + f.length;
    }
    assert_eq!(end, found.valid_len);

    // The repair cuts the file at valid_len: nothing more to repair after.
    let repaired = scan(&data[..found.valid_len as usize]).expect("the repaired file scans");
    assert_eq!(repaired, found, "scanning the repaired file differs");

    // A crash inside the last fragment loses that fragment and no other.
    if let Some(last) = found.fragments.last() {
        for cut in [last.offset + 1, last.offset + last.length - 1] {
            if cut <= last.offset || cut >= found.valid_len {
                continue;
            }
            let torn = scan(&data[..cut as usize]).expect("a torn file still scans");
            assert_eq!(torn.fragments, found.fragments[..found.fragments.len() - 1]);
            assert_eq!(torn.valid_len, last.offset);
        }
    }

    // The rows recovery writes to the index.
    let timescales = [found.init.video_track().map_or(90_000, |t| t.timescale), 1];
    for timescale in timescales {
        let rows = recovered_fragment_rows(7, SEGMENT_START_US, timescale, &found.fragments);
        assert_eq!(rows.len(), found.fragments.len());
        for (i, (row, f)) in rows.iter().zip(&found.fragments).enumerate() {
            assert_eq!(row.seq as usize, i + 1);
            assert_eq!((row.file_offset, row.length), (f.offset, f.length));
            assert!(
                row.start_utc_us >= SEGMENT_START_US,
                "{row:?} starts before its segment"
            );
            assert!(row.duration_us >= 0, "{row:?}");
        }
    }
});
