//! `porchlight status`: one look at health, storage and sharing.
//!
//! Live figures (camera state, fps, bitrate, errors, the owner's switches,
//! pending requests) come from the running daemon's owner API at
//! `[http] bind`. When nothing answers there, the same questions are
//! answered from the data dir and config, and the output says so. Storage
//! always comes from the index (readable beside the daemon: WAL) and the
//! filesystem, so both modes forecast alike.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::time::format_utc_us;

/// Footage newer than this sets "recording at" (and so the forecast).
const RECENT_US: i64 = 3_600_000_000;

#[derive(Debug, Serialize)]
pub struct Status {
    /// "daemon" (live) or "files" (the daemon is not running).
    pub source: &'static str,
    pub daemon: Option<String>,
    pub store_ok: Option<bool>,
    pub ingest_ok: Option<bool>,
    pub cameras: Vec<CameraStatus>,
    pub storage: Storage,
    pub sharing: Sharing,
}

#[derive(Debug, Serialize)]
pub struct CameraStatus {
    pub name: String,
    pub enabled: bool,
    /// The main stream's state (live only).
    pub state: Option<String>,
    pub online: Option<bool>,
    pub fps: Option<f64>,
    pub bitrate_bps: Option<u64>,
    pub last_error: Option<String>,
    pub stored_bytes: u64,
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// Bytes per second written over the last hour of footage, all streams.
    pub recording_rate_bps: Option<u64>,
    /// Days of footage kept at that rate, and which limit sets it.
    pub forecast_days: Option<f64>,
    pub forecast_limit: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct Storage {
    pub data_dir: String,
    pub used_bytes: u64,
    pub disk_free_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub min_free_bytes: u64,
    pub oldest: Option<String>,
    /// Days the whole disk holds at the current total rate (all cameras,
    /// oldest deleted first, `min_free` kept).
    pub disk_forecast_days: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Sharing {
    pub privacy: bool,
    pub cameras: BTreeMap<String, String>,
    pub relay_listen: Option<String>,
    pub relay_url: Option<String>,
    /// Agencies whose CA is pinned (empty: not enrolled).
    pub agencies: Vec<String>,
    pub relay_problem: Option<String>,
    pub pending_requests: Option<usize>,
}

/// Gathers the status, asking the daemon first.
pub fn gather(config: &Config, now_us: i64) -> anyhow::Result<Status> {
    gather_with(config, Live::ask(config)?, now_us)
}

/// Storage and the retention forecast from the index and the filesystem
/// alone: what the daemon itself serves at `GET /api/storage` (it knows its
/// live figures already, so it does not ask itself over HTTP).
pub fn storage_forecast(config: &Config, now_us: i64) -> anyhow::Result<Status> {
    gather_with(config, None, now_us)
}

fn gather_with(config: &Config, live: Option<Live>, now_us: i64) -> anyhow::Result<Status> {
    let stored = stored_footage(&config.data_dir, now_us)
        .with_context(|| format!("cannot read the index in {}", config.data_dir.display()))?;
    let disk = crate::store::retention::disk_space(&config.data_dir).ok();
    let min_free = config.retention.min_free.0;

    let total_rate: f64 = stored.values().filter_map(|s| s.rate).sum();
    let used: u64 = stored.values().map(|s| s.bytes).sum();
    let disk_span_s = disk.as_ref().and_then(|d| {
        let room = used + d.available.saturating_sub(min_free);
        (total_rate > 0.0).then(|| room as f64 / total_rate)
    });

    let mut cameras = Vec::new();
    for camera in &config.cameras {
        let footage = stored.get(&camera.name);
        let live_camera = live.as_ref().and_then(|l| {
            l.cameras
                .as_array()?
                .iter()
                .find(|c| c["name"] == camera.name.as_str())
        });
        let rate = footage.and_then(|f| f.rate);
        let limits = &camera.retention;
        let mut bounds: Vec<(f64, &'static str)> = Vec::new();
        if let Some(age) = limits.max_age {
            bounds.push((age.0.as_secs_f64(), "max_age"));
        }
        if let (Some(max_bytes), Some(rate)) = (limits.max_bytes, rate) {
            bounds.push((max_bytes.0 as f64 / rate, "max_bytes"));
        }
        if let Some(span) = disk_span_s {
            bounds.push((span, "disk"));
        }
        let forecast = rate
            .and(bounds.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)))
            .map(|(seconds, limit)| (round1(seconds / 86_400.0), limit));
        cameras.push(CameraStatus {
            name: camera.name.clone(),
            enabled: camera.enabled,
            state: live_camera.and_then(|c| c["status"].as_str().map(str::to_string)),
            online: live_camera.and_then(|c| c["up"].as_bool()),
            fps: live_camera.and_then(|c| c["fps"].as_f64()),
            bitrate_bps: live_camera.and_then(|c| c["bitrate_bps"].as_u64()),
            last_error: live_camera.and_then(|c| c["last_error"].as_str().map(str::to_string)),
            stored_bytes: footage.map_or(0, |f| f.bytes),
            oldest: footage.map(|f| format_utc_us(f.oldest_us)),
            newest: footage.map(|f| format_utc_us(f.newest_us)),
            recording_rate_bps: rate.map(|r| (r * 8.0).round() as u64),
            forecast_days: forecast.map(|f| f.0),
            forecast_limit: forecast.map(|f| f.1),
        });
    }

    let sharing = sharing(config, live.as_ref())?;
    Ok(Status {
        source: if live.is_some() { "daemon" } else { "files" },
        daemon: live.as_ref().map(|l| l.addr.clone()),
        store_ok: live.as_ref().and_then(|l| l.health["store_ok"].as_bool()),
        ingest_ok: live.as_ref().and_then(|l| l.health["ingest_ok"].as_bool()),
        cameras,
        storage: Storage {
            data_dir: config.data_dir.display().to_string(),
            used_bytes: used,
            disk_free_bytes: disk.as_ref().map(|d| d.available),
            disk_total_bytes: disk.as_ref().map(|d| d.total),
            min_free_bytes: min_free,
            oldest: stored
                .values()
                .map(|s| s.oldest_us)
                .min()
                .map(format_utc_us),
            disk_forecast_days: disk_span_s.map(|s| round1(s / 86_400.0)),
        },
        sharing,
    })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// What the running daemon says, if one answers.
struct Live {
    addr: String,
    health: Value,
    cameras: Value,
    settings: Value,
    pending: Value,
}

impl Live {
    fn ask(config: &Config) -> anyhow::Result<Option<Live>> {
        let bind = config.http.bind;
        let get = |path: &str| -> anyhow::Result<Option<Value>> {
            match crate::owner_client::call_daemon(config, "GET", path, None)? {
                None => Ok(None),
                // /healthz answers 503 with its body while the store fails.
                Some((status, body)) if status < 300 || path == "/healthz" => Ok(Some(body)),
                Some((status, body)) => {
                    anyhow::bail!("the daemon at {bind} answered {status} to {path}: {body}")
                }
            }
        };
        let Some(health) = get("/healthz")? else {
            return Ok(None);
        };
        Ok(Some(Live {
            addr: bind.to_string(),
            health,
            cameras: get("/api/cameras")?.unwrap_or_default(),
            settings: get("/api/settings")?.unwrap_or_default(),
            pending: get("/api/requests?state=pending")?.unwrap_or_default(),
        }))
    }
}

fn sharing(config: &Config, live: Option<&Live>) -> anyhow::Result<Sharing> {
    let (privacy, cameras) = match live {
        Some(live) => (
            live.settings["privacy"].as_bool().unwrap_or(true),
            live.settings["cameras"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some((
                        c["camera"].as_str()?.to_string(),
                        c["sharing"].as_str()?.to_string(),
                    ))
                })
                .collect(),
        ),
        None => {
            let switches = crate::controls::saved_switches(config)?;
            (
                switches.privacy,
                switches
                    .cameras
                    .into_iter()
                    .map(|c| (c.camera, c.sharing.to_string()))
                    .collect(),
            )
        }
    };
    let (agencies, relay_problem) = match &config.relay.agency_ca {
        None => (Vec::new(), None),
        Some(path) => match crate::relay::enrolment::read_cas(path) {
            Ok(cas) => (cas.into_iter().map(|ca| ca.agency).collect(), None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        },
    };
    let pending_requests = match live {
        Some(live) => live.pending.as_array().map(Vec::len),
        None => pending_on_files(&config.data_dir)?,
    };
    Ok(Sharing {
        privacy,
        cameras,
        relay_listen: config.relay.listen.map(|a| a.to_string()),
        relay_url: crate::relay::enrolment::load(&config.data_dir).and_then(|e| e.relay_url),
        agencies,
        relay_problem,
        pending_requests,
    })
}

/// Pending requests from `requests.db`, read-only (`None`: no database yet).
fn pending_on_files(data_dir: &Path) -> anyhow::Result<Option<usize>> {
    let path = crate::store::paths::requests_db_path(data_dir);
    if !path.exists() {
        return Ok(None);
    }
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    let count: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM requests WHERE state = 'pending' AND expires_us > ?1",
            [crate::time::now_utc_us()],
            |r| r.get(0),
        )
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(count as usize))
}

