//! A self-hoster points Porchlight at a camera and it records: over TCP and
//! UDP, with Basic or Digest logins; a wrong password is reported clearly;
//! what lands on disk is exactly what the camera sent, and plays.

mod support;

use std::time::Duration;

use porchlight_simcam::{Auth, AuthScheme, Clip, SimCam, SimCamConfig};
use support::{decode_errors, ffprobe, index, segment_files, wait_until, Daemon};

fn config(data_dir: &std::path::Path, cameras: &str) -> String {
    format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[storage]\nsegment_duration = \"4s\"\n{cameras}",
        data_dir.display()
    )
}

async fn simcam(auth: Option<Auth>) -> SimCam {
    SimCam::start(SimCamConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        clip: Clip::Sd,
        audio: true,
        auth,
    })
    .await
    .expect("simcam")
}

/// Records until `frames` frames are stored, then stops the camera first (so
/// the daemon flushes everything it received) and returns the daemon.
async fn record_then_stop_camera(daemon: &Daemon, cam: SimCam, camera: &str, frames: f64) -> u64 {
    let labels = [("camera", camera), ("stream", "main")];
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(40), "frames to be stored", || {
            daemon.metric("porchlight_frames_total", &labels) >= frames
        });
    });
    let path = format!("/{camera}");
    let sent = cam.frames_sent(&path).max(cam.frames_sent(camera));
    cam.shutdown().await;
    // The camera is gone; the daemon flushes its last GOP.
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(15), "the last GOP to be stored", || {
            daemon.metric("porchlight_frames_total", &labels) as u64 >= sent
        });
    });
    sent
}

