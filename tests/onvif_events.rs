//! ONVIF PullPoint events against the fake camera over real HTTP on
//! 127.0.0.1: motion and tamper arrive in order, the driver renews before
//! the camera drops the subscription, comes back after a camera reboot or
//! a broken answer, skips garbage, and unsubscribes on shutdown.

#[path = "support/fake_onvif.rs"]
mod fake_onvif;

use std::time::Duration;

use fake_onvif::{Config, FakeCamera};
use porchlight::onvif::events::{
    follow_with, CameraEvent, CameraEventKind, FollowOptions, Subscription,
};
use porchlight::onvif::OnvifClient;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

const USER: &str = "admin";
const PASS: &str = "porch light 42";

fn options() -> FollowOptions {
    FollowOptions {
        pull_timeout: Duration::from_secs(1),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        ..FollowOptions::default()
    }
}

struct Follower {
    events: mpsc::Receiver<CameraEvent>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn follow(cam: &FakeCamera, options: FollowOptions) -> Follower {
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .expect("connect");
    assert!(client.events_address().is_some());
    let (tx, rx) = mpsc::channel(16);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(follow_with(client, options, tx, shutdown_rx));
    Follower {
        events: rx,
        shutdown,
        task,
    }
}

/// Waits (up to 10 s) until the camera has `n` live subscriptions.
async fn subscribed(cam: &FakeCamera, n: usize) {
    for _ in 0..200 {
        if cam.subscriptions() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} subscriptions instead of {n}; operations: {:?}",
        cam.subscriptions(),
        cam.operations()
    );
}

async fn next(f: &mut Follower) -> CameraEvent {
    tokio::time::timeout(Duration::from_secs(10), f.events.recv())
        .await
        .expect("an event within 10 s")
        .expect("driver still running")
}

async fn stop(f: Follower) {
    f.shutdown.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), f.task)
        .await
        .expect("driver stops within 10 s")
        .unwrap();
}

#[tokio::test]
async fn motion_on_off_and_tamper_arrive_in_order_then_unsubscribe() {
    let cam = FakeCamera::start(Config::default()).await;
    let mut f = follow(&cam, options()).await;
    subscribed(&cam, 1).await;

    cam.push_motion(true);
    cam.push_motion(false);
    let on = next(&mut f).await;
    assert_eq!((on.kind, on.active), (CameraEventKind::Motion, true));
    assert_eq!(
        on.source,
        "VideoSourceConfigurationToken=000,Rule=MyMotionDetectorRule"
    );
    assert!(on.utc.starts_with("20"), "{}", on.utc);
    let off = next(&mut f).await;
    assert_eq!((off.kind, off.active), (CameraEventKind::Motion, false));

    cam.push_tamper(true);
    let t = next(&mut f).await;
    assert_eq!((t.kind, t.active), (CameraEventKind::Tamper, true));
    cam.push_event(
        "tns1:VideoSource/ImageTooBlurry/AnalyticsService",
        "State",
        false,
    );
    let t = next(&mut f).await;
    assert_eq!((t.kind, t.active), (CameraEventKind::Tamper, false));
    cam.push_event("tns1:VideoSource/MotionAlarm", "State", true);
    let m = next(&mut f).await;
    assert_eq!((m.kind, m.active), (CameraEventKind::Motion, true));

    stop(f).await;
    assert_eq!(cam.subscriptions(), 0, "{:?}", cam.operations());
    let ops = cam.operations();
    assert_eq!(
        ops.last().map(String::as_str),
        Some("Unsubscribe"),
        "{ops:?}"
    );
    assert_eq!(cam.count("CreatePullPointSubscription"), 1);
    assert!(ops.iter().all(|o| !o.ends_with('!')), "{ops:?}");
}