/// One camera's footage in the index.
struct Footage {
    bytes: u64,
    oldest_us: i64,
    newest_us: i64,
    /// Bytes per second over the last hour of footage (all streams).
    rate: Option<f64>,
}

fn stored_footage(data_dir: &Path, now_us: i64) -> anyhow::Result<BTreeMap<String, Footage>> {
    if !crate::store::paths::index_path(data_dir).exists() {
        return Ok(BTreeMap::new());
    }
    let conn = crate::store::open_reader(data_dir)?;
    // Bytes and span per camera of the segments ending after `since_us`.
    let mut per_camera = conn.prepare(
        "SELECT st.camera, SUM(sg.bytes), MIN(sg.start_utc_us), MAX(sg.end_utc_us)
         FROM segments sg JOIN streams st ON st.id = sg.stream_id
         WHERE sg.end_utc_us > ?1 GROUP BY st.camera",
    )?;
    let mut spans = |since_us: i64| -> rusqlite::Result<Vec<(String, i64, i64, i64)>> {
        per_camera
            .query_map([since_us], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect()
    };
    let mut out = BTreeMap::new();
    for (camera, bytes, oldest_us, newest_us) in spans(i64::MIN)? {
        out.insert(
            camera,
            Footage {
                bytes: bytes.max(0) as u64,
                oldest_us,
                newest_us,
                rate: None,
            },
        );
    }
    for (camera, bytes, from_us, to_us) in spans(now_us - RECENT_US)? {
        let seconds = (to_us - from_us) as f64 / 1e6;
        if let (Some(footage), true) = (out.get_mut(&camera), seconds >= 1.0) {
            footage.rate = Some(bytes.max(0) as f64 / seconds);
        }
    }
    Ok(out)
}

/// Sizes as people read them (powers of 1000, like the config's "GB").
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn bits_per_second(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.1} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{:.0} kbit/s", bps as f64 / 1e3)
    }
}

