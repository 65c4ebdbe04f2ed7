//! Cameras we did not write: GStreamer's RTSP server (gst-rtsp-server)
//! serving H.264+AAC, H.265+AAC and H.264+G.711, and a camera that restarts
//! mid-stream. What Porchlight stores must play in ffprobe/ffmpeg.

mod support;

use std::time::Duration;

use support::{decode_errors, ffprobe, segment_files, wait_until, Daemon, GstServer};

fn record(server: &GstServer, mount: &str, seconds_of_frames: f64) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[storage]\nsegment_duration = \"3s\"\n\
         [[cameras]]\nname = \"gst\"\nurl = \"{}\"\n",
        data.display(),
        server.url(mount)
    );
    let daemon = Daemon::start(dir.path(), &text);
    wait_until(
        Duration::from_secs(60),
        &format!("{mount} to record"),
        || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "gst"), ("stream", "main")],
            ) >= seconds_of_frames * 30.0
        },
    );
    (dir, daemon)
}

fn assert_plays(dir: &tempfile::TempDir, video: &str, audio: &str, stored: u64) {
    let files = segment_files(&dir.path().join("data"));
    assert!(!files.is_empty());
    let mut frames = 0;
    for file in &files {
        let probe = ffprobe(file);
        assert_eq!(probe.video_codec, video, "{}", file.display());
        assert_eq!(
            probe.audio_codec.as_deref(),
            Some(audio),
            "{}",
            file.display()
        );
        assert_eq!((probe.width, probe.height), (640, 360));
        let errors = decode_errors(file);
        assert!(errors.is_empty(), "{}: {errors}", file.display());
        frames += probe.video_frames;
    }
    assert_eq!(frames, stored, "ffprobe frame count equals frames stored");
}

fn check_mount(mount: &str, video: &str, audio: &str) {
    let server = GstServer::start(&[]);
    let (dir, daemon) = record(&server, mount, 5.0);
    let cameras = daemon.cameras();
    let codec = cameras[0]["codec"].as_str().unwrap_or_default().to_string();
    #[cfg(feature = "ffmpeg")]
    {
        // Snapshots decode this codec too (H.265 included).
        let (status, head, jpeg) =
            support::http_get_bytes(daemon.http, "/api/cameras/gst/snapshot.jpg", &[]);
        assert_eq!(status, 200, "{head}");
        let file = dir.path().join("snapshot.jpg");
        std::fs::write(&file, jpeg).expect("write");
        assert_eq!(ffprobe(&file).video_codec, "mjpeg");
    }
    drop(server); // The camera goes away: the daemon flushes what it holds.
    wait_until(
        Duration::from_secs(15),
        "the camera to be seen down",
        || daemon.metric("porchlight_camera_up", &[("camera", "gst")]) == 0.0,
    );
    let stored = daemon.metric(
        "porchlight_frames_total",
        &[("camera", "gst"), ("stream", "main")],
    ) as u64;
    let log = daemon.stop();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        codec.starts_with(if video == "hevc" { "hvc1" } else { "avc1" }),
        "codec {codec}"
    );
    assert_plays(&dir, video, audio, stored);
}

#[test]
fn h264_with_aac() {
    check_mount("h264_aac", "h264", "aac");
}

#[test]
fn h265_with_aac() {
    check_mount("h265_aac", "hevc", "aac");
}

#[test]
fn h264_with_g711_mu_law() {
    check_mount("h264_pcmu", "h264", "pcm_mulaw");
}

#[test]
fn a_camera_that_restarts_mid_stream_is_followed() {
    let server = GstServer::start(&["--restart-every", "4"]);
    let (dir, daemon) = record(&server, "h264_aac", 3.0);
    wait_until(
        Duration::from_secs(60),
        "reconnects after camera restarts",
        || daemon.metric("porchlight_reconnects_total", &[("camera", "gst")]) >= 2.0,
    );
    let before = daemon.metric(
        "porchlight_frames_total",
        &[("camera", "gst"), ("stream", "main")],
    );
    wait_until(Duration::from_secs(30), "recording to continue", || {
        daemon.metric(
            "porchlight_frames_total",
            &[("camera", "gst"), ("stream", "main")],
        ) > before + 60.0
    });
    drop(server);
    wait_until(
        Duration::from_secs(15),
        "the camera to be seen down",
        || daemon.metric("porchlight_camera_up", &[("camera", "gst")]) == 0.0,
    );
    let stored = daemon.metric(
        "porchlight_frames_total",
        &[("camera", "gst"), ("stream", "main")],
    ) as u64;
    daemon.stop();
    let files = segment_files(&dir.path().join("data"));
    assert!(
        files.len() >= 3,
        "each camera restart starts a new segment: {files:?}"
    );
    assert_plays(&dir, "h264", "aac", stored);
}
