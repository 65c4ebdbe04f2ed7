//! The ONVIF client against a fake camera over real HTTP on 127.0.0.1:
//! connect, describe, URIs, WS-Security with a skewed camera clock, HTTP
//! Digest, wrong passwords, silence, huge and broken answers.

#[path = "support/fake_onvif.rs"]
mod fake_onvif;

use std::time::{Duration, Instant};

use fake_onvif::{Auth, Config, FakeCamera, Mode};
use porchlight::onvif::http::{HttpClient, HttpUrl};
use porchlight::onvif::soap::{self, UsernameToken};
use porchlight::onvif::{device, ClientOptions, ErrorKind, MediaVersion, OnvifClient, VideoCodec};

const USER: &str = "admin";
const PASS: &str = "porch light 42";

async fn camera(config: Config) -> FakeCamera {
    FakeCamera::start(config).await
}

fn quick() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn connect_describe_and_uris() {
    let cam = camera(Config::default()).await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .expect("connect");
    assert!(client.clock_offset().abs() <= time::Duration::seconds(2));
    let media = client.media_address().expect("media service");
    assert_eq!(
        media.to_string(),
        format!("http://{}/onvif/services", cam.addr)
    );
    assert!(client.media2_address().is_none());

    let info = client.device_information().await.unwrap();
    assert_eq!(info.manufacturer, "Mockup Manufacturer");
    assert_eq!(info.model, "Mockup Model");
    assert_eq!(info.serial_number, "00000000");

    let profiles = client.profiles().await.unwrap();
    assert_eq!(profiles.len(), 1);
    let p = &profiles[0];
    assert_eq!(
        (p.token.as_str(), p.version),
        ("main", MediaVersion::Media1)
    );
    let v = p.video.as_ref().unwrap();
    assert_eq!(
        (v.codec.clone(), v.width, v.height, v.fps),
        (VideoCodec::H264, 1920, 1080, Some(5.0))
    );
    assert_eq!(
        client.stream_uri(p).await.unwrap(),
        format!("rtsp://{}/h264main", cam.addr)
    );
    assert_eq!(
        client.snapshot_uri(p).await.unwrap(),
        format!(
            "http://{}/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1",
            cam.addr
        )
    );

    let d = client.describe().await.unwrap();
    assert_eq!(d.name.as_deref(), Some("Front Porch"));
    assert_eq!(d.profiles.len(), 1);
    assert!(d.profiles[0]
        .stream_uri
        .as_deref()
        .unwrap()
        .starts_with("rtsp://"));
    let text = d.to_string();
    for needle in [
        "Front Porch",
        "Mockup Manufacturer",
        "Mockup_15_14_13",
        "H.264 1920x1080 @ 5 fps",
        "rtsp://",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
    // No authentication failure along the way; the clock came first, unauthenticated.
    let ops = cam.operations();
    assert_eq!(ops[0], "GetSystemDateAndTime");
    assert!(ops.iter().all(|o| !o.ends_with('!')), "{ops:?}");
}

#[tokio::test]
async fn ws_security_follows_a_camera_clock_two_hours_ahead() {
    let cam = camera(Config {
        clock_skew: time::Duration::hours(2),
        ..Config::default()
    })
    .await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .expect("connect");
    let offset = client.clock_offset();
    assert!(
        (offset - time::Duration::hours(2)).abs() <= time::Duration::seconds(2),
        "{offset}"
    );
    assert_eq!(
        client.device_information().await.unwrap().model,
        "Mockup Model"
    );
    assert!(!client.profiles().await.unwrap().is_empty());

    // The camera really checks: a token on our own clock is refused.
    let url = HttpUrl::parse(&cam.xaddr).unwrap();
    let token = UsernameToken::new(USER, PASS, time::OffsetDateTime::now_utc());
    let (action, body) = device::GET_DEVICE_INFORMATION;
    let response = HttpClient::default()
        .post_soap(&url, action, &soap::envelope(body, Some(&token)), None)
        .await
        .unwrap();
    assert!(matches!(
        soap::check_response(&response),
        Err(ErrorKind::WrongCredentials(_))
    ));
}

#[tokio::test]
async fn http_digest_md5_and_sha256() {
    for alg in ["MD5", "SHA-256"] {
        let cam = camera(Config {
            auth: Auth::HttpDigest(alg),
            ..Config::default()
        })
        .await;
        let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let d = client
            .describe()
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(d.info.manufacturer, "Mockup Manufacturer");
        // Each call: a 401 then the answer.
        let ops = cam.operations();
        assert!(ops.contains(&"GetProfiles!".to_string()), "{ops:?}");
        assert!(ops.contains(&"GetProfiles".to_string()), "{ops:?}");
    }
}

#[tokio::test]
async fn wrong_password_is_the_wrong_credentials_error() {
    for auth in [Auth::WsSecurity, Auth::HttpDigest("MD5")] {
        let cam = camera(Config {
            auth: auth.clone(),
            ..Config::default()
        })
        .await;
        let err = OnvifClient::connect(&cam.xaddr, Some((USER, "not it")))
            .await
            .unwrap_err();
        assert!(err.is_wrong_credentials(), "{auth:?}: {err}");
        assert_eq!(err.operation, "GetServices");
        let text = err.to_string();
        assert!(
            text.contains(&cam.xaddr) && text.contains("GetServices"),
            "{text}"
        );
        assert!(text.contains("wrong user name or password"), "{text}");
        assert!(!text.contains("not it"), "password leaked: {text}");

        let err = OnvifClient::connect(&cam.xaddr, None).await.unwrap_err();
        assert!(
            err.is_wrong_credentials(),
            "{auth:?} without password: {err}"
        );
    }
}

#[tokio::test]
async fn silent_camera_times_out_within_the_bound() {
    let cam = camera(Config {
        mode: Mode::Silent,
        ..Config::default()
    })
    .await;
    let start = Instant::now();
    let err = OnvifClient::connect_with(&cam.xaddr, Some((USER, PASS)), quick())
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(err.operation, "GetSystemDateAndTime");
}

#[tokio::test]
async fn huge_answers_are_refused_with_their_size() {
    for chunked in [false, true] {
        let cam = camera(Config {
            mode: Mode::Huge { chunked },
            ..Config::default()
        })
        .await;
        let err = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
            .await
            .unwrap_err();
        match &err.kind {
            ErrorKind::TooLarge { size, limit } => {
                assert_eq!(*limit, 1 << 20);
                assert_eq!(size.is_some(), !chunked, "{err}");
            }
            _ => panic!("chunked={chunked}: {err}"),
        }
        assert!(err.to_string().contains("response too large"), "{err}");
    }
}

#[tokio::test]
async fn broken_xml_is_a_clear_error() {
    let cam = camera(Config {
        mode: Mode::Malformed,
        ..Config::default()
    })
    .await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .unwrap();
    let err = client.device_information().await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Xml(_)), "{err}");
    assert!(
        err.to_string()
            .contains("GetDeviceInformation: malformed XML"),
        "{err}"
    );
}

