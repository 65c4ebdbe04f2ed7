//! What happened after a request was answered: the evidence package made
//! for each servable camera (and when it was deleted), each download of it
//! by the agency, and each live share the agency watched. Kept in
//! `requests.db` (schemas 2 and 3) so the owner's history is a query, not a walk
//! through the audit log; the audit log stays the tamper-evident record.

use std::collections::HashMap;

use rusqlite::{params, Connection};
use serde::{Serialize, Serializer};

use super::store::db;
use super::{RequestStore, RequestStoreError};
use crate::time::format_utc_us;

/// The package made for one camera of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub camera: String,
    pub bytes: u64,
    /// SHA-256 of the package file, lowercase hex: what the agency's copy
    /// hashes to if it arrived whole.
    pub sha256: String,
    #[serde(rename = "built", serialize_with = "time_rfc3339")]
    pub built_us: i64,
    /// When the package file was deleted (download link expired, or the
    /// owner left the relay program); `None` while it is on disk.
    #[serde(rename = "removed", serialize_with = "optional_time_rfc3339")]
    pub removed_us: Option<i64>,
}

/// One download response to the agency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Download {
    pub camera: String,
    pub agency: String,
    /// SHA-256 of the client certificate that downloaded.
    pub cert_fingerprint: String,
    #[serde(rename = "started", serialize_with = "time_rfc3339")]
    pub started_us: i64,
    /// The `Range` asked for, if any.
    pub range: Option<String>,
    /// 200 (the whole package) or 206 (a byte range).
    pub status: u16,
    /// What the response was to carry, and what was handed to the network.
    pub bytes_planned: u64,
    pub bytes_sent: u64,
    /// Every planned byte was sent (a 206 counts for its range only).
    pub complete: bool,
    /// When the body ended; `None` while it is still being sent (or if the
    /// daemon stopped mid-way).
    #[serde(rename = "finished", serialize_with = "optional_time_rfc3339")]
    pub finished_us: Option<i64>,
}

/// What a download is, as it starts.
#[derive(Clone, Debug)]
pub struct DownloadStart {
    pub request_id: String,
    pub camera: String,
    pub agency: String,
    pub cert_fingerprint: String,
    pub range: Option<String>,
    pub status: u16,
    pub bytes_planned: u64,
    pub started_us: i64,
}

/// One live share of a request's camera as the agency watched it: the
/// audited minutes (each started minute of each stream has its audit entry)
/// and how the viewing ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveView {
    pub share: String,
    pub camera: String,
    pub agency: String,
    pub cert_fingerprint: String,
    /// The first audited minute.
    #[serde(rename = "started", serialize_with = "time_rfc3339")]
    pub started_us: i64,
    /// The latest audited minute.
    #[serde(rename = "last_minute", serialize_with = "time_rfc3339")]
    pub last_minute_us: i64,
    pub minutes: u64,
    /// When the last stream of it stopped; `None` while one runs (or if the
    /// daemon stopped mid-way).
    #[serde(rename = "ended", serialize_with = "optional_time_rfc3339")]
    pub ended_us: Option<i64>,
    /// `live::EndReason::code` (`expired`, `ended_by_owner`, `relay_left`,
    /// the gate's reason such as `privacy_mode`), or `left` when the
    /// agency closed the stream while the share still ran.
    pub end_reason: Option<String>,
}

/// Why a live viewing stopped while its share still ran.
pub const LIVE_VIEW_LEFT: &str = "left";

/// A request's deliveries, downloads and live views, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub deliveries: Vec<Delivery>,
    pub downloads: Vec<Download>,
    pub live_views: Vec<LiveView>,
}

/// A live share's audited minute, as the relay writes it.
#[derive(Clone, Debug)]
pub struct LiveMinute<'a> {
    pub share: &'a str,
    pub request_id: &'a str,
    pub camera: &'a str,
    pub agency: &'a str,
    pub cert_fingerprint: &'a str,
    /// The share's audited minutes so far, this one included.
    pub minutes: u64,
    pub at_us: i64,
}

fn time_rfc3339<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_utc_us(*us))
}

