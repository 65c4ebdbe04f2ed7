//! End-to-end tests with retina as the RTSP client, over real sockets on
//! 127.0.0.1: TCP and UDP transports, frame accounting, H.264 parameters,
//! keyframe cadence, timestamps across the loop boundary, AAC, auth,
//! shutdown and concurrency.

use std::time::Duration;

use futures::StreamExt as _;
use porchlight_simcam::{clip_info, Auth, AuthScheme, Clip, SimCam, SimCamConfig};
use retina::client::{
    Credentials, Demuxed, PlayOptions, SessionOptions, SetupOptions, Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, ParametersRef};
use tokio::time::{timeout, Instant};

async fn cam(clip: Clip, audio: bool, auth: Option<Auth>) -> SimCam {
    SimCam::start(SimCamConfig {
        clip,
        audio,
        auth,
        ..SimCamConfig::default()
    })
    .await
    .expect("simcam starts")
}

fn udp() -> Transport {
    Transport::Udp(UdpTransportOptions::default())
}

fn tcp() -> Transport {
    Transport::default()
}

/// DESCRIBE, SETUP every stream, PLAY.
async fn open(
    url: &str,
    creds: Option<Credentials>,
    transport: Transport,
) -> Result<Demuxed, retina::Error> {
    let url = url::Url::parse(url).expect("valid url");
    let mut session =
        retina::client::Session::describe(url, SessionOptions::default().creds(creds)).await?;
    for i in 0..session.streams().len() {
        session
            .setup(i, SetupOptions::default().transport(transport.clone()))
            .await?;
    }
    session.play(PlayOptions::default()).await?.demuxed()
}

#[derive(Debug, Default)]
struct Received {
    /// (90 kHz timestamp, is random access point) per video frame.
    video: Vec<(i64, bool)>,
    /// Audio frame timestamps.
    audio: Vec<i64>,
    /// Video dimensions from retina's parsed SPS.
    dims: Option<(u32, u32)>,
    /// Packets lost, as reported by retina.
    loss: u64,
}

/// Receives frames until `frames` video frames arrived.
async fn receive(d: &mut Demuxed, frames: usize) -> Received {
    let mut r = Received::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while r.video.len() < frames {
        let item = timeout(deadline - Instant::now(), d.next())
            .await
            .expect("frames keep coming")
            .expect("stream doesn't end")
            .expect("no stream error");
        match item {
            CodecItem::VideoFrame(f) => {
                r.loss += u64::from(f.loss());
                r.video
                    .push((f.timestamp().timestamp(), f.is_random_access_point()));
            }
            CodecItem::AudioFrame(f) => {
                r.loss += u64::from(f.loss());
                r.audio.push(f.timestamp().timestamp());
            }
            _ => {}
        }
    }
    if let Some(ParametersRef::Video(v)) = d.streams()[0].parameters() {
        r.dims = Some(v.pixel_dimensions());
    }
    r
}

/// Checks what a session received against the clip's facts and the
/// server's accounting.
fn check_video(r: &Received, clip: Clip, sent: u64) {
    let info = clip_info(clip);
    assert_eq!(r.dims, Some((info.width, info.height)));
    assert_eq!(r.loss, 0);
    for (i, &(_, rap)) in r.video.iter().enumerate() {
        assert_eq!(
            rap,
            (i as u32).is_multiple_of(info.gop),
            "frame {i}: keyframe every {} frames",
            info.gop
        );
    }
    for (i, w) in r.video.windows(2).enumerate() {
        assert_eq!(w[1].0 - w[0].0, 3000, "timestamp step after frame {i}");
    }
    let got = r.video.len() as i64;
    assert!(
        (sent as i64 - got).abs() <= 2,
        "server sent {sent} frames, client received {got}"
    );
}

