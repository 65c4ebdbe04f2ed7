//! Live view: one camera connection feeds every viewer, as fMP4 over a
//! WebSocket (browsers, MSE) and as HLS (players, relays).

mod support;

use std::time::{Duration, Instant};

use support::ws::{WsClient, WsMessage};
use support::{Daemon, GstServer};

fn live_info(daemon: &Daemon, camera: &str) -> serde_json::Value {
    let (status, body) =
        support::http_get(daemon.http, &format!("/api/cameras/{camera}/live")).expect("live");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_watches_live_in_headless_chromium() {
    let rec = support::record(3.0, "", "1GB").await;
    let info = live_info(&rec.daemon, "porch");
    assert_eq!(info["streaming"], true, "{info}");
    assert_eq!(info["browser_playable"], true, "{info}");
    assert!(
        info["codec"].as_str().unwrap_or("").starts_with("avc1"),
        "{info}"
    );

    let seen =
        tokio::task::block_in_place(|| support::live_in_chromium(rec.daemon.http, "porch", 5.0));
    assert_eq!(seen["playable"], true, "{seen}");
    assert_eq!(
        (seen["width"].as_u64(), seen["height"].as_u64()),
        (Some(640), Some(360)),
        "{seen}"
    );
    assert!(seen["videoError"].is_null(), "{seen}");
    // Video has frames, and time moves on.
    assert!(seen["framesShown"].as_u64().unwrap_or(0) >= 30, "{seen}");
    let times: Vec<f64> = seen["currentTimes"]
        .as_array()
        .expect("samples")
        .iter()
        .filter_map(|t| t.as_f64())
        .collect();
    let first = times.first().copied().unwrap_or(0.0);
    let last = times.last().copied().unwrap_or(0.0);
    assert!(last - first >= 2.0, "currentTime must advance: {seen}");
    eprintln!(
        "live view: first frame shown after {} ms",
        seen["firstFrameMs"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_viewer_starts_at_a_keyframe_and_foreign_pages_are_refused() {
    let rec = support::record(3.0, "", "1GB").await;
    let http = rec.daemon.http;
    tokio::task::block_in_place(|| {
        let mut client = WsClient::connect(
            http,
            "/api/cameras/porch/live.ws",
            Some(&format!("http://{http}")),
        )
        .unwrap_or_else(|(s, b)| panic!("refused: {s} {b}"));
        let WsMessage::Text(init) = client.next().expect("init message") else {
            panic!("the first message describes the stream");
        };
        let init: serde_json::Value = serde_json::from_str(&init).expect("json");
        assert_eq!(init["type"], "init");
        assert!(
            init["mime"]
                .as_str()
                .unwrap_or("")
                .starts_with("video/mp4; codecs=\"avc1"),
            "{init}"
        );
        let WsMessage::Binary(init_segment) = client.next().expect("init segment") else {
            panic!("then the init segment");
        };
        let parsed = porchlight_mp4::parse_init(&init_segment).expect("a valid init segment");
        assert!(parsed.video_track().is_some());
        // Then frames, the first a keyframe, decode times rising.
        let mut last_decode = None;
        for i in 0..45 {
            let WsMessage::Binary(fragment) = client.next().expect("fragment") else {
                panic!("frames are binary");
            };
            let moof_len = u32::from_be_bytes(fragment[0..4].try_into().expect("len")) as usize;
            let info = porchlight_mp4::parse_moof(&fragment[..moof_len], 0).expect("a valid moof");
            let run = &info.tracks[0];
            if i == 0 {
                assert!(run.samples[0].is_sync, "a new viewer starts at a keyframe");
            }
            if let Some(last) = last_decode {
                assert!(run.base_media_decode_time > last);
            }
            last_decode = Some(run.base_media_decode_time);
            assert_eq!(
                run.data_offset_in_file + run.data_len(),
                fragment.len() as u64
            );
        }
        assert_eq!(live_info(&rec.daemon, "porch")["viewers"], 1);

        match WsClient::connect(
            http,
            "/api/cameras/porch/live.ws",
            Some("http://evil.example"),
        ) {
            Err((403, body)) => assert!(body.contains("evil.example"), "{body}"),
            Err((status, body)) => panic!("expected 403, got {status}: {body}"),
            Ok(_) => panic!("a foreign page must not open live view"),
        }
        match WsClient::connect(http, "/api/cameras/garage/live.ws", None) {
            Err((404, body)) => assert!(body.contains("no camera named `garage`"), "{body}"),
            Err((status, body)) => panic!("expected 404, got {status}: {body}"),
            Ok(_) => panic!("no such camera"),
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_that_read_nothing_do_not_grow_the_daemon() {
    // The HD camera: ~4 Mbit/s, so 8 stalled viewers over 20 s would hold
    // ~80 MB if each one queued what it has not read.
    let dir = tempfile::tempdir().expect("tempdir");
    let cam = support::simcam(porchlight_simcam::Clip::Hd, false).await;
    let config = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n\
         [[cameras]]\nname = \"porch\"\nurl = \"{}\"\n",
        dir.path().join("data").display(),
        cam.url("porch")
    );
    tokio::task::block_in_place(|| {
        let daemon = Daemon::start(dir.path(), &config);
        support::wait_until(Duration::from_secs(30), "live video", || {
            live_info(&daemon, "porch")["streaming"] == true
        });
        // Warm up: one viewer reads for a while, so allocator pools exist.
        let mut warm =
            WsClient::connect(daemon.http, "/api/cameras/porch/live.ws", None).expect("viewer");
        for _ in 0..90 {
            warm.next().expect("frame");
        }
        let pid = daemon.child.id();
        let before = support::soak::rss_kib(pid).expect("VmRSS");
        let stalled: Vec<WsClient> = (0..8)
            .map(|_| {
                WsClient::connect(daemon.http, "/api/cameras/porch/live.ws", None).expect("viewer")
            })
            .collect();
        let mut peak = before;
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            // The reading viewer keeps getting frames meanwhile.
            for _ in 0..15 {
                warm.next().expect("a reading viewer still gets frames");
            }
            peak = peak.max(support::soak::rss_kib(pid).expect("VmRSS"));
        }
        drop(stalled);
        eprintln!("daemon RSS: {before} KiB before, peak {peak} KiB with 8 stalled viewers");
        assert!(
            peak < before + 40 * 1024,
            "stalled viewers grew the daemon from {before} KiB to {peak} KiB"
        );
        daemon.stop();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_get_hls_with_fmp4_segments() {
    let rec = support::record(3.0, "", "1GB").await;
    let http = rec.daemon.http;
    tokio::task::block_in_place(|| {
        support::wait_until(Duration::from_secs(20), "an HLS playlist", || {
            matches!(
                support::http_get(http, "/api/cameras/porch/live/index.m3u8"),
                Ok((200, _))
            )
        });
        let (_, playlist) =
            support::http_get(http, "/api/cameras/porch/live/index.m3u8").expect("playlist");
        assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
        assert!(playlist.contains("#EXT-X-MAP:URI=\"init-"), "{playlist}");
        let out = rec.dir.path().join("live.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(format!("http://{http}/api/cameras/porch/live/index.m3u8"))
            .args(["-t", "3", "-c", "copy"])
            .arg(&out)
            .status()
            .expect("ffmpeg");
        assert!(status.success());
        let probe = support::ffprobe(&out);
        assert_eq!(probe.video_codec, "h264");
        assert_eq!((probe.width, probe.height), (640, 360));
        assert!(probe.video_duration >= 2.0, "{}", probe.video_duration);
        assert_eq!(support::decode_errors(&out), "");
        for (path, status, text) in [
            ("/api/cameras/porch/live/1-999999.m4s", 404, "not held"),
            ("/api/cameras/porch/live/passwd", 404, "no live file"),
            (
                "/api/cameras/garage/live/index.m3u8",
                404,
                "no camera named",
            ),
        ] {
            let (got, body) = support::http_get(http, path).expect("request");
            assert_eq!(got, status, "{path}: {body}");
            assert!(body.contains(text), "{path}: {body}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_says_so_and_offers_the_snapshot() {
    let server = GstServer::start(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "data_dir = \"{}\"\n[http]\nbind = \"{{HTTP}}\"\n[retention]\nmin_free = \"100MB\"\n\
         [[cameras]]\nname = \"drive\"\nurl = \"{}\"\n",
        dir.path().join("data").display(),
        server.url("/h265_aac")
    );
    tokio::task::block_in_place(|| {
        let daemon = Daemon::start(dir.path(), &config);
        support::wait_until(Duration::from_secs(60), "live H.265 video", || {
            live_info(&daemon, "drive")["streaming"] == true
        });
        let info = live_info(&daemon, "drive");
        let codec = info["codec"].as_str().unwrap_or("");
        assert!(
            codec.starts_with("hvc1") || codec.starts_with("hev1"),
            "{info}"
        );
        assert_eq!(info["browser_playable"], false, "{info}");
        assert_eq!(info["snapshot"], "/api/cameras/drive/snapshot.jpg");
        let seen = support::live_in_chromium(daemon.http, "drive", 2.0);
        if seen["playable"] == false {
            assert_eq!(seen["snapshotShown"], true, "{seen}");
            assert!(
                seen["status"].as_str().unwrap_or("").contains("H.265"),
                "{seen}"
            );
        } else {
            // This Chromium decodes H.265: then it must actually play.
            assert!(seen["framesShown"].as_u64().unwrap_or(0) > 0, "{seen}");
        }
        daemon.stop();
    });
}
