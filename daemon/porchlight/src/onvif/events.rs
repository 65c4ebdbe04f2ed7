//! ONVIF events over a PullPoint subscription (Events service, ver10):
//! CreatePullPointSubscription, PullMessages, Renew, Unsubscribe, and the
//! `wsnt:NotificationMessage`s they carry, sorted into motion and tamper.
//!
//! [`follow`] keeps one subscription alive for as long as the daemon runs:
//! it pulls, renews before the camera's TerminationTime, re-subscribes with
//! backoff when the camera reboots or forgets the subscription, and
//! unsubscribes on shutdown. See `docs/onvif.md`.

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::client::OnvifClient;
use super::error::{ErrorKind, OnvifError};
use super::http::HttpUrl;
use super::soap::{NS_EVENTS, NS_TOPICS, NS_WSA, NS_WSNT};
use super::xml::{self, Element};

pub const CREATE_PULL_POINT_ACTION: &str =
    "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest";
pub const PULL_MESSAGES_ACTION: &str =
    "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest";
pub const RENEW_ACTION: &str =
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest";
pub const UNSUBSCRIBE_ACTION: &str =
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest";
/// The topic expression dialect ONVIF cameras accept for filters.
pub const CONCRETE_SET: &str = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet";

/// Most notifications read from one PullMessages answer.
pub const MAX_NOTIFICATIONS: usize = 256;
/// Most Source or Data items kept per notification.
pub const MAX_ITEMS: usize = 32;
/// Longest topic, item name or value kept (longer ones are cut).
pub const MAX_TEXT: usize = 256;
/// Most reference parameters echoed back from a subscription reference.
const MAX_REFERENCE_PARAMETERS: usize = 8;

/// What a camera event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CameraEventKind {
    Motion,
    /// Tampering: covered, defocused, turned away, too dark.
    Tamper,
}

impl CameraEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraEventKind::Motion => "motion",
            CameraEventKind::Tamper => "tamper",
        }
    }
}

/// Motion or tamper starting (`active`) or stopping, as a camera said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraEvent {
    pub kind: CameraEventKind,
    pub active: bool,
    /// The message's `UtcTime`, as sent (camera clock), or empty.
    pub utc: String,
    /// The Source items, `Name=Value` joined by `,`
    /// (`VideoSourceConfigurationToken=000,Rule=000`), or empty.
    pub source: String,
}

/// One `wsnt:NotificationMessage`, unsorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notification {
    /// The topic with prefixes removed from every segment
    /// (`RuleEngine/CellMotionDetector/Motion`).
    pub topic: String,
    /// `UtcTime` attribute of `tt:Message`.
    pub utc: String,
    /// `Initialized`, `Changed`, `Deleted`, or empty.
    pub property_operation: String,
    pub source: Vec<(String, String)>,
    pub data: Vec<(String, String)>,
}

impl Notification {
    /// Motion or tamper, if this is one with a readable true/false state.
    /// `Deleted` properties say nothing about the state and are skipped.
    pub fn camera_event(&self) -> Option<CameraEvent> {
        if self.property_operation.eq_ignore_ascii_case("Deleted") {
            return None;
        }
        let kind = topic_kind(&self.topic)?;
        let names: &[&str] = match kind {
            CameraEventKind::Motion => &["IsMotion", "State", "Motion", "MotionActive"],
            CameraEventKind::Tamper => &["IsTamper", "State", "Tamper", "Active"],
        };
        let value = names
            .iter()
            .find_map(|n| self.data.iter().find(|(k, _)| k == n))
            .map(|(_, v)| v.as_str())?;
        let active = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return None,
        };
        Some(CameraEvent {
            kind,
            active,
            utc: self.utc.clone(),
            source: self
                .source
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        })
    }
}

/// Sorts a (prefix-free) topic into motion, tamper, or neither.
pub fn topic_kind(topic: &str) -> Option<CameraEventKind> {
    let segments: Vec<&str> = topic.split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last()?;
    let has = |name: &str| segments.iter().any(|s| s.eq_ignore_ascii_case(name));
    if has("TamperDetector")
        || [
            "ImageTooBlurry",
            "ImageTooDark",
            "ImageTooBright",
            "GlobalSceneChange",
            "Tamper",
        ]
        .iter()
        .any(|n| has(n))
    {
        return Some(CameraEventKind::Tamper);
    }
    if has("CellMotionDetector")
        || has("MotionDetector")
        || has("MotionAlarm")
        || last.eq_ignore_ascii_case("Motion")
    {
        return Some(CameraEventKind::Motion);
    }
    None
}