fn optional_time_rfc3339<S: Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match us {
        Some(us) => s.serialize_str(&format_utc_us(*us)),
        None => s.serialize_none(),
    }
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl RequestStore {
    /// Records (or replaces, when a lost package was made again) the
    /// package made for `camera` of request `id`.
    pub fn record_delivery(
        &self,
        id: &str,
        camera: &str,
        bytes: u64,
        sha256: &str,
        built_us: i64,
    ) -> Result<(), RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO deliveries (request_id, camera, bytes, sha256, built_us)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id,
                    camera,
                    i64::try_from(bytes).unwrap_or(i64::MAX),
                    sha256,
                    built_us
                ],
            )
            .map_err(db("recording a delivery"))?;
            Ok(())
        })
    }

    /// Records a download as its response starts; returns its row id for
    /// [`RequestStore::finish_download`].
    pub fn start_download(&self, start: &DownloadStart) -> Result<i64, RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO downloads (request_id, camera, agency, cert_fingerprint, started_us,
                   byte_range, status, bytes_planned, bytes_sent, finished_us)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, NULL)",
                params![
                    start.request_id,
                    start.camera,
                    start.agency,
                    start.cert_fingerprint,
                    start.started_us,
                    start.range,
                    start.status,
                    i64::try_from(start.bytes_planned).unwrap_or(i64::MAX),
                ],
            )
            .map_err(db("recording a download"))?;
            Ok(conn.last_insert_rowid())
        })
    }

    /// How a download's body ended: `bytes_sent` handed to the network.
    pub fn finish_download(
        &self,
        download: i64,
        bytes_sent: u64,
        finished_us: i64,
    ) -> Result<(), RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE downloads SET bytes_sent = ?2, finished_us = ?3 WHERE id = ?1",
                params![
                    download,
                    i64::try_from(bytes_sent).unwrap_or(i64::MAX),
                    finished_us
                ],
            )
            .map_err(db("finishing a download"))?;
            Ok(())
        })
    }

    /// Marks the packages of request `id` deleted at `at_us` (those not
    /// already marked); returns how many rows changed.
    pub fn mark_deliveries_removed(
        &self,
        id: &str,
        at_us: i64,
    ) -> Result<usize, RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET removed_us = ?2 WHERE request_id = ?1 AND removed_us IS NULL",
                params![id, at_us],
            )
            .map_err(db("marking packages removed"))
        })
    }

    /// Marks every package deleted at `at_us` (leaving the relay program
    /// wipes them all); returns how many rows changed.
    pub fn mark_all_deliveries_removed(&self, at_us: i64) -> Result<usize, RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE deliveries SET removed_us = ?1 WHERE removed_us IS NULL",
                params![at_us],
            )
            .map_err(db("marking packages removed"))
        })
    }

    /// Records an audited minute of a live share: the first makes its row,
    /// later ones move its last minute and count on. A minute after the
    /// agency had left (it came back) opens the row again.
    pub fn record_live_minute(&self, minute: &LiveMinute<'_>) -> Result<(), RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO live_views (share_id, request_id, camera, agency, cert_fingerprint,
                   started_us, last_minute_us, minutes, ended_us, end_reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, NULL, NULL)
                 ON CONFLICT (share_id) DO UPDATE SET
                   last_minute_us = MAX(last_minute_us, excluded.last_minute_us),
                   minutes = MAX(minutes, excluded.minutes),
                   ended_us = NULL,
                   end_reason = NULL",
                params![
                    minute.share,
                    minute.request_id,
                    minute.camera,
                    minute.agency,
                    minute.cert_fingerprint,
                    minute.at_us,
                    i64::try_from(minute.minutes).unwrap_or(i64::MAX),
                ],
            )
            .map_err(db("recording a live view minute"))?;
            Ok(())
        })
    }

    /// Records that a stream of live share `share` stopped at `at_us`, and
    /// why. A share's own end (expiry, owner, policy) is not overwritten by
    /// a later `left` from another of its streams.
    pub fn end_live_view(
        &self,
        share: &str,
        reason: &str,
        at_us: i64,
    ) -> Result<(), RequestStoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "UPDATE live_views SET ended_us = ?2, end_reason = ?3
                 WHERE share_id = ?1 AND (end_reason IS NULL OR ?3 <> ?4)",
                params![share, at_us, reason, LIVE_VIEW_LEFT],
            )
            .map_err(db("ending a live view"))?;
            Ok(())
        })
    }

    /// Deliveries, downloads and live views of one request.
    pub fn activity(&self, id: &str) -> Result<Activity, RequestStoreError> {
        self.with_conn(|conn| {
            Ok(read_activity(conn, Some(id))?
                .remove(id)
                .unwrap_or_default())
        })
    }

    /// Deliveries, downloads and live views of every request, by request
    /// id (three queries, whatever the number of requests).
    pub fn all_activity(&self) -> Result<HashMap<String, Activity>, RequestStoreError> {
        self.with_conn(|conn| read_activity(conn, None))
    }
}