async fn video_roundtrip(transport: Transport, path: &str) {
    let clip = Clip::Hd;
    let cam = cam(clip, false, None).await;
    let mut d = open(&cam.url(path), None, transport).await.expect("open");
    assert_eq!(d.streams().len(), 1);
    assert_eq!(d.streams()[0].encoding_name(), "h264");
    assert_eq!(d.streams()[0].framerate(), Some(30.0));
    // 80 frames = 2.67 s: crosses the 60-frame loop boundary.
    let frames = clip_info(clip).frames_per_loop as usize + 20;
    let start = Instant::now();
    let r = receive(&mut d, frames).await;
    let elapsed = start.elapsed();
    check_video(&r, clip, cam.frames_sent(path));
    // Paced in real time at 30 fps, not sent as fast as possible.
    let nominal = Duration::from_secs_f64((frames - 1) as f64 / 30.0);
    assert!(
        elapsed + Duration::from_millis(150) >= nominal,
        "{frames} frames in {elapsed:?}"
    );
    let stats = cam.stats();
    let p = &stats.paths[path];
    assert_eq!(p.sessions_active, 1);
    assert!(p.bytes_sent > 900_000, "{p:?}");
    drop(d);
    cam.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_video() {
    video_roundtrip(tcp(), "tcpcam").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_video() {
    video_roundtrip(udp(), "udpcam").await;
}

async fn audio_roundtrip(transport: Transport) {
    let cam = cam(Clip::Sd, true, None).await;
    let mut d = open(&cam.url("av"), None, transport).await.expect("open");
    assert_eq!(d.streams().len(), 2);
    assert_eq!(d.streams()[1].encoding_name(), "mpeg4-generic");
    match d.streams()[1].parameters() {
        Some(ParametersRef::Audio(a)) => assert_eq!(a.clock_rate(), 48_000),
        o => panic!("audio parameters: {o:?}"),
    }
    let r = receive(&mut d, 45).await;
    check_video(&r, Clip::Sd, cam.frames_sent("av"));
    // 1.5 s of audio is ~70 AAC frames of 1024 samples.
    assert!(r.audio.len() >= 55, "{} audio frames", r.audio.len());
    for w in r.audio.windows(2) {
        assert_eq!(w[1] - w[0], 1024);
    }
    drop(d);
    cam.shutdown().await;
}

#[tokio::test]
async fn tcp_audio() {
    audio_roundtrip(tcp()).await;
}

#[tokio::test]
async fn udp_audio() {
    audio_roundtrip(udp()).await;
}

async fn auth_cases(scheme: AuthScheme) {
    let auth = Auth {
        username: "porch".into(),
        password: "light".into(),
        scheme,
    };
    let cam = cam(Clip::Sd, false, Some(auth)).await;
    let creds = |password: &str| {
        Some(Credentials {
            username: "porch".into(),
            password: password.into(),
        })
    };

    // Right credentials: streams.
    let mut d = open(&cam.url("locked"), creds("light"), tcp())
        .await
        .expect("right credentials accepted");
    let r = receive(&mut d, 5).await;
    assert_eq!(r.video.len(), 5);
    drop(d);
    assert_eq!(cam.stats().paths["locked"].auth_failures, 0);

    // Wrong password: 401, counted.
    let e = open(&cam.url("locked"), creds("dark"), tcp())
        .await
        .err()
        .expect("wrong credentials rejected");
    assert_eq!(e.status_code(), Some(401), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("401") || msg.contains("Unauthorized"), "{msg}");
    assert_eq!(cam.stats().paths["locked"].auth_failures, 1);

    // No credentials: 401, but not a failed attempt.
    let e = open(&cam.url("locked"), None, tcp())
        .await
        .err()
        .expect("missing credentials rejected");
    assert_eq!(e.status_code(), Some(401), "{e}");
    assert_eq!(cam.stats().paths["locked"].auth_failures, 1);
    cam.shutdown().await;
}

#[tokio::test]
async fn basic_auth() {
    auth_cases(AuthScheme::Basic).await;
}

#[tokio::test]
async fn digest_auth() {
    auth_cases(AuthScheme::Digest).await;
}

async fn shutdown_ends_stream(transport: Transport) {
    let cam = cam(Clip::Sd, false, None).await;
    let mut d = open(&cam.url("dies"), None, transport).await.expect("open");
    receive(&mut d, 3).await;
    let t = Instant::now();
    cam.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        t.elapsed()
    );
    // Drain whatever was in flight; the stream must then end or fail quickly.
    let ended = timeout(Duration::from_secs(3), async {
        loop {
            match d.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "client still streaming 3 s after shutdown");
}

#[tokio::test]
async fn shutdown_ends_tcp_stream() {
    shutdown_ends_stream(tcp()).await;
}

#[tokio::test]
async fn shutdown_ends_udp_stream() {
    shutdown_ends_stream(udp()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_concurrent_sessions() {
    let cam = std::sync::Arc::new(cam(Clip::Sd, false, None).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cam = cam.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("cam{i}");
            let transport = if i % 2 == 0 { tcp() } else { udp() };
            let mut d = open(&cam.url(&path), None, transport)
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"));
            let r = receive(&mut d, 36).await;
            check_video(&r, Clip::Sd, cam.frames_sent(&path));
            d
        }));
    }
    let mut sessions = Vec::new();
    for t in tasks {
        sessions.push(t.await.expect("session task"));
    }
    // The server counts a frame after its last packet leaves; a client may
    // hold that packet a moment before the count moves, so allow it to catch up.
    let settle = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle && cam.stats().paths.values().any(|p| p.frames_sent < 36) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = cam.stats();
    assert_eq!(stats.paths.len(), 16);
    for (path, p) in &stats.paths {
        assert_eq!(p.sessions_active, 1, "{path}");
        assert!(p.frames_sent >= 36, "{path}: {p:?}");
    }
    drop(sessions);
    // Sessions end when their clients disconnect.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cam.stats().paths.values().any(|p| p.sessions_active > 0) {
        assert!(
            Instant::now() < deadline,
            "sessions still active: {:?}",
            cam.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cam = std::sync::Arc::into_inner(cam).expect("sole owner");
    cam.shutdown().await;
}
