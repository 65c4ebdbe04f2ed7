//! The footage disk is small and fills up. Porchlight deletes the oldest
//! footage and keeps recording the newest; it never panics or stops.
//! Runs on a real tmpfs mounted for the test (needs root, as CI has).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use porchlight_simcam::Clip;
use support::{index, porchlight, segment_files, wait_until, wait_until_or_explain, Daemon};

/// A tmpfs of `megabytes`, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).expect("mkdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a {megabytes} MB tmpfs failed: this test needs root (scripts/test.sh runs as root in CI)");
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn newest_end_us(data: &Path) -> i64 {
    index(data)
        .query_row(
            "SELECT COALESCE(MAX(start_utc_us + duration_us), 0) FROM fragments",
            [],
            |r| r.get(0),
        )
        .expect("newest")
}

fn oldest_start_us(data: &Path) -> i64 {
    index(data)
        .query_row(
            "SELECT COALESCE(MIN(start_utc_us), 0) FROM segments",
            [],
            |r| r.get(0),
        )
        .expect("oldest")
}

async fn fill_disk(min_free: &str) {
    let disk = SmallDisk::mount(24);
    let data = disk.path.join("data");
    let run_dir = tempfile::tempdir().expect("tempdir");
    let cam = support::simcam(Clip::Hd, true).await;
    // Two ~4 Mbit/s cameras: about 1 MB/s into a 24 MB disk.
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"{min_free}\"\n[storage]\nsegment_duration = \"2s\"\n\
         [[cameras]]\nname = \"a\"\nurl = \"{}\"\n[[cameras]]\nname = \"b\"\nurl = \"{}\"\n",
        data.display(),
        cam.url("a"),
        cam.url("b")
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(run_dir.path(), &text));
    let started = porchlight::time::now_utc_us();

    // Record well past the point where the disk would be full.
    tokio::task::block_in_place(|| {
        wait_until_or_explain(
            Duration::from_secs(90),
            "retention to delete old footage",
            || daemon.metric("porchlight_retention_deleted_bytes_total", &[]) > 30_000_000.0,
            || {
                let figures: Vec<String> = daemon
                    .metrics()
                    .lines()
                    .filter(|l| {
                        l.starts_with("porchlight_retention")
                            || l.starts_with("porchlight_disk")
                            || l.starts_with("porchlight_fragments")
                            || l.starts_with("porchlight_bytes_written")
                    })
                    .map(str::to_string)
                    .collect();
                format!(
                    "figures:\n{}\ndisk: {:?}\nlog tail:\n{}",
                    figures.join("\n"),
                    porchlight::store::retention::disk_space(&data),
                    support::tail(&daemon.log(), 80)
                )
            },
        )
    });
    assert!(daemon.child.id() > 0);
    let now = porchlight::time::now_utc_us();
    let newest = newest_end_us(&data);
    assert!(
        now - newest < 4_000_000,
        "still recording the newest footage (newest ends {} ms ago)",
        (now - newest) / 1000
    );
    assert!(
        oldest_start_us(&data) > started,
        "the oldest footage was deleted"
    );
    for camera in ["a", "b"] {
        assert_eq!(
            daemon.metric("porchlight_camera_up", &[("camera", camera)]),
            1.0,
            "camera {camera} still up"
        );
    }
    let (status, _) = support::http_get(daemon.http, "/healthz").expect("healthz");
    assert_eq!(status, 200);
    eprintln!(
        "dropped fragments: a={} b={}",
        daemon.metric(
            "porchlight_fragments_dropped_total",
            &[("camera", "a"), ("stream", "main")]
        ),
        daemon.metric(
            "porchlight_fragments_dropped_total",
            &[("camera", "b"), ("stream", "main")]
        )
    );

    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(!log.contains("panicked"), "{log}");
    // Footage leaves the index its headroom: deleting old footage never
    // found the disk too full to commit.
    assert!(
        !log.contains("index commit failed") && !log.contains("released the ballast"),
        "the index ran out of room to commit:\n{}",
        support::tail(&log, 40)
    );
    cam.shutdown().await;

    let config = run_dir.path().join("config.toml");
    let (code, stdout, stderr) =
        porchlight(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(
        code, 0,
        "index consistent after filling the disk:\n{stdout}\n{stderr}"
    );
    assert!(!segment_files(&data).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_free_space_reserve_keeps_the_disk_from_filling() {
    fill_disk("6MB").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_filled_by_footage_deletes_old_footage_and_keeps_recording() {
    // No reserve: footage fills the disk up to the index's headroom, writes
    // are refused as ENOSPC and the writer asks retention for room.
    fill_disk("0").await;
}

/// Fills whatever room there is on `disk` with `file` (keeps writing while
/// retention frees space, for `for_how_long`); returns the bytes it holds
/// and how many writes the full disk refused.
fn take_all_space(file: &Path, for_how_long: Duration) -> (u64, u32) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("filler file");
    let chunk = vec![0x5a_u8; 64 * 1024];
    let until = std::time::Instant::now() + for_how_long;
    let mut refused = 0;
    while std::time::Instant::now() < until {
        if f.write_all(&chunk).is_err() {
            refused += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = f.sync_all();
    let held = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    (held, refused)
}

/// Something else takes every byte of the footage disk (a runaway log, a
/// copy the owner made): Porchlight cannot write, stays up without a panic,
/// and records again, newest footage first, as soon as space returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_comes_back_when_space_returns() {
    let hold = Duration::from_secs(support::soak::scaled(5, 60));
    let disk = SmallDisk::mount(24);
    let data = disk.path.join("data");
    let run_dir = tempfile::tempdir().expect("tempdir");
    let cam = support::simcam(Clip::Hd, true).await;
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"2MB\"\n[storage]\nsegment_duration = \"2s\"\n\
         [[cameras]]\nname = \"a\"\nurl = \"{}\"\n",
        data.display(),
        cam.url("a"),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(run_dir.path(), &text));
    let frames = || {
        daemon.metric(
            "porchlight_frames_total",
            &[("camera", "a"), ("stream", "main")],
        )
    };
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), "recording", || frames() >= 90.0)
    });

    // The disk is taken: first while retention still frees what it can,
    // then held full.
    let filler = disk.path.join("someone-elses-file");
    let (taken, refused_writes) = tokio::task::block_in_place(|| take_all_space(&filler, hold));
    assert!(refused_writes > 0, "the disk was really full");
    // Answering at all shows the daemon is still up.
    let (status, _) = support::http_get(daemon.http, "/healthz").expect("healthz while full");
    assert!(status == 200 || status == 503, "healthz: {status}");
    let log = daemon.log();
    assert!(!log.contains("panicked"), "{log}");

    // Space returns.
    std::fs::remove_file(&filler).expect("free the space");
    let freed_at = porchlight::time::now_utc_us();
    let mut recovered_us = 0;
    tokio::task::block_in_place(|| {
        wait_until(
            Duration::from_secs(30),
            "recording again after space returned",
            || {
                let newest = newest_end_us(&data);
                recovered_us = newest - freed_at;
                newest > freed_at + 1_000_000
            },
        )
    });
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(10), "the camera up", || {
            daemon.metric("porchlight_camera_up", &[("camera", "a")]) == 1.0
        })
    });
    let now = porchlight::time::now_utc_us();
    assert!(
        now - newest_end_us(&data) < 4_000_000,
        "recording the newest footage"
    );

    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(!log.contains("panicked"), "{log}");
    cam.shutdown().await;
    let config = run_dir.path().join("config.toml");
    let (code, stdout, stderr) =
        porchlight(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(
        code, 0,
        "index consistent after the disk was full:\n{stdout}\n{stderr}"
    );

    let check = "disk full";
    support::soak::figure(check, "bytes taken by another file", taken);
    support::soak::figure(check, "seconds held full", hold.as_secs());
    support::soak::figure(
        check,
        "ms from space returning to footage stored after it",
        recovered_us / 1000,
    );
}