/// `tns1:RuleEngine/tnsaxis:X/Motion` → `RuleEngine/X/Motion`.
pub fn strip_topic_prefixes(topic: &str) -> String {
    topic
        .trim()
        .split('/')
        .map(xml::local_part)
        .collect::<Vec<_>>()
        .join("/")
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

fn simple_items(parent: Option<&Element>) -> Vec<(String, String)> {
    let Some(parent) = parent else {
        return Vec::new();
    };
    parent
        .children_named("SimpleItem")
        .filter_map(|i| Some((cut(i.attr("Name")?), cut(i.attr("Value").unwrap_or("")))))
        .take(MAX_ITEMS)
        .collect()
}

/// Reads one `NotificationMessage`; `None` when it has no topic or message.
pub fn parse_notification(n: &Element) -> Option<Notification> {
    let topic = n.child("Topic")?;
    let message = n.child("Message")?;
    // `wsnt:Message` wraps `tt:Message`; tolerate cameras that skip a level.
    let inner = message.child("Message").unwrap_or(message);
    Some(Notification {
        topic: cut(&strip_topic_prefixes(&topic.text)),
        utc: cut(inner.attr("UtcTime").unwrap_or("")),
        property_operation: cut(inner.attr("PropertyOperation").unwrap_or("")),
        source: simple_items(inner.child("Source")),
        data: simple_items(inner.child("Data")),
    })
}

/// What a PullMessages answer said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullMessagesResponse {
    pub current_time: Option<String>,
    pub termination_time: Option<String>,
    pub notifications: Vec<Notification>,
}

/// Reads `PullMessagesResponse`. Unreadable notifications are skipped.
pub fn parse_pull_messages(response: &Element) -> Result<PullMessagesResponse, ErrorKind> {
    if response.name != "PullMessagesResponse" {
        return Err(ErrorKind::Unexpected(format!(
            "<{}> instead of PullMessagesResponse",
            response.name
        )));
    }
    Ok(PullMessagesResponse {
        current_time: response.text_at(&["CurrentTime"]).map(cut),
        termination_time: response.text_at(&["TerminationTime"]).map(cut),
        notifications: response
            .children_named("NotificationMessage")
            .take(MAX_NOTIFICATIONS)
            .filter_map(parse_notification)
            .collect(),
    })
}

/// A subscription the camera created: where to pull, and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullPoint {
    /// `SubscriptionReference/Address` (rebased like service addresses).
    pub address: String,
    /// `ReferenceParameters` children, re-serialized, to echo as headers.
    pub reference_parameters: Vec<String>,
    pub current_time: Option<String>,
    pub termination_time: Option<String>,
}

/// Reads `CreatePullPointSubscriptionResponse` (address not yet rebased).
pub fn parse_create_pull_point(response: &Element) -> Result<PullPoint, ErrorKind> {
    if response.name != "CreatePullPointSubscriptionResponse" {
        return Err(ErrorKind::Unexpected(format!(
            "<{}> instead of CreatePullPointSubscriptionResponse",
            response.name
        )));
    }
    let reference = response
        .child("SubscriptionReference")
        .ok_or_else(|| ErrorKind::Unexpected("no SubscriptionReference".into()))?;
    let address = reference
        .text_at(&["Address"])
        .ok_or_else(|| ErrorKind::Unexpected("no subscription Address".into()))?
        .to_string();
    let reference_parameters = reference
        .child("ReferenceParameters")
        .map(|p| {
            p.children
                .iter()
                .take(MAX_REFERENCE_PARAMETERS)
                .map(|c| serialize(c, 0))
                .collect()
        })
        .unwrap_or_default();
    Ok(PullPoint {
        address,
        reference_parameters,
        current_time: response.text_at(&["CurrentTime"]).map(cut),
        termination_time: response.text_at(&["TerminationTime"]).map(cut),
    })
}