fn assert_footage_matches(
    data_dir: &std::path::Path,
    stored_frames: u64,
    expect_audio: Option<&str>,
) {
    let files = segment_files(data_dir);
    assert!(files.len() >= 2, "expected several segments, got {files:?}");
    let mut probed = 0;
    for file in &files {
        let probe = ffprobe(file);
        assert_eq!(probe.video_codec, "h264", "{}", file.display());
        assert_eq!((probe.width, probe.height), (640, 360));
        assert_eq!(
            probe.audio_codec.as_deref(),
            expect_audio,
            "{}",
            file.display()
        );
        let errors = decode_errors(file);
        assert!(
            errors.is_empty(),
            "decode errors in {}: {errors}",
            file.display()
        );
        // 30 fps from the camera: the stored durations say the same.
        let expected = probe.video_frames as f64 / 30.0;
        assert!(
            (probe.video_duration - expected).abs() < 0.05,
            "{}: {} frames last {} s, expected {expected} s",
            file.display(),
            probe.video_frames,
            probe.video_duration
        );
        probed += probe.video_frames;
    }
    assert_eq!(
        probed, stored_frames,
        "ffprobe counts every frame the daemon says it stored"
    );
    let indexed: i64 = index(data_dir)
        .query_row("SELECT SUM(frames) FROM fragments", [], |r| r.get(0))
        .expect("sum frames");
    assert_eq!(indexed as u64, stored_frames, "index agrees with the files");
    // Fragments are contiguous in time: no gap between consecutive ones beyond a frame.
    let conn = index(data_dir);
    let mut stmt = conn
        .prepare("SELECT start_utc_us, duration_us FROM fragments ORDER BY start_utc_us")
        .expect("query");
    let rows: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    for pair in rows.windows(2) {
        let gap = pair[1].0 - (pair[0].0 + pair[0].1);
        assert!(gap.abs() < 40_000, "fragments should abut, gap {gap} µs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_tcp_every_frame_the_camera_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = simcam(None).await;
    let text = config(
        &data,
        &format!(
            "[[cameras]]\nname = \"porch\"\nurl = \"{}\"\n",
            cam.url("porch")
        ),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));

    let sent = record_then_stop_camera(&daemon, cam, "porch", 300.0).await;
    let stored = daemon.metric(
        "porchlight_frames_total",
        &[("camera", "porch"), ("stream", "main")],
    ) as u64;
    assert_eq!(stored, sent, "TCP: every frame sent is stored");
    assert!(
        daemon.metric(
            "porchlight_bytes_written_total",
            &[("camera", "porch"), ("stream", "main")]
        ) > 100_000.0
    );

    let cameras = daemon.cameras();
    assert_eq!(cameras[0]["name"], "porch");
    assert_eq!(
        cameras[0]["codec"].as_str().map(|c| c.starts_with("avc1")),
        Some(true)
    );
    assert_eq!(cameras[0]["resolution"], "640x360");

    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(!log.contains("panicked"), "{log}");
    assert_footage_matches(&data, stored, Some("aac"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_over_udp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = simcam(None).await;
    let text = config(
        &data,
        &format!(
            "[[cameras]]\nname = \"yard\"\nurl = \"{}\"\ntransport = \"udp\"\n",
            cam.url("yard")
        ),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    let sent = record_then_stop_camera(&daemon, cam, "yard", 200.0).await;
    let stored = daemon.metric(
        "porchlight_frames_total",
        &[("camera", "yard"), ("stream", "main")],
    ) as u64;
    // Loopback UDP does not lose packets in practice; allow a frame or two.
    assert!(
        stored + 2 >= sent && stored <= sent,
        "stored {stored} of {sent}"
    );
    tokio::task::block_in_place(|| daemon.stop());
    assert_footage_matches(&data, stored, Some("aac"));
}

async fn records_with_login(scheme: AuthScheme) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = simcam(Some(Auth {
        username: "admin".into(),
        password: "correct horse".into(),
        scheme,
    }))
    .await;
    let text = config(
        &data,
        &format!(
            "[[cameras]]\nname = \"door\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"correct horse\"\n",
            cam.url("door")
        ),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), "recording with a login", || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "door"), ("stream", "main")],
            ) >= 60.0
        })
    });
    assert_eq!(
        daemon.metric("porchlight_camera_up", &[("camera", "door")]),
        1.0
    );
    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(
        !log.contains("correct horse"),
        "the password must never be logged"
    );
    cam.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_digest_login() {
    records_with_login(AuthScheme::Digest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_basic_login() {
    records_with_login(AuthScheme::Basic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_clear_per_camera_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = simcam(Some(Auth {
        username: "admin".into(),
        password: "right".into(),
        scheme: AuthScheme::Digest,
    }))
    .await;
    let good = simcam(None).await;
    let text = config(
        &data,
        &format!(
            "[[cameras]]\nname = \"locked\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"wrong-pass\"\n\
             [[cameras]]\nname = \"fine\"\nurl = \"{}\"\n",
            cam.url("locked"),
            good.url("fine")
        ),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "the auth failure to show", || {
            daemon.cameras()[1]["status"] == "auth_failed"
        })
    });
    let cameras = daemon.cameras();
    let locked = &cameras[1];
    assert_eq!(locked["name"], "locked");
    let error = locked["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("401") || error.contains("credentials"),
        "{error}"
    );
    assert!(!error.contains("wrong-pass"));
    assert_eq!(
        daemon.metric("porchlight_camera_up", &[("camera", "locked")]),
        0.0
    );
    // The other camera is unaffected.
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "the good camera to record", || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "fine"), ("stream", "main")],
            ) > 30.0
        })
    });
    // Slow retries: a wrong password must not hammer the camera.
    let attempts_before = cam.stats().total_auth_failures();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        cam.stats().total_auth_failures() - attempts_before <= 2,
        "retrying too fast on a wrong password"
    );
    let log = tokio::task::block_in_place(|| daemon.stop());
    assert!(
        !log.contains("wrong-pass"),
        "the password must never be logged"
    );
    cam.shutdown().await;
    good.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_that_goes_away_and_comes_back_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let cam = simcam(None).await;
    let addr = cam.local_addr();
    let text = config(
        &data,
        &format!(
            "[[cameras]]\nname = \"gate\"\nurl = \"{}\"\n",
            cam.url("gate")
        ),
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    let labels = [("camera", "gate"), ("stream", "main")];
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(20), "first frames", || {
            daemon.metric("porchlight_frames_total", &labels) > 60.0
        })
    });
    cam.shutdown().await;
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(15), "camera to be down", || {
            daemon.metric("porchlight_camera_up", &[("camera", "gate")]) == 0.0
        })
    });
    let before = daemon.metric("porchlight_frames_total", &labels);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let back = SimCam::start(SimCamConfig {
        listen: addr,
        clip: Clip::Sd,
        audio: true,
        auth: None,
    })
    .await
    .expect("camera back on the same port");
    let returned = std::time::Instant::now();
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(15), "recording to resume", || {
            daemon.metric("porchlight_frames_total", &labels) > before + 30.0
        })
    });
    let resumed_after = returned.elapsed();
    assert!(daemon.metric("porchlight_reconnects_total", &[("camera", "gate")]) >= 1.0);
    eprintln!("recording resumed {resumed_after:?} after the camera returned");
    tokio::task::block_in_place(|| daemon.stop());
    back.shutdown().await;
}
