//! Deleting old footage: per-camera byte and age limits, and the disk-wide
//! free-space reserve. Runs beside ingest and never blocks it; a writer
//! that hits a full disk asks for space and waits a bounded time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::ballast::Ballast;
use super::index::IndexWriter;
use crate::config::{Config, RetentionLimits};
use crate::health::Health;
use crate::time::now_utc_us;

/// How often limits are enforced when nobody asks.
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// How often the per-camera totals are recomputed (a query over every segment).
const USAGE_REFRESH: Duration = Duration::from_secs(30);

/// Ask the retention task to free space now (disk full).
#[derive(Clone)]
pub struct RetentionHandle {
    tx: mpsc::Sender<oneshot::Sender<u64>>,
}

impl RetentionHandle {
    /// Frees space urgently; returns the bytes deleted (0 if nothing could go).
    pub async fn free_space_now(&self) -> u64 {
        let (reply, wait) = oneshot::channel();
        if self.tx.send(reply).await.is_err() {
            return 0;
        }
        wait.await.unwrap_or(0)
    }
}

struct Candidate {
    id: i64,
    camera: String,
    start_utc_us: i64,
    end_utc_us: i64,
    bytes: u64,
}

pub struct Retention {
    data_dir: PathBuf,
    limits: BTreeMap<String, RetentionLimits>,
    min_free: u64,
    index: IndexWriter,
    ballast: Arc<Ballast>,
    health: Arc<Health>,
    usage: BTreeMap<String, (u64, i64)>,
    usage_refreshed: Option<std::time::Instant>,
    /// Per camera, bytes_written_total when `usage` was read.
    written_at_refresh: BTreeMap<String, u64>,
}

impl Retention {
    pub fn new(
        config: &Config,
        index: IndexWriter,
        ballast: Arc<Ballast>,
        health: Arc<Health>,
    ) -> Retention {
        Retention {
            data_dir: config.data_dir.clone(),
            limits: config
                .cameras
                .iter()
                .map(|c| (c.name.clone(), c.retention))
                .collect(),
            min_free: config.retention.min_free.0,
            index,
            ballast,
            health,
            usage: BTreeMap::new(),
            usage_refreshed: None,
            written_at_refresh: BTreeMap::new(),
        }
    }