/// Writes an element back as XML, each element declaring its own namespace
/// (prefixes are lost in parsing; namespaces are what count).
fn serialize(e: &Element, depth: usize) -> String {
    let mut s = format!("<{}", e.name);
    if let Some(ns) = &e.namespace {
        s.push_str(&format!(" xmlns=\"{}\"", xml::escape(ns)));
    }
    for (k, v) in &e.attributes {
        s.push_str(&format!(" {}=\"{}\"", k, xml::escape(v)));
    }
    s.push('>');
    s.push_str(&xml::escape(&e.text));
    if depth < 8 {
        for c in &e.children {
            s.push_str(&serialize(c, depth + 1));
        }
    }
    s.push_str(&format!("</{}>", e.name));
    s
}

/// `PT60S` for whole seconds (at least one).
pub fn xs_duration(d: Duration) -> String {
    format!("PT{}S", d.as_secs().max(1))
}

/// The CreatePullPointSubscription body; `topic_filter` is a ConcreteSet
/// expression such as `tns1:RuleEngine//.|tns1:VideoSource//.` (the
/// `tns1` prefix is declared).
pub fn create_pull_point_body(initial_termination: Duration, topic_filter: Option<&str>) -> String {
    let filter = topic_filter
        .map(|t| {
            format!(
                "<Filter><wsnt:TopicExpression xmlns:wsnt=\"{NS_WSNT}\" xmlns:tns1=\"{NS_TOPICS}\" Dialect=\"{CONCRETE_SET}\">{}</wsnt:TopicExpression></Filter>",
                xml::escape(t)
            )
        })
        .unwrap_or_default();
    format!(
        "<CreatePullPointSubscription xmlns=\"{NS_EVENTS}\">{filter}<InitialTerminationTime>{}</InitialTerminationTime></CreatePullPointSubscription>",
        xs_duration(initial_termination)
    )
}

pub fn pull_messages_body(timeout: Duration, limit: u32) -> String {
    format!(
        "<PullMessages xmlns=\"{NS_EVENTS}\"><Timeout>{}</Timeout><MessageLimit>{limit}</MessageLimit></PullMessages>",
        xs_duration(timeout)
    )
}

pub fn renew_body(termination: Duration) -> String {
    format!(
        "<Renew xmlns=\"{NS_WSNT}\"><TerminationTime>{}</TerminationTime></Renew>",
        xs_duration(termination)
    )
}

pub fn unsubscribe_body() -> String {
    format!("<Unsubscribe xmlns=\"{NS_WSNT}\"/>")
}

/// WS-Addressing headers for a call on a subscription: Action, To, and the
/// reference parameters the camera asked to get back.
pub fn addressing_headers(action: &str, to: &str, reference_parameters: &[String]) -> String {
    let mut h = format!(
        "<wsa:Action xmlns:wsa=\"{NS_WSA}\">{}</wsa:Action><wsa:To xmlns:wsa=\"{NS_WSA}\">{}</wsa:To>",
        xml::escape(action),
        xml::escape(to)
    );
    for p in reference_parameters {
        h.push_str(p);
    }
    h
}

/// How long from `current` to `termination` (both camera clock).
fn lifetime(current: Option<&str>, termination: Option<&str>) -> Option<Duration> {
    let c = OffsetDateTime::parse(current?, &Rfc3339).ok()?;
    let t = OffsetDateTime::parse(termination?, &Rfc3339).ok()?;
    let d = t - c;
    (d > time::Duration::ZERO).then(|| Duration::try_from(d).ok())?
}

/// Settings for [`Subscription`] and [`follow`].
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// Asked for at subscribe and on each renew. Default 60 s.
    pub termination: Duration,
    /// PullMessages `Timeout`: how long the camera may hold a pull. Default 5 s.
    pub pull_timeout: Duration,
    /// PullMessages `MessageLimit`. Default 32.
    pub message_limit: u32,
    /// A ConcreteSet topic filter; `None` asks for every topic.
    pub topic_filter: Option<String>,
    /// First wait after a failure; doubles up to `max_backoff`. Default 1 s.
    pub min_backoff: Duration,
    /// Default 60 s.
    pub max_backoff: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            termination: Duration::from_secs(60),
            pull_timeout: Duration::from_secs(5),
            message_limit: 32,
            topic_filter: None,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// One live PullPoint subscription on one camera.
#[derive(Debug)]
pub struct Subscription {
    client: OnvifClient,
    address: HttpUrl,
    address_text: String,
    reference_parameters: Vec<String>,
    options: FollowOptions,
    /// Local instant the camera will drop the subscription (our best guess).
    expires: Instant,
    /// The lifetime the camera last granted.
    granted: Duration,
}

