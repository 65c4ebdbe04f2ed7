//! ONVIF WS-Discovery over real UDP multicast, isolated from the network:
//! each test runs in its own network namespace (see support/netns.rs), where
//! fake cameras join 239.255.255.250 on 127.0.0.1 and the client probes out
//! of 127.0.0.1 with multicast loop on. Port 3702 is the real one in there.

#[path = "support/ws_discovery_fake.rs"]
mod fake;
#[path = "support/fake_onvif.rs"]
mod fake_onvif;
#[path = "support/netns.rs"]
mod netns;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use fake::FakeCamera;
use netns::isolated;
use porchlight::onvif::discovery::{
    self, listen, parse, parse_scopes, probe, Body, DiscoveryEvent, ListenOptions, ProbeOptions,
};
use tokio::sync::mpsc::Receiver;

const CAM_A: &str = "6e0c8f2a-1d3b-4c5e-9f70-00a1b2c3d4e5";
const CAM_B: &str = "b71d4e90-2c8f-4a16-8d3e-5f6a7b8c9d0e";

fn options(port: u16) -> ProbeOptions {
    ProbeOptions {
        interfaces: vec!["127.0.0.1".into()],
        timeout: Duration::from_millis(800),
        target: SocketAddrV4::new(discovery::MULTICAST_GROUP, port),
        ..ProbeOptions::default()
    }
}

async fn next_event(rx: &mut Receiver<DiscoveryEvent>) -> DiscoveryEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no discovery event within 5 s")
        .expect("listener ended")
}

async fn no_event(rx: &mut Receiver<DiscoveryEvent>, within: Duration) {
    if let Ok(Some(e)) = tokio::time::timeout(within, rx.recv()).await {
        panic!("unexpected event {e:?}");
    }
}

/// Starts a listener on lo and gives it a moment to join the group.
async fn start_listener(options: ListenOptions) -> Receiver<DiscoveryEvent> {
    let (handle, rx) = listen(options);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!handle.is_finished(), "listener ended: {:?}", handle.await);
    rx
}

#[test]
fn one_camera_is_found_on_the_real_port_with_its_scopes_parsed() {
    isolated(|| async {
        let camera = FakeCamera::new(CAM_A, "Porch%20Cam");
        let mut expected_xaddrs = camera.xaddrs.clone();
        let _device = camera.clone().spawn(3702);

        let devices = probe(&options(3702)).await.expect("probe");
        assert_eq!(devices.len(), 1, "{devices:#?}");
        let d = &devices[0];
        assert_eq!(d.endpoint, format!("urn:uuid:{CAM_A}"));
        assert_eq!(d.name.as_deref(), Some("Porch Cam"));
        assert_eq!(d.hardware.as_deref(), Some("FK-100/IR"));
        assert_eq!(d.location.as_deref(), Some("country/Front Porch"));
        assert_eq!(d.types, ["dn:NetworkVideoTransmitter", "tds:Device"]);
        assert!(d.is_video_transmitter());
        assert_eq!(d.scopes.len(), 5);
        assert_eq!(d.xaddrs, std::mem::take(&mut expected_xaddrs));
        assert_eq!(d.metadata_version, 1);
        assert_eq!(d.from.ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(d.from.port(), 3702, "answers come from the camera's 3702");
    });
}

#[test]
fn interface_names_work_and_a_non_default_port_can_be_used() {
    isolated(|| async {
        let _device = FakeCamera::new(CAM_A, "A").spawn(39702);
        let mut o = options(39702);
        o.interfaces = vec!["lo".into()];
        let devices = probe(&o).await.expect("probe");
        assert_eq!(devices.len(), 1);
        // Nothing answers on 3702 in this namespace.
        assert!(probe(&options(3702)).await.unwrap().is_empty());
    });
}

#[test]
fn two_cameras_are_deduplicated_by_endpoint() {
    isolated(|| async {
        let a = FakeCamera::new(CAM_A, "A");
        let mut a_again = a.clone(); // the same camera answering from a second address
        a_again.xaddrs = vec!["http://127.0.0.2/onvif/device_service".into()];
        a_again.metadata_version = 2;
        let _a = a.spawn(3702);
        let _a2 = a_again.spawn(3702);
        let _b = FakeCamera::new(CAM_B, "B").spawn(3702);

        // The Probe goes out twice (repeat = 1), so each fake answers twice.
        let devices = probe(&options(3702)).await.expect("probe");
        let mut endpoints: Vec<&str> = devices.iter().map(|d| d.endpoint.as_str()).collect();
        endpoints.sort();
        let mut want = [format!("urn:uuid:{CAM_A}"), format!("urn:uuid:{CAM_B}")];
        want.sort();
        assert_eq!(endpoints, want);
        let a = devices.iter().find(|d| d.endpoint.contains(CAM_A)).unwrap();
        assert_eq!(a.metadata_version, 2, "newest metadata wins");
        assert_eq!(a.xaddrs.len(), 2, "addresses merged: {:?}", a.xaddrs);
    });
}

#[test]
fn a_probe_match_for_someone_elses_probe_is_ignored() {
    isolated(|| async {
        let mut stranger = FakeCamera::new(CAM_B, "B");
        stranger.relates_to_override = Some("urn:uuid:00000000-0000-4000-8000-000000000000".into());
        let _b = stranger.spawn(3702);
        let _a = FakeCamera::new(CAM_A, "A").spawn(3702);

        let devices = probe(&options(3702)).await.expect("probe");
        assert_eq!(devices.len(), 1, "{devices:#?}");
        assert!(devices[0].endpoint.contains(CAM_A));
    });
}

#[test]
fn a_camera_whose_xaddr_does_not_speak_soap_is_still_listed() {
    isolated(|| async {
        // A TCP port that answers anything with a non-SOAP line and hangs up.
        let not_soap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = not_soap.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = not_soap.accept().await {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
            }
        });
        let mut camera = FakeCamera::new(CAM_A, "A");
        camera.xaddrs = vec![format!("http://{addr}/onvif/device_service")];
        let _device = camera.spawn(3702);

        let devices = probe(&options(3702)).await.expect("probe");
        assert_eq!(devices.len(), 1);
        assert_eq!(
            devices[0].xaddrs,
            [format!("http://{addr}/onvif/device_service")]
        );
    });
}

