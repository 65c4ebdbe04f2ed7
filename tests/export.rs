//! An investigator asks for "7 seconds from 21:04:02": the owner downloads
//! a clip that plays at once, seeks (Range), and is exactly the stored
//! footage, cut at the requested times, never re-encoded.

mod support;

use std::time::Duration;

use support::{decode_errors, ffprobe, header_value, http_get, http_get_bytes, porchlight};

fn url_time(us: i64) -> String {
    porchlight::time::format_utc_us(us)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_is_cut_at_the_requested_times_and_plays() {
    let rec = support::record(12.0, "", "1GB").await;
    let (from, to) = (rec.first_us + 2_500_000, rec.first_us + 9_500_000);
    let path = format!(
        "/api/cameras/porch/clip.mp4?from={}&to={}",
        url_time(from),
        url_time(to)
    );
    let (status, head, body) =
        tokio::task::block_in_place(|| http_get_bytes(rec.daemon.http, &path, &[]));
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header_value(&head, "content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(
        header_value(&head, "accept-ranges").as_deref(),
        Some("bytes")
    );
    let file = rec.dir.path().join("clip.mp4");
    std::fs::write(&file, &body).expect("write");

    let probe = ffprobe(&file);
    assert_eq!(probe.video_codec, "h264");
    assert_eq!(
        probe.audio_codec.as_deref(),
        Some("aac"),
        "audio is included by default"
    );
    assert!(
        (probe.video_duration - 7.0).abs() <= 1.0 / 30.0 + 1e-3,
        "duration {} for a 7 s request",
        probe.video_duration
    );
    let errors = decode_errors(&file);
    assert!(errors.is_empty(), "{errors}");

    // Without audio.
    let (status, _, body) = tokio::task::block_in_place(|| {
        http_get_bytes(rec.daemon.http, &format!("{path}&audio=false"), &[])
    });
    assert_eq!(status, 200);
    std::fs::write(&file, &body).expect("write");
    assert_eq!(ffprobe(&file).audio_codec, None);

    // The CLI writes the same bytes as the API.
    let (status, _, api_bytes) =
        tokio::task::block_in_place(|| http_get_bytes(rec.daemon.http, &path, &[]));
    assert_eq!(status, 200);
    let out = rec.dir.path().join("cli.mp4");
    let config = rec.daemon.config_path.to_str().expect("utf-8").to_string();
    let (code, _, stderr) = porchlight(&[
        "export",
        "--config",
        &config,
        "--camera",
        "porch",
        "--from",
        &url_time(from),
        "--to",
        &url_time(to),
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        std::fs::read(&out).expect("read"),
        api_bytes,
        "CLI and API export the same clip"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_ranges_are_the_same_bytes_as_the_whole_clip() {
    let rec = support::record(10.0, "", "1GB").await;
    let path = format!(
        "/api/cameras/porch/clip.mp4?from={}&to={}",
        url_time(rec.first_us + 1_000_000),
        url_time(rec.first_us + 6_000_000)
    );
    let (status, head, whole) =
        tokio::task::block_in_place(|| http_get_bytes(rec.daemon.http, &path, &[]));
    assert_eq!(status, 200);
    let etag = header_value(&head, "etag").expect("etag");
    let len = whole.len() as u64;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..25 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let start = state % len;
        let end = (start + state % 300_000).min(len - 1);
        let range = format!("bytes={start}-{end}");
        let (status, head, part) = tokio::task::block_in_place(|| {
            http_get_bytes(
                rec.daemon.http,
                &path,
                &[("Range", &range), ("If-Range", &etag)],
            )
        });
        assert_eq!(status, 206, "{range}: {head}");
        assert_eq!(
            header_value(&head, "content-range"),
            Some(format!("bytes {start}-{end}/{len}"))
        );
        assert_eq!(part, whole[start as usize..=end as usize], "{range}");
    }
    // Suffix range.
    let (status, _, tail) = tokio::task::block_in_place(|| {
        http_get_bytes(rec.daemon.http, &path, &[("Range", "bytes=-1000")])
    });
    assert_eq!(status, 206);
    assert_eq!(tail, whole[whole.len() - 1000..]);
    // A stale If-Range gets the whole (current) clip.
    let (status, _, body) = tokio::task::block_in_place(|| {
        http_get_bytes(
            rec.daemon.http,
            &path,
            &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
        )
    });
    assert_eq!(status, 200);
    assert_eq!(body.len() as u64, len);
    // Beyond the end.
    let (status, head, _) = tokio::task::block_in_place(|| {
        http_get_bytes(
            rec.daemon.http,
            &path,
            &[("Range", &format!("bytes={len}-"))],
        )
    });
    assert_eq!(status, 416);
    assert_eq!(
        header_value(&head, "content-range"),
        Some(format!("bytes */{len}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_say_what_is_wrong() {
    let rec = support::record(3.0, "[export]\nmax_clip = \"60s\"", "1GB").await;
    let now = porchlight::time::now_utc_us();
    let cases = [
        (
            format!(
                "/api/cameras/garage/clip.mp4?from={}&to={}",
                url_time(now - 5_000_000),
                url_time(now)
            ),
            404,
            "unknown camera `garage`",
        ),
        (
            format!(
                "/api/cameras/porch/clip.mp4?from={}&to={}",
                url_time(now),
                url_time(now - 5_000_000)
            ),
            400,
            "`from` must be before `to`",
        ),
        (
            format!("/api/cameras/porch/clip.mp4?from=noon&to={}", url_time(now)),
            400,
            "`from`",
        ),
        (
            format!("/api/cameras/porch/clip.mp4?to={}", url_time(now)),
            400,
            "`from` is required",
        ),
        (
            format!(
                "/api/cameras/porch/clip.mp4?from={}&to={}",
                url_time(now - 600_000_000),
                url_time(now)
            ),
            400,
            "most one clip may cover is 60 s",
        ),
        (
            format!(
                "/api/cameras/porch/clip.mp4?from={}&to={}",
                url_time(now - 3_600_000_000),
                url_time(now - 3_590_000_000)
            ),
            404,
            "no footage",
        ),
        (
            "/api/cameras/porch/recordings?from=2026-13-45T00:00:00Z".to_string(),
            400,
            "`from`",
        ),
        (
            "/api/cameras/garage/days".to_string(),
            404,
            "unknown camera",
        ),
    ];
    tokio::task::block_in_place(|| support::assert_json_errors(rec.daemon.http, &cases));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_shows_spans_gaps_and_hours() {
    let rec = support::record(6.0, "", "1GB").await;
    let (status, body) = http_get(rec.daemon.http, "/api/cameras/porch/days").expect("days");
    assert_eq!(status, 200, "{body}");
    let days: serde_json::Value = serde_json::from_str(&body).expect("json");
    let total: u64 = days
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|d| d["hours"].as_array().expect("hours").iter())
        .map(|h| h.as_u64().unwrap_or(0))
        .sum();
    assert!((4..=20).contains(&total), "about 6 s recorded, got {total}");
    let from = url_time(rec.first_us - 60_000_000);
    let (status, body) = http_get(
        rec.daemon.http,
        &format!("/api/cameras/porch/recordings?from={from}"),
    )
    .expect("recordings");
    assert_eq!(status, 200);
    let coverage: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        coverage["spans"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    assert_eq!(
        coverage["gaps"][0]["from"].as_str(),
        Some(from.as_str()),
        "the minute before recording is a gap: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stay_whole_while_recording_and_retention_run() {
    // 1.5 MB per camera (~11 s): retention deletes old segments while we export.
    let rec = support::record(8.0, "", "1.5MB").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut exported = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < deadline {
        let now = porchlight::time::now_utc_us();
        let path = format!(
            "/api/cameras/porch/clip.mp4?from={}&to={}",
            url_time(now - 6_000_000),
            url_time(now)
        );
        let (status, head, body) =
            tokio::task::block_in_place(|| http_get_bytes(rec.daemon.http, &path, &[]));
        assert_eq!(status, 200, "{head}");
        let file = dir.path().join(format!("clip{exported}.mp4"));
        std::fs::write(&file, &body).expect("write");
        let errors = decode_errors(&file);
        assert!(errors.is_empty(), "{errors}");
        assert!(ffprobe(&file).video_frames > 30);
        exported += 1;
    }
    assert!(exported >= 3);
    assert!(
        rec.daemon
            .metric("porchlight_retention_deleted_bytes_total", &[])
            > 0.0,
        "retention must have run during the exports"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clip_plays_in_headless_chromium() {
    let rec = support::record(9.0, "", "1GB").await;
    let url = format!(
        "http://{}/api/cameras/porch/clip.mp4?from={}&to={}",
        rec.daemon.http,
        url_time(rec.first_us + 1_000_000),
        url_time(rec.first_us + 8_000_000)
    );
    let result = tokio::task::block_in_place(|| support::play_in_chromium(&url, 2.0));
    assert_eq!(result["ok"], true, "Chromium must play the clip: {result}");
    assert!(
        result["currentTime"].as_f64().unwrap_or(0.0) >= 2.0,
        "{result}"
    );
    assert_eq!(
        (result["width"].as_u64(), result["height"].as_u64()),
        (Some(640), Some(360))
    );
    let duration = result["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (duration - 7.0).abs() < 0.1,
        "the browser sees the trimmed 7 s: {duration}"
    );
}