fn read_activity(
    conn: &Connection,
    only: Option<&str>,
) -> Result<HashMap<String, Activity>, RequestStoreError> {
    let mut by_request: HashMap<String, Activity> = HashMap::new();
    let mut statement = conn
        .prepare_cached(
            "SELECT request_id, camera, bytes, sha256, built_us, removed_us FROM deliveries
             WHERE ?1 IS NULL OR request_id = ?1 ORDER BY built_us, camera",
        )
        .map_err(db("reading deliveries"))?;
    let rows = statement
        .query_map(params![only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Delivery {
                    camera: r.get(1)?,
                    bytes: unsigned(r.get(2)?),
                    sha256: r.get(3)?,
                    built_us: r.get(4)?,
                    removed_us: r.get(5)?,
                },
            ))
        })
        .map_err(db("reading deliveries"))?;
    for row in rows {
        let (id, delivery) = row.map_err(db("reading deliveries"))?;
        by_request.entry(id).or_default().deliveries.push(delivery);
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT request_id, camera, agency, cert_fingerprint, started_us, byte_range, status,
                    bytes_planned, bytes_sent, finished_us
             FROM downloads WHERE ?1 IS NULL OR request_id = ?1 ORDER BY started_us, id",
        )
        .map_err(db("reading downloads"))?;
    let rows = statement
        .query_map(params![only], |r| {
            let planned = unsigned(r.get(7)?);
            let sent = unsigned(r.get(8)?);
            let finished_us: Option<i64> = r.get(9)?;
            Ok((
                r.get::<_, String>(0)?,
                Download {
                    camera: r.get(1)?,
                    agency: r.get(2)?,
                    cert_fingerprint: r.get(3)?,
                    started_us: r.get(4)?,
                    range: r.get(5)?,
                    status: u16::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    bytes_planned: planned,
                    bytes_sent: sent,
                    complete: finished_us.is_some() && sent == planned,
                    finished_us,
                },
            ))
        })
        .map_err(db("reading downloads"))?;
    for row in rows {
        let (id, download) = row.map_err(db("reading downloads"))?;
        by_request.entry(id).or_default().downloads.push(download);
    }
    let mut statement = conn
        .prepare_cached(
            "SELECT request_id, share_id, camera, agency, cert_fingerprint, started_us,
                    last_minute_us, minutes, ended_us, end_reason
             FROM live_views WHERE ?1 IS NULL OR request_id = ?1 ORDER BY started_us, share_id",
        )
        .map_err(db("reading live views"))?;
    let rows = statement
        .query_map(params![only], |r| {
            Ok((
                r.get::<_, String>(0)?,
                LiveView {
                    share: r.get(1)?,
                    camera: r.get(2)?,
                    agency: r.get(3)?,
                    cert_fingerprint: r.get(4)?,
                    started_us: r.get(5)?,
                    last_minute_us: r.get(6)?,
                    minutes: unsigned(r.get(7)?),
                    ended_us: r.get(8)?,
                    end_reason: r.get(9)?,
                },
            ))
        })
        .map_err(db("reading live views"))?;
    for row in rows {
        let (id, view) = row.map_err(db("reading live views"))?;
        by_request.entry(id).or_default().live_views.push(view);
    }
    Ok(by_request)
}