impl Subscription {
    /// CreatePullPointSubscription on the camera's Events service.
    pub async fn create(
        client: &OnvifClient,
        options: &FollowOptions,
    ) -> Result<Subscription, OnvifError> {
        const OP: &str = "CreatePullPointSubscription";
        let events = client.events_address().cloned().ok_or_else(|| {
            client.error(
                OP,
                ErrorKind::Unsupported("the camera lists no Events service".into()),
            )
        })?;
        let started = Instant::now();
        let body = create_pull_point_body(options.termination, options.topic_filter.as_deref());
        let r = client
            .call_with_headers(
                &events,
                OP,
                CREATE_PULL_POINT_ACTION,
                &body,
                true,
                "",
                Duration::ZERO,
            )
            .await?;
        let point = parse_create_pull_point(&r).map_err(|k| client.error(OP, k))?;
        let address = client.rebase(&point.address);
        let life = lifetime(
            point.current_time.as_deref(),
            point.termination_time.as_deref(),
        )
        .unwrap_or(options.termination);
        Ok(Subscription {
            client: client.clone(),
            address_text: address.to_string(),
            address,
            reference_parameters: point.reference_parameters,
            options: options.clone(),
            expires: started + life,
            granted: life,
        })
    }

    /// Where the camera wants pulls sent.
    pub fn address(&self) -> &str {
        &self.address_text
    }

    /// Until when the camera keeps the subscription (local clock, estimated).
    pub fn expires(&self) -> Instant {
        self.expires
    }

    async fn call(
        &self,
        op: &str,
        action: &str,
        body: &str,
        extra_time: Duration,
    ) -> Result<Element, OnvifError> {
        let headers = addressing_headers(action, &self.address_text, &self.reference_parameters);
        self.client
            .call_with_headers(&self.address, op, action, body, true, &headers, extra_time)
            .await
    }

    /// One PullMessages (the camera answers at once when it has messages,
    /// else after `pull_timeout`).
    pub async fn pull(&mut self) -> Result<PullMessagesResponse, OnvifError> {
        const OP: &str = "PullMessages";
        let started = Instant::now();
        let body = pull_messages_body(self.options.pull_timeout, self.options.message_limit);
        let r = self
            .call(OP, PULL_MESSAGES_ACTION, &body, self.options.pull_timeout)
            .await?;
        let response = parse_pull_messages(&r).map_err(|k| self.client.error(OP, k))?;
        // Cameras that extend the subscription on each pull say so here.
        if let Some(life) = lifetime(
            response.current_time.as_deref(),
            response.termination_time.as_deref(),
        ) {
            self.expires = started + life;
            self.granted = life;
        }
        Ok(response)
    }

    /// Renew for another `termination`.
    pub async fn renew(&mut self) -> Result<(), OnvifError> {
        const OP: &str = "Renew";
        let started = Instant::now();
        let r = self
            .call(
                OP,
                RENEW_ACTION,
                &renew_body(self.options.termination),
                Duration::ZERO,
            )
            .await?;
        if r.name != "RenewResponse" {
            return Err(self.client.error(
                OP,
                ErrorKind::Unexpected(format!("<{}> instead of RenewResponse", r.name)),
            ));
        }
        let life = lifetime(r.text_at(&["CurrentTime"]), r.text_at(&["TerminationTime"]))
            .unwrap_or(self.options.termination);
        self.expires = started + life;
        self.granted = life;
        Ok(())
    }

    pub async fn unsubscribe(self) -> Result<(), OnvifError> {
        self.call(
            "Unsubscribe",
            UNSUBSCRIBE_ACTION,
            &unsubscribe_body(),
            Duration::ZERO,
        )
        .await
        .map(|_| ())
    }

    /// When to renew: once less than a pull plus a margin (a quarter of the
    /// lifetime granted, 0.5 to 10 s) is left.
    fn renew_due(&self) -> bool {
        let margin = self.options.pull_timeout
            + (self.granted / 4)
                .min(Duration::from_secs(10))
                .max(Duration::from_millis(500));
        Instant::now() + margin >= self.expires
    }
}

/// Follows one camera's motion and tamper events until `shutdown` turns
/// true (or `sender` is closed): subscribes, pulls, renews before expiry,
/// re-subscribes after failures with backoff, unsubscribes at the end.
/// Notifications that are neither motion nor tamper, or unreadable, are
/// skipped.
pub async fn follow(
    client: OnvifClient,
    sender: mpsc::Sender<CameraEvent>,
    shutdown: watch::Receiver<bool>,
) {
    follow_with(client, FollowOptions::default(), sender, shutdown).await
}