#[tokio::test]
async fn after_a_reboot_the_driver_subscribes_again() {
    let cam = FakeCamera::start(Config::default()).await;
    let mut f = follow(&cam, options()).await;
    subscribed(&cam, 1).await;
    cam.push_motion(true);
    assert!(next(&mut f).await.active);

    cam.reboot();
    // The pending PullMessages comes back with a fault; the driver backs off
    // and subscribes again.
    for _ in 0..200 {
        if cam.count("CreatePullPointSubscription") >= 2 && cam.subscriptions() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cam.count("CreatePullPointSubscription"),
        2,
        "{:?}",
        cam.operations()
    );
    cam.push_motion(false);
    let e = next(&mut f).await;
    assert_eq!((e.kind, e.active), (CameraEventKind::Motion, false));

    // A broken answer is handled the same way.
    cam.garble_next_pull();
    for _ in 0..200 {
        if cam.count("CreatePullPointSubscription") >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cam.count("CreatePullPointSubscription"),
        3,
        "{:?}",
        cam.operations()
    );
    // The broken one was let go (camera slots are few).
    subscribed(&cam, 1).await;
    cam.push_tamper(true);
    let e = next(&mut f).await;
    assert_eq!((e.kind, e.active), (CameraEventKind::Tamper, true));
    stop(f).await;
}

#[tokio::test]
async fn renews_before_the_camera_drops_the_subscription() {
    let cam = FakeCamera::start(Config {
        max_subscription: Some(Duration::from_secs(2)),
        ..Config::default()
    })
    .await;
    let mut f = follow(
        &cam,
        FollowOptions {
            pull_timeout: Duration::from_millis(500),
            ..options()
        },
    )
    .await;
    subscribed(&cam, 1).await;
    // Three lifetimes.
    tokio::time::sleep(Duration::from_secs(6)).await;
    cam.push_motion(true);
    assert!(next(&mut f).await.active);
    let ops = cam.operations();
    assert_eq!(cam.count("CreatePullPointSubscription"), 1, "{ops:?}");
    // About one renew per 1.5 s, not one per pull.
    let renews = cam.count("Renew");
    assert!((3..=8).contains(&renews), "{renews} renews: {ops:?}");
    assert!(cam.count("PullMessages") >= 3, "{ops:?}");
    stop(f).await;
    assert_eq!(cam.subscriptions(), 0);
}

#[tokio::test]
async fn garbage_notifications_are_skipped() {
    let cam = FakeCamera::start(Config::default()).await;
    let mut f = follow(&cam, options()).await;
    subscribed(&cam, 1).await;
    for garbage in [
        "<wsnt:NotificationMessage/>",
        "<wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic></wsnt:NotificationMessage>",
        "<wsnt:NotificationMessage><wsnt:Topic>tns1:Device/Trigger/DigitalInput</wsnt:Topic><wsnt:Message><tt:Message><tt:Data><tt:SimpleItem Name=\"LogicalState\" Value=\"true\"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>",
        "<wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message><tt:Data><tt:SimpleItem Name=\"IsMotion\" Value=\"sometimes\"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>",
        "<wsnt:NotificationMessage><wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message PropertyOperation=\"Deleted\"><tt:Data><tt:SimpleItem Name=\"IsMotion\" Value=\"true\"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>",
        "<tt:Unrelated>text</tt:Unrelated>",
    ] {
        cam.push_raw(garbage);
    }
    // A kind none of the garbage could be mistaken for: if any of it were
    // taken as an event, that event would arrive first.
    cam.push_tamper(true);
    let e = next(&mut f).await;
    assert_eq!((e.kind, e.active), (CameraEventKind::Tamper, true));
    assert_eq!(cam.count("CreatePullPointSubscription"), 1);
    stop(f).await;
}

#[tokio::test]
async fn subscription_calls_by_hand() {
    let cam = FakeCamera::start(Config::default()).await;
    let client = OnvifClient::connect(&cam.xaddr, Some((USER, PASS)))
        .await
        .unwrap();
    let mut sub = Subscription::create(&client, &options()).await.unwrap();
    assert!(
        sub.address().ends_with("/onvif/pullpoint/1"),
        "{}",
        sub.address()
    );
    cam.push_motion(true);
    let r = sub.pull().await.unwrap();
    assert_eq!(r.notifications.len(), 1);
    sub.renew().await.unwrap();
    // An empty pull waits for the Timeout.
    let started = std::time::Instant::now();
    assert!(sub.pull().await.unwrap().notifications.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
    sub.unsubscribe().await.unwrap();
    assert_eq!(cam.subscriptions(), 0);
    assert_eq!(
        cam.operations()[cam.operations().len() - 5..],
        [
            "CreatePullPointSubscription",
            "PullMessages",
            "Renew",
            "PullMessages",
            "Unsubscribe"
        ]
    );
}