#[tokio::test]
async fn unexpected_prefixes_are_fine() {
    let cam = camera(Config {
        mode: Mode::OddPrefixes,
        ..Config::default()
    })
    .await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .unwrap();
    let d = client.describe().await.unwrap();
    assert_eq!(d.info.firmware_version, "Mockup_15_14_13");
    assert_eq!(d.profiles[0].profile.video.as_ref().unwrap().width, 1920);
    assert!(d.profiles[0].stream_uri.is_some());
}

#[tokio::test]
async fn old_camera_without_get_services_uses_capabilities() {
    let cam = camera(Config {
        mode: Mode::NoGetServices,
        ..Config::default()
    })
    .await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .unwrap();
    assert!(client.media_address().is_some());
    assert_eq!(client.profiles().await.unwrap().len(), 1);
    let ops = cam.operations();
    assert!(ops.contains(&"GetCapabilities".to_string()), "{ops:?}");
}

#[tokio::test]
async fn media2_when_offered() {
    let cam = camera(Config {
        media2: true,
        clock_skew: time::Duration::minutes(-37),
        ..Config::default()
    })
    .await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .unwrap();
    assert!(client.media2_address().is_some());
    let profiles = client.profiles().await.unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0].version, MediaVersion::Media2);
    assert_eq!(profiles[0].video.as_ref().unwrap().codec, VideoCodec::H265);
    assert_eq!(
        client.stream_uri(&profiles[0]).await.unwrap(),
        // The fixture's camera address is swapped for the fake's, port included.
        format!("rtsp://{}:554/Streaming/Channels/101", cam.addr)
    );
    let err = client.snapshot_uri(&profiles[0]).await.unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    let d = client.describe().await.unwrap();
    assert_eq!(d.profiles.len(), 2);
    assert!(d.profiles[0].snapshot_uri.is_none());
    let ops = cam.operations();
    assert!(ops.contains(&"media2:GetProfiles".to_string()), "{ops:?}");
}

#[tokio::test]
async fn https_and_bad_addresses_are_refused() {
    let err = OnvifClient::connect("https://127.0.0.1/onvif/device_service", None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::BadAddress(_)), "{err}");
    assert!(
        err.to_string()
            .contains("https:// cameras are not supported"),
        "{err}"
    );

    // Nothing listens: a network error, quickly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = OnvifClient::connect(
        &format!("http://127.0.0.1:{port}/onvif/device_service"),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Network(_)), "{err}");
}
