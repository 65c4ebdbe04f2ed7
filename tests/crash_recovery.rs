//! The power goes out (or the daemon is killed) while four cameras record.
//! After a restart the index agrees with the disk, `porchlight check` is
//! clean, and at most one fragment per camera was lost.

mod support;

use std::time::Duration;

use porchlight_simcam::Clip;
use support::{index, porchlight, segment_files, wait_until, Daemon};

const CAMERAS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_at_most_one_fragment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = support::simcam(Clip::Sd, true).await;
    let mut text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[storage]\nsegment_duration = \"3s\"\n",
        data.display()
    );
    for i in 0..CAMERAS {
        text.push_str(&format!(
            "[[cameras]]\nname = \"cam{i}\"\nurl = \"{}\"\n",
            cam.url(&format!("cam{i}"))
        ));
    }

    let mut daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    for round in 0..3 {
        // Record for a while (several segments, one left open), then crash.
        tokio::task::block_in_place(|| {
            wait_until(Duration::from_secs(30), "all cameras recording", || {
                (0..CAMERAS).all(|i| {
                    daemon.metric(
                        "porchlight_frames_total",
                        &[("camera", &format!("cam{i}")), ("stream", "main")],
                    ) >= 150.0
                })
            })
        });
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        let killed_at_us = porchlight::time::now_utc_us();
        let (config_path, http) = (daemon.config_path.clone(), daemon.http);
        let log = daemon.kill9();
        assert!(!log.contains("panicked"), "{log}");

        // Every camera's footage reaches to within one fragment (1 s GOP)
        // plus the time a frame spends in flight, of the kill.
        daemon = tokio::task::block_in_place(|| Daemon::start_with(config_path, http, dir.path()));
        let conn = index(&data);
        for i in 0..CAMERAS {
            let last_end: i64 = conn
                .query_row(
                    "SELECT MAX(f.start_utc_us + f.duration_us) FROM fragments f
                     JOIN segments s ON s.id = f.segment_id JOIN streams st ON st.id = s.stream_id
                     WHERE st.camera = ? AND f.start_utc_us < ?",
                    rusqlite::params![format!("cam{i}"), killed_at_us],
                    |r| r.get(0),
                )
                .expect("last fragment");
            let lost_us = killed_at_us - last_end;
            eprintln!("round {round} cam{i}: footage ends {lost_us} µs before the kill");
            assert!(
                lost_us <= 1_000_000 + 300_000,
                "cam{i} lost {lost_us} µs: more than one fragment"
            );
        }
        // Nothing left open from the crashed run (recovery closed it).
        let open_before: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM segments WHERE open = 1 AND start_utc_us < ?",
                [killed_at_us - 5_000_000],
                |r| r.get(0),
            )
            .expect("open count");
        assert_eq!(
            open_before, 0,
            "recovery must close segments left open by the crash"
        );
    }
    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(
        log.contains("repaired at start-up"),
        "recovery should have had work to do:\n{log}"
    );

    let config = dir.path().join("config.toml");
    let (code, stdout, stderr) =
        porchlight(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(
        code, 0,
        "check must be clean after recovery:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("clean"), "{stdout}");
    assert!(segment_files(&data).len() >= CAMERAS * 3);
    cam.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_and_repairs_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = support::simcam(Clip::Sd, false).await;
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[storage]\nsegment_duration = \"2s\"\n[[cameras]]\nname = \"c\"\nurl = \"{}\"\n",
        data.display(),
        cam.url("c")
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(40), "a few segments", || {
            segment_files(&data).len() >= 6
        })
    });
    tokio::task::block_in_place(|| daemon.stop());
    cam.shutdown().await;
    let config = dir.path().join("config.toml");
    let config = config.to_str().expect("utf-8");

    let (code, stdout, _) = porchlight(&["check", "--config", config]);
    assert_eq!(code, 0, "{stdout}");

    // Damage: a half-written tail, a missing file, an orphan.
    let files = segment_files(&data);
    assert!(files.len() >= 6, "segments after stop: {files:?}\n{stdout}");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&files[0])
            .expect("open");
        f.write_all(b"\0\0\x01\0moofgarbage").expect("append");
    }
    std::fs::remove_file(&files[1]).expect("remove");
    let orphan = files[4].with_file_name("9999999999-orphan.mp4");
    std::fs::copy(&files[4], &orphan).expect("copy");
    let truncated_len = std::fs::metadata(&files[3]).expect("meta").len() - 100;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[3])
        .expect("open")
        .set_len(truncated_len)
        .expect("truncate");

    let (code, stdout, _) = porchlight(&["check", "--config", config]);
    assert_eq!(code, 1, "damage must be reported:\n{stdout}");
    for expected in [
        "partial tail",
        "missing file",
        "orphan file",
        "truncated file",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` not reported:\n{stdout}"
        );
    }

    let (code, stdout, _) = porchlight(&["check", "--config", config, "--repair"]);
    assert_eq!(code, 0, "{stdout}");
    let (code, stdout, _) = porchlight(&["check", "--config", config]);
    assert_eq!(code, 0, "clean after repair:\n{stdout}");
    assert!(stdout.contains("clean"), "{stdout}");
    assert!(!orphan.exists());
    // The truncated segment (two fragments; the second cut short) keeps its
    // whole fragment and still plays.
    let probe = support::ffprobe(&files[3]);
    assert!(probe.video_frames > 0);
}

#[test]
fn check_refuses_to_run_beside_the_daemon() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n",
        data.display()
    );
    let _guard = rt.enter();
    let daemon = Daemon::start(dir.path(), &text);
    let (code, _, stderr) = porchlight(&[
        "check",
        "--config",
        daemon.config_path.to_str().expect("utf-8"),
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("daemon running") || stderr.contains("another Porchlight"),
        "{stderr}"
    );
    daemon.stop();
}

/// Footage of `camera` from before `killed_at_us`: how long before the kill
/// it ends (µs) and the camera's stored byte rate (bytes per µs), to put a
/// byte figure on the loss.
fn footage_before_kill(data: &std::path::Path, camera: &str, killed_at_us: i64) -> (i64, f64) {
    let (last_end, bytes, duration): (i64, i64, i64) = index(data)
        .query_row(
            "SELECT MAX(f.start_utc_us + f.duration_us), SUM(f.length), SUM(f.duration_us)
             FROM fragments f
             JOIN segments s ON s.id = f.segment_id JOIN streams st ON st.id = s.stream_id
             WHERE st.camera = ? AND f.start_utc_us < ?",
            rusqlite::params![camera, killed_at_us],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("footage before the kill");
    (
        killed_at_us - last_end,
        bytes as f64 / duration.max(1) as f64,
    )
}

/// The kill test: eight cameras, the daemon killed at random
/// moments a few seconds apart (5 kills in CI; about 5 minutes of kills
/// with `PORCHLIGHT_RELIABILITY=long`). After every kill the restarted
/// daemon's recovery leaves an index that `porchlight check` finds clean,
/// and no camera lost more than one fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_every_few_seconds_while_eight_cameras_record() {
    const CAMERAS: usize = 8;
    let kills = support::soak::scaled(5, 60);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = support::simcam(Clip::Sd, true).await;
    let mut text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[storage]\nsegment_duration = \"3s\"\n",
        data.display()
    );
    for i in 0..CAMERAS {
        text.push_str(&format!(
            "[[cameras]]\nname = \"cam{i}\"\nurl = \"{}\"\n",
            cam.url(&format!("cam{i}"))
        ));
    }
    let config = dir.path().join("config.toml");
    let config_arg = config.to_str().expect("utf-8").to_string();

    let mut daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    let (mut worst_us, mut total_us, mut total_bytes, mut samples) = (0i64, 0i64, 0f64, 0u32);
    for kill in 0..kills {
        // Every camera is storing fragments again, then a random moment.
        tokio::task::block_in_place(|| {
            wait_until(Duration::from_secs(30), "all cameras recording", || {
                (0..CAMERAS).all(|i| {
                    daemon.metric(
                        "porchlight_frames_total",
                        &[("camera", &format!("cam{i}")), ("stream", "main")],
                    ) >= 30.0
                })
            })
        });
        let pause =
            support::soak::random_between(Duration::from_millis(200), Duration::from_secs(3));
        tokio::time::sleep(pause).await;
        let killed_at_us = porchlight::time::now_utc_us();
        let (config_path, http) = (daemon.config_path.clone(), daemon.http);
        let log = daemon.kill9();
        assert!(!log.contains("panicked"), "kill {kill}: {log}");

        // Recovery at start; then a clean stop so `check` may look.
        let restarted = tokio::task::block_in_place(|| {
            Daemon::start_with(config_path.clone(), http, dir.path())
        });
        for i in 0..CAMERAS {
            let camera = format!("cam{i}");
            let (lost_us, bytes_per_us) = footage_before_kill(&data, &camera, killed_at_us);
            assert!(
                lost_us <= 1_000_000 + 300_000,
                "kill {kill}: {camera} lost {lost_us} µs: more than one fragment"
            );
            worst_us = worst_us.max(lost_us);
            total_us += lost_us;
            total_bytes += lost_us.max(0) as f64 * bytes_per_us;
            samples += 1;
        }
        let log = tokio::task::block_in_place(|| restarted.stop());
        assert!(!log.contains("panicked"), "kill {kill}: {log}");
        let (code, stdout, stderr) = porchlight(&["check", "--config", &config_arg]);
        assert_eq!(
            code, 0,
            "kill {kill}: check must be clean after recovery:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("clean"), "{stdout}");
        daemon = tokio::task::block_in_place(|| Daemon::start_with(config_path, http, dir.path()));
    }
    tokio::task::block_in_place(|| daemon.stop());
    cam.shutdown().await;

    let check = "kill -9 (8 cameras)";
    support::soak::figure(check, "kills survived", kills);
    support::soak::figure(check, "max µs lost per camera per kill", worst_us);
    support::soak::figure(
        check,
        "mean µs lost per camera per kill",
        total_us / i64::from(samples.max(1)),
    );
    support::soak::figure(
        check,
        "mean bytes lost per camera per kill",
        (total_bytes / f64::from(samples.max(1))).round(),
    );
}