#[test]
fn garbage_and_truncated_datagrams_are_ignored() {
    isolated(|| async {
        let mut noisy = FakeCamera::new(CAM_A, "A");
        noisy.garbage_first = true;
        let _device = noisy.clone().spawn(3702);

        let devices = probe(&options(3702)).await.expect("probe");
        assert_eq!(devices.len(), 1, "{devices:#?}");

        // The listener too: junk on the group, then one real Hello.
        let mut rx = start_listener(ListenOptions {
            probe: options(3702),
            ..ListenOptions::default()
        })
        .await;
        for junk in fake::junk_datagrams(&noisy.hello(true)) {
            fake::multicast(&junk, 3702).await;
        }
        fake::multicast(noisy.hello(true).as_bytes(), 3702).await;
        match next_event(&mut rx).await {
            DiscoveryEvent::Discovered { endpoint, .. } => assert!(endpoint.contains(CAM_A)),
            other => panic!("{other:?}"),
        }
        no_event(&mut rx, Duration::from_millis(300)).await;
    });
}

#[test]
fn hello_and_bye_are_seen_by_the_listener() {
    isolated(|| async {
        let camera = FakeCamera::new(CAM_A, "A");
        let mut rx = start_listener(ListenOptions {
            probe: ProbeOptions {
                interfaces: vec!["lo".into()],
                ..options(3702)
            },
            ..ListenOptions::default()
        })
        .await;

        fake::multicast(camera.hello(true).as_bytes(), 3702).await;
        match next_event(&mut rx).await {
            DiscoveryEvent::Discovered {
                endpoint,
                xaddrs,
                scopes,
                types,
                metadata_version,
                from,
            } => {
                assert_eq!(endpoint, camera.endpoint);
                assert_eq!(xaddrs, camera.xaddrs);
                assert_eq!(scopes, camera.scopes);
                assert_eq!(types, ["dn:NetworkVideoTransmitter", "tds:Device"]);
                assert_eq!(metadata_version, 1);
                assert_eq!(from.ip(), Ipv4Addr::LOCALHOST);
            }
            other => panic!("{other:?}"),
        }
        // A repeated Hello with nothing new is not news.
        fake::multicast(camera.hello(true).as_bytes(), 3702).await;
        no_event(&mut rx, Duration::from_millis(300)).await;

        fake::multicast(camera.bye().as_bytes(), 3702).await;
        assert_eq!(
            next_event(&mut rx).await,
            DiscoveryEvent::Gone {
                endpoint: camera.endpoint.clone()
            }
        );
    });
}

