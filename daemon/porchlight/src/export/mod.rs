//! Footage out of the store: clips as progressive MP4 assembled on the fly
//! from stored fragments (no re-encoding, no temp file), and the coverage
//! queries behind the recordings API.

mod clip;
mod coverage;
pub mod keyframe;
mod plan;
pub mod snapshot;

pub use clip::{write_clip, ClipFile};
pub use coverage::{coverage, days, Coverage, DayCoverage};
pub use plan::{plan_clip, plan_footage, ClipPlan, ClipRequest};

/// Why footage cannot be exported; each names the problem for the caller.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown camera `{0}`")]
    UnknownCamera(String),
    #[error("`from` ({from}) must be before `to` ({to})")]
    EmptyRange { from: String, to: String },
    #[error("the range is {requested_s} s long; the most one clip may cover is {max_s} s")]
    TooLong { requested_s: i64, max_s: i64 },
    #[error("no footage of `{camera}` between {from} and {to}")]
    NoFootage {
        camera: String,
        from: String,
        to: String,
    },
    #[error("recording index: {0}")]
    Index(#[from] rusqlite::Error),
    #[error("segment file {file}: {error}")]
    Segment { file: String, error: String },
}

/// Fails with [`ExportError::UnknownCamera`] unless the index knows `camera`.
fn ensure_camera(conn: &rusqlite::Connection, camera: &str) -> Result<(), ExportError> {
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM streams WHERE camera = ?)",
        [camera],
        |r| r.get(0),
    )?;
    if known {
        Ok(())
    } else {
        Err(ExportError::UnknownCamera(camera.to_string()))
    }
}
