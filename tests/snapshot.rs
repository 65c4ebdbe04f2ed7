//! A Home Assistant dashboard polls the latest picture every second: it gets
//! a real JPEG of the newest keyframe, decoded once and then served cached.
#![cfg(feature = "ffmpeg")]

mod support;

use std::time::Duration;

use porchlight_simcam::Clip;
use support::{ffprobe, header_value, http_get, http_get_bytes, wait_until, Daemon};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_jpegs_of_the_newest_keyframe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cam = support::simcam(Clip::Hd, false).await;
    let text = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n[[cameras]]\nname = \"door\"\nurl = \"{}\"\n",
        dir.path().join("data").display(),
        cam.url("door")
    );
    let daemon = tokio::task::block_in_place(|| Daemon::start(dir.path(), &text));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(30), "a few keyframes", || {
            daemon.metric(
                "porchlight_frames_total",
                &[("camera", "door"), ("stream", "main")],
            ) >= 90.0
        })
    });
    cam.shutdown().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (status, head, first) = tokio::task::block_in_place(|| {
        http_get_bytes(daemon.http, "/api/cameras/door/snapshot.jpg", &[])
    });
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_value(&head, "content-type").as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(&first[..2], &[0xff, 0xd8], "a JPEG starts with SOI");
    let file = dir.path().join("snap.jpg");
    std::fs::write(&file, &first).expect("write");
    let probe = ffprobe(&file);
    assert_eq!(
        (probe.video_codec.as_str(), probe.width, probe.height),
        ("mjpeg", 1920, 1080)
    );
    let frame_time = header_value(&head, "x-porchlight-frame-time").expect("frame time");
    porchlight::time::parse_utc_us(&frame_time).expect("RFC 3339 frame time");

    // Polling again (no new keyframe since) serves the same image.
    for _ in 0..5 {
        let (status, _, again) = tokio::task::block_in_place(|| {
            http_get_bytes(daemon.http, "/api/cameras/door/snapshot.jpg", &[])
        });
        assert_eq!(status, 200);
        assert_eq!(again, first);
    }

    // A snapshot of an earlier moment shows the keyframe at or before it.
    let latest = porchlight::time::parse_utc_us(&frame_time).expect("time");
    let at = latest - 1_500_000;
    let path = format!(
        "/api/cameras/door/snapshot.jpg?at={}",
        porchlight::time::format_utc_us(at)
    );
    let (status, head, earlier) =
        tokio::task::block_in_place(|| http_get_bytes(daemon.http, &path, &[]));
    assert_eq!(status, 200, "{head}");
    assert_eq!(&earlier[..2], &[0xff, 0xd8]);
    let earlier_time = header_value(&head, "x-porchlight-frame-time").expect("frame time");
    let earlier_us = porchlight::time::parse_utc_us(&earlier_time).expect("time");
    assert!(
        earlier_us <= at && at - earlier_us <= 1_100_000,
        "keyframe {earlier_time} for {at}"
    );

    for (path, expected) in [
        ("/api/cameras/garage/snapshot.jpg", 404),
        ("/api/cameras/door/snapshot.jpg?at=teatime", 400),
    ] {
        let (status, body) =
            tokio::task::block_in_place(|| http_get(daemon.http, path)).expect("request");
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body.contains("\"error\""), "{body}");
    }
    tokio::task::block_in_place(|| daemon.stop());
}