    /// Spawns the sweep loop; returns the handle writers use on a full disk.
    pub fn spawn(mut self) -> RetentionHandle {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<u64>>(64);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let urgent = tokio::select! {
                    _ = ticker.tick() => None,
                    request = rx.recv() => match request {
                        Some(reply) => Some(reply),
                        None => return,
                    },
                };
                let mut replies: Vec<oneshot::Sender<u64>> = urgent.into_iter().collect();
                while let Ok(more) = rx.try_recv() {
                    replies.push(more);
                }
                let freed = match self.sweep(!replies.is_empty()).await {
                    Ok(freed) => freed,
                    Err(e) => {
                        tracing::warn!(error = %e, "retention sweep failed");
                        0
                    }
                };
                for reply in replies {
                    let _ = reply.send(freed);
                }
            }
        });
        RetentionHandle { tx }
    }

    /// Bytes written so far per camera, from the writers' counters.
    fn bytes_written(&self) -> BTreeMap<String, u64> {
        self.health
            .cameras
            .iter()
            .map(|(name, cam)| {
                let total = cam
                    .streams
                    .iter()
                    .map(|s| s.bytes_written_total.load(Ordering::Relaxed))
                    .sum();
                (name.clone(), total)
            })
            .collect()
    }

    /// One pass: refresh figures, pick what must go, delete it. Cheap when
    /// nothing is due: a statvfs, and the per-camera totals every 30 s.
    async fn sweep(&mut self, urgent: bool) -> anyhow::Result<u64> {
        let data_dir = self.data_dir.clone();
        let refresh_usage = urgent
            || self
                .usage_refreshed
                .is_none_or(|at| at.elapsed() >= USAGE_REFRESH);
        let (usage, disk) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let usage = if refresh_usage {
                Some(usage_by_camera(&super::open_reader(&data_dir)?)?)
            } else {
                None
            };
            Ok((usage, disk_space(&data_dir)?))
        })
        .await??;
        if let Some(usage) = usage {
            self.usage = usage;
            self.usage_refreshed = Some(std::time::Instant::now());
            self.written_at_refresh = self.bytes_written();
        }
        // Between refreshes, add what the writers wrote since: the limits
        // stay exact without re-reading the whole index.
        let written_now = self.bytes_written();
        let mut current = self.usage.clone();
        for (camera, written) in &written_now {
            let since =
                written.saturating_sub(self.written_at_refresh.get(camera).copied().unwrap_or(0));
            // A camera with no footage yet has no oldest time.
            current.entry(camera.clone()).or_insert((0, i64::MAX)).0 += since;
        }
        let usage = &current;

        self.health
            .disk_free_bytes
            .store(disk.available, Ordering::Relaxed);
        for (name, cam) in &self.health.cameras {
            let (bytes, oldest) = usage.get(name).copied().unwrap_or((0, 0));
            let oldest = if oldest == i64::MAX { 0 } else { oldest };
            cam.storage_bytes.store(bytes, Ordering::Relaxed);
            cam.oldest_recording_utc_us.store(oldest, Ordering::Relaxed);
        }

        // Lay the ballast down again once there is room to spare.
        if !self.ballast.is_present() && disk.available > self.min_free + 2 * self.ballast.size() {
            let ballast = self.ballast.clone();
            let _ = tokio::task::spawn_blocking(move || ballast.lay_down()).await;
        }
        let urgent = urgent || !self.ballast.is_present();
        let now = now_utc_us();
        let due = cameras_due(usage, &self.limits, now);
        let disk_short = urgent || disk.available < self.min_free;
        if due.is_empty() && !disk_short {
            return Ok(0);
        }
        let data_dir = self.data_dir.clone();
        let candidates = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Candidate>> {
            let conn = super::open_reader(&data_dir)?;
            let mut candidates = Vec::new();
            for camera in &due {
                candidates.extend(closed_segments(&conn, Some(camera))?);
            }
            if disk_short {
                candidates.extend(closed_segments(&conn, None)?);
            }
            candidates.sort_by_key(|c| (c.start_utc_us, c.id));
            candidates.dedup_by_key(|c| c.id);
            Ok(candidates)
        })
        .await??;
        let doomed = choose_deletions(
            &candidates,
            usage,
            &self.limits,
            self.min_free,
            disk,
            urgent,
            now,
        );
        if doomed.is_empty() {
            return Ok(0);
        }
        let deleted = self.index.delete_segments(doomed).await?;
        let data_dir = self.data_dir.clone();
        let count = deleted.len() as u64;
        let (freed, names) =
            tokio::task::spawn_blocking(move || unlink_all(&data_dir, &deleted)).await?;
        self.index.forget_garbage(names)?;
        // Until the next full refresh, account for what just went.
        self.usage_refreshed = None;
        self.health
            .retention_deleted_bytes_total
            .fetch_add(freed, Ordering::Relaxed);
        self.health
            .retention_deleted_segments_total
            .fetch_add(count, Ordering::Relaxed);
        tracing::debug!(freed, "retention deleted old footage");
        Ok(freed)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct DiskSpace {
    pub available: u64,
    pub total: u64,
}

/// statvfs of the data dir's filesystem.
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid out-pointer.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = stat.f_frsize as u64;
    Ok(DiskSpace {
        available: stat.f_bavail as u64 * block,
        total: stat.f_blocks as u64 * block,
    })
}

/// Bytes and oldest start per camera.
fn usage_by_camera(conn: &Connection) -> rusqlite::Result<BTreeMap<String, (u64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT st.camera, SUM(sg.bytes), MIN(sg.start_utc_us)
         FROM segments sg JOIN streams st ON st.id = sg.stream_id GROUP BY st.camera",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)?.max(0) as u64, r.get::<_, i64>(2)?),
        ))
    })?;
    rows.collect()
}

