//! Finding and reading one stored keyframe (for snapshots): no decoding here.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::plan::{read_init, read_moof};
use super::ExportError;
use crate::config::StreamKind;
use crate::time::format_utc_us;

/// A keyframe as stored: its sample bytes and the sample entry that describes them.
pub struct Keyframe {
    /// Identifies the keyframe (segment id, fragment offset) for caching.
    pub key: (i64, u64),
    pub utc_us: i64,
    /// Length-prefixed NAL units, as in the MP4 sample.
    pub sample: Vec<u8>,
    /// The `avc1`/`hvc1` sample entry box.
    pub sample_entry: Vec<u8>,
}

/// Which keyframe a snapshot shows: `at` picks the one at or before that
/// time (or the first after it), none picks the newest.
pub fn locate(
    conn: &Connection,
    camera: &str,
    at_us: Option<i64>,
) -> Result<(i64, u64, i64, String), ExportError> {
    super::ensure_camera(conn, camera)?;
    let base = "SELECT f.segment_id, f.file_offset, f.start_utc_us, s.file_name
         FROM fragments f JOIN segments s ON s.id = f.segment_id JOIN streams st ON st.id = s.stream_id
         WHERE st.camera = ?1 AND st.kind = ?2 AND f.starts_with_key = 1";
    let row = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get(0)?,
            r.get::<_, i64>(1)?.max(0) as u64,
            r.get(2)?,
            r.get(3)?,
        ))
    };
    let kind = StreamKind::Main.as_str();
    let found = match at_us {
        None => conn
            .query_row(
                &format!("{base} ORDER BY f.start_utc_us DESC LIMIT 1"),
                params![camera, kind],
                row,
            )
            .optional()?,
        Some(at) => {
            let before = conn
                .query_row(
                    &format!(
                        "{base} AND f.start_utc_us <= ?3 ORDER BY f.start_utc_us DESC LIMIT 1"
                    ),
                    params![camera, kind, at],
                    row,
                )
                .optional()?;
            match before {
                Some(found) => Some(found),
                None => conn
                    .query_row(
                        &format!("{base} AND f.start_utc_us > ?3 ORDER BY f.start_utc_us LIMIT 1"),
                        params![camera, kind, at],
                        row,
                    )
                    .optional()?,
            }
        }
    };
    found.ok_or_else(|| {
        let when = at_us.map(format_utc_us).unwrap_or_else(|| "now".into());
        ExportError::NoFootage {
            camera: camera.to_string(),
            from: when.clone(),
            to: when,
        }
    })
}

/// Reads the first video sample of the fragment at `offset` in `file_name`.
pub fn read(
    data_dir: &Path,
    segment_id: i64,
    offset: u64,
    utc_us: i64,
    file_name: &str,
) -> Result<Keyframe, ExportError> {
    use std::os::unix::fs::FileExt;
    let error = |error: String| ExportError::Segment {
        file: file_name.to_string(),
        error,
    };
    let init = read_init(data_dir, file_name)?;
    let info = read_moof(&init.file, offset).map_err(error)?;
    let run = info
        .tracks
        .iter()
        .find(|t| t.track_id == 1)
        .ok_or_else(|| error("fragment has no video".into()))?;
    let size = run
        .samples
        .first()
        .map(|s| s.size)
        .ok_or_else(|| error("empty fragment".into()))?;
    if size > 64 << 20 {
        return Err(error(format!("keyframe of {size} bytes is implausible")));
    }
    let mut sample = vec![0u8; size as usize];
    init.file
        .read_exact_at(&mut sample, run.data_offset_in_file)
        .map_err(|e| error(e.to_string()))?;
    Ok(Keyframe {
        key: (segment_id, offset),
        utc_us,
        sample,
        sample_entry: init.video_entry,
    })
}