#[test]
fn a_hello_without_xaddrs_is_followed_by_a_unicast_probe() {
    isolated(|| async {
        let camera = FakeCamera::new(CAM_A, "A");
        let _device = camera.clone().spawn(3702);
        let mut rx = start_listener(ListenOptions {
            probe: options(3702),
            resolve_timeout: Duration::from_secs(2),
            ..ListenOptions::default()
        })
        .await;

        fake::multicast(camera.hello(false).as_bytes(), 3702).await;
        match next_event(&mut rx).await {
            DiscoveryEvent::Discovered {
                endpoint,
                xaddrs,
                from,
                ..
            } => {
                assert_eq!(endpoint, camera.endpoint);
                assert_eq!(xaddrs, camera.xaddrs, "XAddrs came from the ProbeMatch");
                assert_eq!(from.port(), 3702);
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn periodic_probes_report_only_news() {
    isolated(|| async {
        let _a = FakeCamera::new(CAM_A, "A").spawn(3702);
        let mut rx = start_listener(ListenOptions {
            probe: options(3702),
            probe_interval: Some(Duration::from_secs(1)),
            ..ListenOptions::default()
        })
        .await;
        match next_event(&mut rx).await {
            DiscoveryEvent::Discovered { endpoint, .. } => assert!(endpoint.contains(CAM_A)),
            other => panic!("{other:?}"),
        }
        let _b = FakeCamera::new(CAM_B, "B").spawn(3702);
        match next_event(&mut rx).await {
            DiscoveryEvent::Discovered { endpoint, .. } => assert!(endpoint.contains(CAM_B)),
            other => panic!("{other:?}"),
        }
        no_event(&mut rx, Duration::from_millis(1500)).await;
    });
}

/// Real ProbeMatch captures (see tests/data/onvif/discovery/README.md).
#[test]
fn real_probe_match_captures_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/onvif/discovery");
    let expectations = std::fs::read_to_string(dir.join("expected.txt")).expect("expected.txt");
    let mut checked = 0;
    for line in expectations.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // file | endpoint | name | hardware | first xaddr | metadata version
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(f.len(), 6, "bad line {line}");
        let bytes = std::fs::read(dir.join(f[0])).unwrap();
        let message = parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f[0]));
        let Body::ProbeMatches(matches) = message.body else {
            panic!("{}: not ProbeMatches", f[0]);
        };
        assert_eq!(matches.len(), 1, "{}", f[0]);
        let m = &matches[0];
        let scopes = parse_scopes(&m.scopes);
        let opt = |s: &str| (s != "-").then(|| s.to_string());
        assert_eq!(m.endpoint, f[1], "{}", f[0]);
        assert_eq!(scopes.name, opt(f[2]), "{}", f[0]);
        assert_eq!(scopes.hardware, opt(f[3]), "{}", f[0]);
        assert_eq!(m.xaddrs.first().map(String::as_str), Some(f[4]), "{}", f[0]);
        assert_eq!(m.metadata_version.to_string(), f[5], "{}", f[0]);
        assert!(
            m.types.iter().any(|t| {
                let local = discovery::type_local_name(t);
                local == "NetworkVideoTransmitter" || local == "Device"
            }),
            "{}: {:?}",
            f[0],
            m.types
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} captures");
}

/// The newcomer's command: `porchlight discover` finds the camera by
/// multicast and, with its login, lists make, model and stream URIs (the
/// camera's clock is two hours off, as cameras' clocks often are).
#[test]
fn porchlight_discover_lists_found_cameras_with_their_streams() {
    isolated(|| async {
        let soap = fake_onvif::FakeCamera::start(fake_onvif::Config {
            clock_skew: time::Duration::hours(2),
            ..fake_onvif::Config::default()
        })
        .await;
        let mut camera = FakeCamera::new(CAM_A, "Front%20Porch");
        camera.xaddrs = vec![soap.xaddr.clone()];
        let responder = camera.spawn(discovery::PORT);
        let run = |args: Vec<&str>| {
            let args: Vec<String> = args.into_iter().map(str::to_string).collect();
            async move {
                let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_porchlight"))
                    .args(&args)
                    .output()
                    .await
                    .expect("run porchlight");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        let found = run(vec![
            "discover",
            "--interface",
            "127.0.0.1",
            "--timeout",
            "1",
            "--user",
            "admin",
            "--password",
            "porch light 42",
        ])
        .await;
        assert!(found.contains("found 1 ONVIF camera"), "{found}");
        assert!(found.contains("Front Porch"), "{found}");
        assert!(found.contains("rtsp://"), "stream URIs listed: {found}");
        // Without the password the camera is still listed, with the reason.
        let locked = run(vec![
            "discover",
            "--interface",
            "127.0.0.1",
            "--timeout",
            "1",
        ])
        .await;
        assert!(locked.contains("found 1 ONVIF camera"), "{locked}");
        assert!(locked.contains("cannot"), "{locked}");
        responder.abort();
    });
}