/// [`follow`] with explicit timings and topic filter.
pub async fn follow_with(
    client: OnvifClient,
    options: FollowOptions,
    sender: mpsc::Sender<CameraEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = options.min_backoff;
    let stopping = |s: &watch::Receiver<bool>| *s.borrow();
    loop {
        if stopping(&shutdown) || sender.is_closed() {
            return;
        }
        let created = tokio::select! {
            r = Subscription::create(&client, &options) => r,
            _ = shutdown.changed() => return,
        };
        let mut sub = match created {
            Ok(s) => {
                tracing::debug!(camera = %client.address(), pull_point = %s.address(), "events subscribed");
                s
            }
            Err(e) => {
                tracing::warn!(camera = %client.address(), error = %e, retry_in = ?backoff, "cannot subscribe to camera events");
                if wait(&mut shutdown, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(options.max_backoff);
                continue;
            }
        };
        // Pull until something fails or we are told to stop.
        let failure = loop {
            if stopping(&shutdown) || sender.is_closed() {
                let _ = sub.unsubscribe().await;
                return;
            }
            if sub.renew_due() {
                if let Err(e) = sub.renew().await {
                    break e;
                }
            }
            let pulled = tokio::select! {
                r = sub.pull() => r,
                _ = shutdown.changed() => {
                    let _ = sub.unsubscribe().await;
                    return;
                }
            };
            match pulled {
                Ok(response) => {
                    backoff = options.min_backoff;
                    for event in response
                        .notifications
                        .iter()
                        .filter_map(Notification::camera_event)
                    {
                        let sent = tokio::select! {
                            r = sender.send(event) => r.is_ok(),
                            _ = shutdown.changed() => false,
                        };
                        if !sent {
                            let _ = sub.unsubscribe().await;
                            return;
                        }
                    }
                }
                Err(e) => break e,
            }
        };
        tracing::warn!(camera = %client.address(), error = %failure, retry_in = ?backoff, "camera events subscription lost; subscribing again");
        // Cameras allow few subscriptions: free this one if it still exists
        // (after a reboot this fails at once; that is fine).
        if !matches!(failure.kind, ErrorKind::Network(_)) {
            tokio::select! {
                _ = sub.unsubscribe() => {}
                _ = shutdown.changed() => return,
            }
        }
        if wait(&mut shutdown, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
}

/// Sleeps `d`; true if shutdown came first.
async fn wait(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/onvif")
                .join(path),
        )
        .expect(path)
    }

    /// Fills the agsh/onvif doT template: keeps conditional blocks, drops
    /// the `{{? ...}}` markers, fills the placeholders.
    fn render(template: &str) -> String {
        template
            .lines()
            .filter(|l| !l.trim_start().starts_with("{{?"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("{{=it.hostname}}", "192.168.68.111")
            .replace("{{=it.port}}", "80")
            .replace("{{=it.pullPointUrl}}", "/onvif/subscription?Idx=0")
            .replace("{{=new Date().toISOString()}}", "2000-01-03T03:58:33Z")
            .replace(
                "{{=new Date(Date.now()+5000).toISOString()}}",
                "2000-01-03T03:58:38Z",
            )
    }

    fn body(doc: &str) -> Element {
        let env = xml::parse(doc.as_bytes()).expect("xml");
        let body = env.child("Body").expect("Body");
        body.children[0].clone()
    }

    #[test]
    fn agsh_create_pull_point_capture() {
        let r = body(&render(&data(
            "agsh-onvif/events.CreatePullPointSubscription.xml",
        )));
        let p = parse_create_pull_point(&r).unwrap();
        assert_eq!(
            p.address,
            "http://192.168.68.111:80/onvif/subscription?Idx=0"
        );
        assert!(p.reference_parameters.is_empty());
        assert_eq!(
            lifetime(p.current_time.as_deref(), p.termination_time.as_deref()),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn agsh_pull_messages_capture() {
        let r = body(&render(&data("agsh-onvif/PullMessages.xml")));
        let m = parse_pull_messages(&r).unwrap();
        assert_eq!(m.termination_time.as_deref(), Some("2000-01-03T04:04:02Z"));
        assert_eq!(m.notifications.len(), 2);
        let n = &m.notifications[0];
        assert_eq!(n.topic, "RuleEngine/CellMotionDetector/Motion");
        assert_eq!(n.utc, "2000-01-03T03:58:33Z");
        assert_eq!(n.data, vec![("IsMotion".into(), "true".into())]);
        assert_eq!(
            n.camera_event(),
            Some(CameraEvent {
                kind: CameraEventKind::Motion,
                active: true,
                utc: "2000-01-03T03:58:33Z".into(),
                source: "VideoSourceConfigurationToken=000,VideoAnalyticsConfigurationToken=000,Rule=000".into(),
            })
        );
        // As published (both conditional blocks dropped): no notifications.
        let raw = data("agsh-onvif/PullMessages.xml");
        let empty: String = {
            let mut out = String::new();
            let mut skip = false;
            for l in raw.lines() {
                let t = l.trim();
                if t.starts_with("{{? Math") {
                    skip = true;
                } else if t == "{{?}}" {
                    skip = false;
                } else if !skip {
                    out.push_str(l);
                    out.push('\n');
                }
            }
            out
        };
        assert!(parse_pull_messages(&body(&empty))
            .unwrap()
            .notifications
            .is_empty());
    }

    #[test]
    fn handwritten_mixed_pull() {
        let r = body(&data("handwritten/events/PullMessages.xml"));
        let m = parse_pull_messages(&r).unwrap();
        assert_eq!(m.notifications.len(), 5);
        assert_eq!(m.notifications[0].property_operation, "Initialized");
        let events: Vec<(CameraEventKind, bool)> = m
            .notifications
            .iter()
            .filter_map(Notification::camera_event)
            .map(|e| (e.kind, e.active))
            .collect();
        use CameraEventKind::*;
        assert_eq!(
            events,
            [
                (Motion, false),
                (Motion, true),
                (Tamper, true),
                (Tamper, false)
            ]
        );
        assert_eq!(
            lifetime(m.current_time.as_deref(), m.termination_time.as_deref()),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn agsh_unsubscribe_capture() {
        let r = body(&data("agsh-onvif/Unsubscribe.xml"));
        assert_eq!(r.name, "UnsubscribeResponse");
    }

    fn notification(topic: &str, op: &str, data: &str) -> Element {
        let doc = format!(
            r#"<a:NotificationMessage xmlns:a="http://docs.oasis-open.org/wsn/b-2" xmlns:x="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics"><a:Topic Dialect="{CONCRETE_SET}">{topic}</a:Topic><a:Message><x:Message UtcTime="2026-11-28T08:00:00Z" PropertyOperation="{op}"><x:Source><x:SimpleItem Name="VideoSourceToken" Value="vs0"/></x:Source><x:Data>{data}</x:Data></x:Message></a:Message></a:NotificationMessage>"#
        );
        xml::parse(doc.as_bytes()).unwrap()
    }

    #[test]
    fn topics_sort_into_motion_and_tamper() {
        let cases = [
            (
                "tns1:RuleEngine/CellMotionDetector/Motion",
                "IsMotion",
                Some(CameraEventKind::Motion),
            ),
            (
                "tns1:VideoSource/MotionAlarm",
                "State",
                Some(CameraEventKind::Motion),
            ),
            (
                "tns1:VideoSource/ImageTooBlurry/AnalyticsService",
                "State",
                Some(CameraEventKind::Tamper),
            ),
            (
                "tns1:VideoSource/ImageTooDark/ImagingService",
                "State",
                Some(CameraEventKind::Tamper),
            ),
            (
                "tns1:VideoSource/GlobalSceneChange/AnalyticsService",
                "State",
                Some(CameraEventKind::Tamper),
            ),
            (
                "tns1:RuleEngine/TamperDetector/Tamper",
                "IsTamper",
                Some(CameraEventKind::Tamper),
            ),
            ("tns1:Device/Trigger/DigitalInput", "LogicalState", None),
        ];
        for (topic, item, kind) in cases {
            for (value, active) in [("true", true), ("false", false)] {
                let n = parse_notification(&notification(
                    topic,
                    "Changed",
                    &format!(r#"<x:SimpleItem Name="{item}" Value="{value}"/>"#),
                ))
                .unwrap();
                let e = n.camera_event();
                assert_eq!(e.as_ref().map(|e| e.kind), kind, "{topic}");
                if let Some(e) = e {
                    assert_eq!(e.active, active);
                    assert_eq!(e.source, "VideoSourceToken=vs0");
                    assert_eq!(e.utc, "2026-11-28T08:00:00Z");
                }
            }
        }
        // Axis-style nested prefixes.
        assert_eq!(
            strip_topic_prefixes(" tns1:RuleEngine/tnsaxis:VMD3/vmd3_video_1 "),
            "RuleEngine/VMD3/vmd3_video_1"
        );
    }

    #[test]
    fn odd_notifications_are_skipped() {
        let motion = "tns1:RuleEngine/CellMotionDetector/Motion";
        for (op, data) in [
            ("Deleted", r#"<x:SimpleItem Name="IsMotion" Value="true"/>"#),
            (
                "Changed",
                r#"<x:SimpleItem Name="IsMotion" Value="maybe"/>"#,
            ),
            ("Changed", r#"<x:SimpleItem Name="Other" Value="true"/>"#),
            ("Changed", r#"<x:SimpleItem Value="true"/>"#),
            ("Changed", ""),
        ] {
            let n = parse_notification(&notification(motion, op, data)).unwrap();
            assert_eq!(n.camera_event(), None, "{op} {data}");
        }
        let no_topic =
            xml::parse(b"<NotificationMessage><Message/></NotificationMessage>").unwrap();
        assert!(parse_notification(&no_topic).is_none());
        let wrong = xml::parse(b"<GetProfilesResponse/>").unwrap();
        assert!(parse_pull_messages(&wrong).is_err());
        assert!(parse_create_pull_point(&wrong).is_err());
    }

    #[test]
    fn bounded() {
        let one = r#"<NotificationMessage><Topic>tns1:VideoSource/MotionAlarm</Topic><Message><Message><Data><SimpleItem Name="State" Value="true"/></Data></Message></Message></NotificationMessage>"#;
        let doc = format!(
            "<PullMessagesResponse>{}</PullMessagesResponse>",
            one.repeat(MAX_NOTIFICATIONS + 10)
        );
        let r = parse_pull_messages(&xml::parse(doc.as_bytes()).unwrap()).unwrap();
        assert_eq!(r.notifications.len(), MAX_NOTIFICATIONS);
        let long = "x".repeat(10_000);
        let n = parse_notification(&notification(&long, "Changed", "")).unwrap();
        assert_eq!(n.topic.len(), MAX_TEXT);
    }

    #[test]
    fn requests_and_reference_parameters() {
        let b = create_pull_point_body(Duration::from_secs(60), Some("tns1:RuleEngine//."));
        assert!(b.contains("<InitialTerminationTime>PT60S</InitialTerminationTime>"));
        assert!(b.contains("tns1:RuleEngine//.</wsnt:TopicExpression>"));
        xml::parse(b.as_bytes()).unwrap();
        let p = pull_messages_body(Duration::from_secs(5), 32);
        assert!(p.contains("<Timeout>PT5S</Timeout><MessageLimit>32</MessageLimit>"));
        xml::parse(renew_body(Duration::from_secs(60)).as_bytes()).unwrap();
        xml::parse(unsubscribe_body().as_bytes()).unwrap();

        let r = xml::parse(br#"<tev:CreatePullPointSubscriptionResponse xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsa="http://www.w3.org/2005/08/addressing"><tev:SubscriptionReference><wsa:Address>http://0.0.0.0/onvif/Events/PullSubManager</wsa:Address><wsa:ReferenceParameters><dom0:SubscriptionId xmlns:dom0="http://www.axis.com/2009/event">3&amp;4</dom0:SubscriptionId></wsa:ReferenceParameters></tev:SubscriptionReference></tev:CreatePullPointSubscriptionResponse>"#).unwrap();
        let p = parse_create_pull_point(&r).unwrap();
        assert_eq!(
            p.reference_parameters,
            vec![r#"<SubscriptionId xmlns="http://www.axis.com/2009/event">3&amp;4</SubscriptionId>"#.to_string()]
        );
        let h = addressing_headers(PULL_MESSAGES_ACTION, &p.address, &p.reference_parameters);
        let env = xml::parse(format!("<H>{h}</H>").as_bytes()).unwrap();
        assert_eq!(
            env.text_at(&["To"]),
            Some("http://0.0.0.0/onvif/Events/PullSubManager")
        );
        assert_eq!(env.text_at(&["SubscriptionId"]), Some("3&4"));
    }
}