/// The oldest closed segments (of one camera, or of all): the only ones
/// retention may delete. Bounded, so a sweep costs the same at any age.
fn closed_segments(conn: &Connection, camera: Option<&str>) -> rusqlite::Result<Vec<Candidate>> {
    let mut stmt = conn.prepare(
        "SELECT sg.id, st.camera, sg.start_utc_us, sg.end_utc_us, sg.bytes
         FROM segments sg JOIN streams st ON st.id = sg.stream_id
         WHERE sg.open = 0 AND (?1 IS NULL OR st.camera = ?1)
         ORDER BY sg.start_utc_us LIMIT 2000",
    )?;
    let rows = stmt.query_map([camera], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            camera: r.get(1)?,
            start_utc_us: r.get(2)?,
            end_utc_us: r.get(3)?,
            bytes: r.get::<_, i64>(4)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

/// Cameras over their byte or age limit, judged from the totals alone.
fn cameras_due(
    usage: &BTreeMap<String, (u64, i64)>,
    limits: &BTreeMap<String, RetentionLimits>,
    now_us: i64,
) -> Vec<String> {
    limits
        .iter()
        .filter(|(camera, limit)| {
            let Some(&(bytes, oldest)) = usage.get(*camera) else {
                return false;
            };
            limit.max_bytes.is_some_and(|max| bytes > max.0)
                || limit
                    .max_age
                    .is_some_and(|age| oldest < now_us - age.0.as_micros() as i64)
        })
        .map(|(camera, _)| camera.clone())
        .collect()
}

/// The retention policy, pure so it can be tested without a disk.
fn choose_deletions(
    candidates: &[Candidate],
    usage: &BTreeMap<String, (u64, i64)>,
    limits: &BTreeMap<String, RetentionLimits>,
    min_free: u64,
    disk: DiskSpace,
    urgent: bool,
    now_us: i64,
) -> Vec<i64> {
    let mut doomed = std::collections::BTreeSet::new();
    // Per camera: too old, then too big (oldest first).
    for (camera, limit) in limits {
        let mut used = usage.get(camera).map(|u| u.0).unwrap_or(0);
        for c in candidates.iter().filter(|c| &c.camera == camera) {
            let too_old = limit
                .max_age
                .is_some_and(|age| c.end_utc_us < now_us - age.0.as_micros() as i64);
            let too_big = limit.max_bytes.is_some_and(|max| used > max.0);
            if too_old || too_big {
                doomed.insert(c.id);
                used = used.saturating_sub(c.bytes);
            } else {
                break;
            }
        }
    }
    // Disk-wide reserve: oldest footage of any camera goes first. When a
    // writer just hit a full disk, free at least a little more than nothing.
    let mut shortfall = min_free.saturating_sub(disk.available);
    if urgent {
        shortfall = shortfall.max((disk.total / 100).max(8 << 20));
    }
    let already: u64 = candidates
        .iter()
        .filter(|c| doomed.contains(&c.id))
        .map(|c| c.bytes)
        .sum();
    shortfall = shortfall.saturating_sub(already);
    let mut by_age: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !doomed.contains(&c.id))
        .collect();
    by_age.sort_by_key(|c| c.start_utc_us);
    for c in by_age {
        if shortfall == 0 {
            break;
        }
        doomed.insert(c.id);
        shortfall = shortfall.saturating_sub(c.bytes);
    }
    doomed.into_iter().collect()
}

fn unlink_all(data_dir: &Path, deleted: &[super::index::DeletedSegment]) -> (u64, Vec<String>) {
    let mut freed = 0;
    let mut names = Vec::with_capacity(deleted.len());
    let mut dirs = std::collections::BTreeSet::new();
    for segment in deleted {
        let path = data_dir.join(&segment.file_name);
        match std::fs::remove_file(&path) {
            Ok(()) => freed += segment.bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot delete old segment; will retry at start-up");
                continue;
            }
        }
        if let Some(dir) = path.parent() {
            dirs.insert(dir.to_path_buf());
        }
        names.push(segment.file_name.clone());
    }
    for dir in dirs {
        let _ = super::segment_file::sync_dir(&dir);
    }
    (freed, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{ByteSize, HumanDuration};

    fn seg(id: i64, camera: &str, start_s: i64, bytes: u64) -> Candidate {
        Candidate {
            id,
            camera: camera.into(),
            start_utc_us: start_s * 1_000_000,
            end_utc_us: (start_s + 60) * 1_000_000,
            bytes,
        }
    }

    fn usage(c: &[Candidate]) -> BTreeMap<String, (u64, i64)> {
        let mut map = BTreeMap::new();
        for s in c {
            let e = map.entry(s.camera.clone()).or_insert((0, i64::MAX));
            e.0 += s.bytes;
            e.1 = e.1.min(s.start_utc_us);
        }
        map
    }

    const ROOMY: DiskSpace = DiskSpace {
        available: 1 << 40,
        total: 1 << 41,
    };

    #[test]
    fn oldest_segments_go_first_when_over_bytes() {
        let c = vec![
            seg(1, "a", 0, 100),
            seg(2, "a", 60, 100),
            seg(3, "a", 120, 100),
            seg(4, "b", 0, 100),
        ];
        let limits = BTreeMap::from([
            (
                "a".to_string(),
                RetentionLimits {
                    max_bytes: Some(ByteSize(150)),
                    max_age: None,
                },
            ),
            (
                "b".to_string(),
                RetentionLimits {
                    max_bytes: None,
                    max_age: None,
                },
            ),
        ]);
        assert_eq!(
            choose_deletions(&c, &usage(&c), &limits, 0, ROOMY, false, 1_000_000_000),
            vec![1, 2]
        );
    }

    #[test]
    fn segments_past_max_age_go() {
        let c = vec![seg(1, "a", 0, 100), seg(2, "a", 1000, 100)];
        let limits = BTreeMap::from([(
            "a".to_string(),
            RetentionLimits {
                max_bytes: None,
                max_age: Some(HumanDuration(Duration::from_secs(500))),
            },
        )]);
        assert_eq!(
            choose_deletions(&c, &usage(&c), &limits, 0, ROOMY, false, 1200 * 1_000_000),
            vec![1]
        );
    }

    #[test]
    fn free_space_reserve_deletes_across_cameras_oldest_first() {
        let c = vec![
            seg(1, "a", 10, 100),
            seg(2, "b", 0, 100),
            seg(3, "a", 70, 100),
        ];
        let limits = BTreeMap::new();
        let disk = DiskSpace {
            available: 50,
            total: 1000,
        };
        assert_eq!(
            choose_deletions(&c, &usage(&c), &limits, 200, disk, false, 0),
            vec![1, 2]
        );
    }

    #[test]
    fn only_cameras_over_a_limit_are_due() {
        let usage = BTreeMap::from([
            ("big".to_string(), (2000, 500_000_000)),
            ("old".to_string(), (10, 0)),
            ("fine".to_string(), (10, 500_000_000)),
        ]);
        let limit = RetentionLimits {
            max_bytes: Some(ByteSize(1000)),
            max_age: Some(HumanDuration(Duration::from_secs(100))),
        };
        let limits = BTreeMap::from([
            ("big".to_string(), limit),
            ("old".to_string(), limit),
            ("fine".to_string(), limit),
        ]);
        assert_eq!(
            cameras_due(&usage, &limits, 550_000_000),
            vec!["big".to_string(), "old".to_string()]
        );
    }

    #[test]
    fn nothing_goes_when_within_limits() {
        let c = vec![seg(1, "a", 0, 100)];
        let limits = BTreeMap::from([(
            "a".to_string(),
            RetentionLimits {
                max_bytes: Some(ByteSize(1000)),
                max_age: None,
            },
        )]);
        assert!(choose_deletions(&c, &usage(&c), &limits, 10, ROOMY, false, 0).is_empty());
    }
}