/// Left-aligned columns, two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

/// The status as aligned text.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    match &status.daemon {
        Some(addr) => {
            let word = |ok: Option<bool>| match ok {
                Some(true) => "ok",
                Some(false) => "FAILING",
                None => "unknown",
            };
            out.push_str(&format!(
                "Porchlight: daemon running (owner API {addr}); store {}, ingest {}\n",
                word(status.store_ok),
                word(status.ingest_ok)
            ));
        }
        None => out.push_str(
            "Porchlight: daemon NOT running (nothing answers at [http] bind); read from the data dir\n",
        ),
    }

    out.push_str("\nCameras\n");
    if status.cameras.is_empty() {
        out.push_str("  none configured (add [[cameras]] to the config)\n");
    } else {
        let mut rows = vec![vec![
            "CAMERA".into(),
            "STATE".into(),
            "FPS".into(),
            "BITRATE".into(),
            "LAST ERROR".into(),
        ]];
        for c in &status.cameras {
            let state = if !c.enabled {
                "disabled".to_string()
            } else if status.daemon.is_none() {
                "not recording".to_string()
            } else {
                let state = or_dash(c.state.clone());
                match c.online {
                    Some(true) => format!("online ({state})"),
                    _ => format!("offline ({state})"),
                }
            };
            rows.push(vec![
                c.name.clone(),
                state,
                c.fps.map_or("-".into(), |f| format!("{f:.1}")),
                c.bitrate_bps
                    .filter(|b| *b > 0)
                    .map_or("-".into(), bits_per_second),
                or_dash(c.last_error.clone()),
            ]);
        }
        out.push_str(&table(&rows));
    }

    let s = &status.storage;
    out.push_str(&format!("\nStorage ({})\n", s.data_dir));
    out.push_str(&format!(
        "  footage {}, disk free {} of {} (keeping {} free)",
        bytes(s.used_bytes),
        s.disk_free_bytes.map_or("?".into(), bytes),
        s.disk_total_bytes.map_or("?".into(), bytes),
        bytes(s.min_free_bytes),
    ));
    match s.disk_forecast_days {
        Some(days) => out.push_str(&format!(
            "; the disk holds {days} days at the current rate\n"
        )),
        None => out.push('\n'),
    }
    if !status.cameras.is_empty() {
        let mut rows = vec![vec![
            "CAMERA".into(),
            "STORED".into(),
            "OLDEST".into(),
            "NEWEST".into(),
            "WRITING".into(),
            "KEEPS".into(),
        ]];
        for c in &status.cameras {
            rows.push(vec![
                c.name.clone(),
                bytes(c.stored_bytes),
                or_dash(c.oldest.clone()),
                or_dash(c.newest.clone()),
                c.recording_rate_bps.map_or("-".into(), bits_per_second),
                match (c.forecast_days, c.forecast_limit) {
                    (Some(days), Some(limit)) => format!("{days} days ({limit})"),
                    _ => "- (no recent footage)".into(),
                },
            ]);
        }
        out.push_str(&table(&rows));
    }

    let sh = &status.sharing;
    out.push_str("\nSharing with police\n");
    let mut rows = vec![vec![
        "privacy".to_string(),
        if sh.privacy {
            "ON: nothing is shared".into()
        } else {
            "off".into()
        },
    ]];
    for (camera, level) in &sh.cameras {
        rows.push(vec![format!("camera {camera}"), level.clone()]);
    }
    let relay = match (&sh.relay_listen, sh.agencies.is_empty(), &sh.relay_problem) {
        (_, _, Some(problem)) => format!("pinned agency CA unreadable: {problem}"),
        (None, true, None) => "off, not enrolled".into(),
        (None, false, None) => format!("off (enrolled with {})", sh.agencies.join(", ")),
        (Some(listen), true, None) => format!("listening on {listen}, not enrolled"),
        (Some(listen), false, None) => {
            format!(
                "listening on {listen}, enrolled with {}",
                sh.agencies.join(", ")
            )
        }
    };
    rows.push(vec!["relay".into(), relay]);
    if let Some(url) = &sh.relay_url {
        rows.push(vec!["relay url".into(), url.clone()]);
    }
    rows.push(vec![
        "pending requests".into(),
        sh.pending_requests
            .map_or("none (no request database yet)".into(), |n| n.to_string()),
    ]);
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_read_naturally() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(200_000_000_000), "200.0 GB");
        assert_eq!(bits_per_second(1_234_567), "1.2 Mbit/s");
        assert_eq!(bits_per_second(64_000), "64 kbit/s");
    }

    #[test]
    fn tables_align_columns() {
        let text = table(&[
            vec!["A".into(), "long value".into(), "x".into()],
            vec!["longer".into(), "b".into(), "y".into()],
        ]);
        assert_eq!(text, "  A       long value  x\n  longer  b           y\n");
    }
}
