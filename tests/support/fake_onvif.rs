//! A fake ONVIF camera for the client tests: HTTP/1.1 and SOAP over a real
//! socket on 127.0.0.1, answering Device, Media and Media2 operations from
//! the captures in `tests/data/onvif/`. It checks WS-Security digests
//! against its own (possibly skewed) clock, or demands HTTP Digest, and can
//! misbehave on purpose (silence, huge answers, broken XML, odd prefixes).
//!
//! It also serves the Events service: CreatePullPointSubscription hands out
//! a pull point on itself (`/onvif/pullpoint/N`), PullMessages long-polls
//! for notifications a test pushes ([`FakeCamera::push_motion`], ...),
//! Renew and Unsubscribe work, subscriptions expire, and
//! [`FakeCamera::reboot`] forgets them all so the next PullMessages faults.
//!
//! Written independently of the client: its own tag scanning and its own
//! digest arithmetic, so a bug in the client is not mirrored here.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the camera wants to be authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// WS-Security UsernameToken, `Created` within 5 s of the camera clock.
    WsSecurity,
    /// HTTP Digest with this algorithm (`MD5` or `SHA-256`), qop=auth.
    HttpDigest(&'static str),
}

/// Ways to misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Accepts connections and never answers.
    Silent,
    /// Answers GetSystemDateAndTime with a 2 MiB body.
    Huge {
        chunked: bool,
    },
    /// Answers GetDeviceInformation with cut-off XML.
    Malformed,
    /// Rewrites every prefix (`tds:` → `ns0:`, `tt:` → `ns1:`, `trt:` → `ns2:`,
    /// `SOAP-ENV:` → `S:`).
    OddPrefixes,
    /// Has no GetServices (ter:ActionNotSupported): the client must use GetCapabilities.
    NoGetServices,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub username: String,
    pub password: String,
    pub auth: Auth,
    /// Camera clock minus the real one.
    pub clock_skew: time::Duration,
    pub media2: bool,
    pub mode: Mode,
    /// Longest subscription the camera grants (it asks for less if the
    /// client asks for more); `None`: whatever was asked.
    pub max_subscription: Option<Duration>,
    /// Media profiles as (token, RTSP URI), e.g. a simcam's main and sub
    /// streams; empty: the captured single `main` profile.
    pub streams: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            username: "admin".into(),
            password: "porch light 42".into(),
            auth: Auth::WsSecurity,
            clock_skew: time::Duration::ZERO,
            media2: false,
            mode: Mode::Normal,
            max_subscription: None,
            streams: Vec::new(),
        }
    }
}

pub struct FakeCamera {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/onvif/device_service`
    pub xaddr: String,
    /// Operations received, in order (`GetProfiles`, `media2:GetProfiles`, ...),
    /// with `!` appended when authentication failed.
    pub log: Arc<Mutex<Vec<String>>>,
    events: Arc<Events>,
    task: tokio::task::JoinHandle<()>,
}

/// The camera's pull points.
#[derive(Default)]
struct Events {
    subs: Mutex<EventsState>,
    /// Woken when a notification is queued or subscriptions are dropped.
    changed: tokio::sync::Notify,
    /// The next PullMessages answer is cut-off XML.
    garble_next_pull: AtomicBool,
}

#[derive(Default)]
struct EventsState {
    next_id: u32,
    subs: BTreeMap<u32, Subscription>,
}

struct Subscription {
    queue: VecDeque<String>,
    expires: Instant,
}

impl Drop for FakeCamera {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCamera {
    pub async fn start(config: Config) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Events::default());
        let state = Arc::new(State {
            config,
            addr,
            log: log.clone(),
            nonces: Mutex::new(Vec::new()),
            events: events.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let _ = state.serve(stream).await;
                });
            }
        });
        FakeCamera {
            addr,
            xaddr: format!("http://{addr}/onvif/device_service"),
            log,
            events,
            task,
        }
    }

    pub fn operations(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many times `op` was received (authenticated).
    pub fn count(&self, op: &str) -> usize {
        self.operations().iter().filter(|o| *o == op).count()
    }

    /// Queues a raw `wsnt:NotificationMessage` (any XML fragment, using the
    /// prefixes `wsnt`, `tt`, `tns1`, `wsa5`) on every live subscription.
    pub fn push_raw(&self, notification: &str) {
        let mut state = self.events.subs.lock().unwrap();
        for sub in state.subs.values_mut() {
            sub.queue.push_back(notification.to_string());
        }
        drop(state);
        self.events.changed.notify_waiters();
    }

    /// A notification on `topic` with one Data item.
    pub fn push_event(&self, topic: &str, item: &str, active: bool) {
        let utc = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
        self.push_raw(&format!(
            r#"<wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic><wsnt:Message><tt:Message UtcTime="{utc}" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="000"/><tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source><tt:Data><tt:SimpleItem Name="{item}" Value="{active}"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage>"#
        ));
    }

    /// `tns1:RuleEngine/CellMotionDetector/Motion`, `IsMotion`.
    pub fn push_motion(&self, active: bool) {
        self.push_event(
            "tns1:RuleEngine/CellMotionDetector/Motion",
            "IsMotion",
            active,
        );
    }

    /// `tns1:RuleEngine/TamperDetector/Tamper`, `IsTamper`.
    pub fn push_tamper(&self, active: bool) {
        self.push_event("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper", active);
    }

    /// Forgets every subscription, as a rebooting camera does.
    pub fn reboot(&self) {
        self.events.subs.lock().unwrap().subs.clear();
        self.events.changed.notify_waiters();
    }

    /// Subscriptions alive now.
    pub fn subscriptions(&self) -> usize {
        let mut state = self.events.subs.lock().unwrap();
        let now = Instant::now();
        state.subs.retain(|_, s| s.expires > now);
        state.subs.len()
    }

    /// The next PullMessages answer is broken XML.
    pub fn garble_next_pull(&self) {
        self.events.garble_next_pull.store(true, Ordering::SeqCst);
    }
}

/// `PT60S`, `PT1M30S`, `PT0.5S` → duration (enough of xs:duration for tests).
fn parse_xs_duration(text: &str) -> Option<Duration> {
    let rest = text.trim().strip_prefix("PT")?;
    let mut total = 0.0f64;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                total += n * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    Some(Duration::from_secs_f64(total))
}

const EVENTS_NS: &str = r#"xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa5="http://www.w3.org/2005/08/addressing" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tev="http://www.onvif.org/ver10/events/wsdl" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tns1="http://www.onvif.org/ver10/topics""#;

struct State {
    config: Config,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    nonces: Mutex<Vec<String>>,
    events: Arc<Events>,
}

struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/onvif")
}

/// The text of the first element with this local name, any prefix.
pub fn tag_text(xml: &str, local: &str) -> Option<String> {
    let mut rest = xml;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start + 1..];
        let end = rest.find(['>', ' ', '/', '\t', '\n', '\r'])?;
        let name = &rest[..end];
        let name_local = name.rsplit(':').next().unwrap_or(name);
        if name_local == local && !name.starts_with('/') {
            let open_end = rest.find('>')?;
            if rest[..open_end].ends_with('/') {
                return Some(String::new());
            }
            let content = &rest[open_end + 1..];
            let close = content.find("</")?;
            return Some(content[..close].trim().to_string());
        }
    }
}

/// The local name of the first element inside `Body`.
fn operation(xml: &str) -> Option<String> {
    let body_at = xml.find(":Body>").or_else(|| xml.find("<Body>"))?;
    let rest = &xml[body_at..];
    let rest = &rest[rest.find('>')? + 1..];
    let rest = &rest[rest.find('<')? + 1..];
    let end = rest.find(['>', ' ', '/'])?;
    let name = &rest[..end];
    Some(name.rsplit(':').next().unwrap_or(name).to_string())
}

/// A Media (ver10) answer envelope around `body`.
fn media_answer(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fault(subcode: &str, reason: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><SOAP-ENV:Body><SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>{subcode}</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">{reason}</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

impl State {
    fn camera_now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.config.clock_skew
    }

    /// GetProfiles for `config.streams`: one H.264 profile per stream.
    fn profiles(&self) -> String {
        let profiles: String = self
            .config
            .streams
            .iter()
            .map(|(token, _)| {
                format!(
                    "<trt:Profiles fixed=\"true\" token=\"{token}\"><tt:Name>{token} stream</tt:Name><tt:VideoEncoderConfiguration token=\"venc_{token}\"><tt:Name>venc_{token}</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality></tt:VideoEncoderConfiguration></trt:Profiles>"
                )
            })
            .collect();
        media_answer(&format!(
            "<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"
        ))
    }

    fn fixture(&self, path: &str) -> String {
        let text = std::fs::read_to_string(data_dir().join(path)).expect(path);
        text.replace("192.168.68.111", &self.addr.to_string())
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut headers = Vec::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let request = Request {
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let mut stream = reader.into_inner();
        // Like real cameras, check the login when the request arrives, not
        // after holding a long poll (the token's Created would be stale).
        let pull_auth = (operation(&request.body).as_deref() == Some("PullMessages"))
            .then(|| self.authenticate(&request));
        if matches!(pull_auth, Some(Ok(()))) {
            self.wait_for_messages(&request).await;
        }
        if self.config.mode == Mode::Silent {
            tokio::time::sleep(Duration::from_secs(60)).await;
            return Ok(());
        }
        let (status, extra_headers, body) = match pull_auth {
            Some(Err(refusal)) => {
                self.log.lock().unwrap().push("PullMessages!".into());
                refusal
            }
            _ => self.respond(&request),
        };
        if let Mode::Huge { chunked } = self.config.mode {
            if body.contains("GetSystemDateAndTimeResponse") {
                let filler = format!("<!-- {} -->", "x".repeat(2 << 20));
                let big = body.replace("<SOAP-ENV:Body>", &format!("<SOAP-ENV:Body>{filler}"));
                let head = if chunked {
                    "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
                } else {
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\n\r\n", big.len())
                };
                stream.write_all(head.as_bytes()).await?;
                if chunked {
                    for chunk in big.as_bytes().chunks(64 * 1024) {
                        stream
                            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .await?;
                        stream.write_all(chunk).await?;
                        stream.write_all(b"\r\n").await?;
                    }
                    stream.write_all(b"0\r\n\r\n").await?;
                } else {
                    stream.write_all(big.as_bytes()).await?;
                }
                return stream.shutdown().await;
            }
        }
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Error",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/soap+xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for h in extra_headers {
            head.push_str(&h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    }

    fn respond(&self, request: &Request) -> (u16, Vec<String>, String) {
        let op = operation(&request.body).unwrap_or_default();
        let media2 = request.path.ends_with("/media2");
        let name = if media2 {
            format!("media2:{op}")
        } else {
            op.clone()
        };

        // A long-polled PullMessages was checked on arrival.
        if op != "GetSystemDateAndTime" && op != "PullMessages" {
            if let Err((status, headers, body)) = self.authenticate(request) {
                self.log.lock().unwrap().push(format!("{name}!"));
                return (status, headers, body);
            }
        }
        self.log.lock().unwrap().push(name);

        if let Some(answer) = self.events_answer(request, &op) {
            return answer;
        }

        let body = match (media2, op.as_str()) {
            (_, "GetSystemDateAndTime") => self.date_and_time(),
            (false, "GetDeviceInformation") if self.config.mode == Mode::Malformed => {
                "<?xml version=\"1.0\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\"><SOAP-ENV:Body><tds:GetDeviceInformationResponse><tds:Manufacturer>Mock".to_string()
            }
            (false, "GetDeviceInformation") => self.fixture("agsh-onvif/GetDeviceInformation.xml"),
            (false, "GetServices") if self.config.mode == Mode::NoGetServices => {
                return (
                    400,
                    vec![],
                    fault("ter:ActionNotSupported", "Optional Action Not Implemented"),
                )
            }
            (false, "GetServices") => {
                let mut services = self.fixture("agsh-onvif/GetServices.xml");
                if self.config.media2 {
                    let entry = format!(
                        "<tds:Service><tds:Namespace>http://www.onvif.org/ver20/media/wsdl</tds:Namespace><tds:XAddr>http://{}/onvif/media2</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>",
                        self.addr
                    );
                    services = services.replace(
                        "</tds:GetServicesResponse>",
                        &format!("{entry}</tds:GetServicesResponse>"),
                    );
                }
                services
            }
            (false, "GetCapabilities") => self.fixture("agsh-onvif/GetCapabilities.xml"),
            (false, "GetScopes") => (
                r#"<?xml version="1.0"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tds:GetScopesResponse><tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>onvif://www.onvif.org/type/video_encoder</tt:ScopeItem></tds:Scopes><tds:Scopes><tt:ScopeDef>Configurable</tt:ScopeDef><tt:ScopeItem>onvif://www.onvif.org/name/Front%20Porch</tt:ScopeItem></tds:Scopes></tds:GetScopesResponse></env:Body></env:Envelope>"#
            )
            .to_string(),
            (false, "GetProfiles") if !self.config.streams.is_empty() => self.profiles(),
            (false, "GetProfiles") => self.fixture("agsh-onvif/GetProfiles.xml"),
            (false, "GetStreamUri") if !self.config.streams.is_empty() => {
                let token = tag_text(&request.body, "ProfileToken").unwrap_or_default();
                match self.config.streams.iter().find(|(t, _)| *t == token) {
                    Some((_, uri)) => media_answer(&format!(
                        "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>"
                    )),
                    None => return (500, vec![], fault("ter:InvalidArgVal/ter:NoProfile", "no such profile")),
                }
            }
            (false, "GetStreamUri") => {
                assert_eq!(tag_text(&request.body, "Stream").as_deref(), Some("RTP-Unicast"));
                assert_eq!(tag_text(&request.body, "Protocol").as_deref(), Some("RTSP"));
                assert_eq!(tag_text(&request.body, "ProfileToken").as_deref(), Some("main"));
                self.fixture("agsh-onvif/GetStreamUri.xml")
            }
            (false, "GetSnapshotUri") => self.fixture("agsh-onvif/GetSnapshotUri.xml"),
            (true, "GetProfiles") => {
                assert_eq!(tag_text(&request.body, "Type").as_deref(), Some("All"));
                self.fixture("handwritten/media2/GetProfiles.xml")
            }
            (true, "GetStreamUri") => {
                assert_eq!(tag_text(&request.body, "Protocol").as_deref(), Some("RTSP"));
                self.fixture("handwritten/media2/GetStreamUri.xml")
            }
            // A camera without snapshots on Media2.
            (true, "GetSnapshotUri") => {
                return (
                    500,
                    vec![],
                    fault("ter:OptionalActionNotImplemented", "no snapshots"),
                )
            }
            _ => return (400, vec![], fault("ter:ActionNotSupported", "not here")),
        };
        let body = if self.config.mode == Mode::OddPrefixes {
            let mut b = body;
            for (from, to) in [
                ("tds", "ns0"),
                ("tt", "ns1"),
                ("trt", "ns2"),
                ("SOAP-ENV", "S"),
            ] {
                b = b
                    .replace(&format!("xmlns:{from}="), &format!("xmlns:{to}="))
                    .replace(&format!("<{from}:"), &format!("<{to}:"))
                    .replace(&format!("</{from}:"), &format!("</{to}:"));
            }
            b
        } else {
            body
        };
        (200, vec![], body)
    }

    /// The pull point id in `/onvif/pullpoint/N`.
    fn pull_point(path: &str) -> Option<u32> {
        path.strip_prefix("/onvif/pullpoint/")?.parse().ok()
    }

    /// Long-polls a PullMessages until its subscription has messages, is
    /// gone, or its Timeout (at most 10 s) passes.
    async fn wait_for_messages(&self, request: &Request) {
        let Some(id) = Self::pull_point(&request.path) else {
            return;
        };
        let timeout = tag_text(&request.body, "Timeout")
            .and_then(|t| parse_xs_duration(&t))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(10));
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.events.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.events.subs.lock().unwrap();
                match state.subs.get(&id) {
                    Some(sub) if sub.queue.is_empty() && sub.expires > Instant::now() => {}
                    _ => return,
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    fn events_time(&self, at: Instant) -> String {
        let ahead = at.saturating_duration_since(Instant::now());
        (self.camera_now() + ahead).format(&Rfc3339).unwrap()
    }

    fn events_envelope(&self, body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope {EVENTS_NS}><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        )
    }

    /// CreatePullPointSubscription, PullMessages, Renew, Unsubscribe; `None`
    /// for other operations.
    fn events_answer(&self, request: &Request, op: &str) -> Option<(u16, Vec<String>, String)> {
        let gone = || {
            (
                400,
                vec![],
                fault(
                    "wsrf-rw:ResourceUnknownFault",
                    "no such subscription (the camera may have restarted)",
                ),
            )
        };
        let now = Instant::now();
        match op {
            "CreatePullPointSubscription" => {
                let asked = tag_text(&request.body, "InitialTerminationTime")
                    .and_then(|t| parse_xs_duration(&t))
                    .unwrap_or(Duration::from_secs(60));
                let granted = self.config.max_subscription.map_or(asked, |m| asked.min(m));
                let mut state = self.events.subs.lock().unwrap();
                state.next_id += 1;
                let id = state.next_id;
                let expires = now + granted;
                state.subs.insert(
                    id,
                    Subscription {
                        queue: VecDeque::new(),
                        expires,
                    },
                );
                let body = format!(
                    "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>http://{}/onvif/pullpoint/{id}</wsa5:Address></tev:SubscriptionReference><wsnt:CurrentTime>{}</wsnt:CurrentTime><wsnt:TerminationTime>{}</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>",
                    self.addr,
                    self.events_time(now),
                    self.events_time(expires)
                );
                Some((200, vec![], self.events_envelope(&body)))
            }
            "PullMessages" | "Renew" | "Unsubscribe" => {
                let Some(id) = Self::pull_point(&request.path) else {
                    return Some((400, vec![], fault("ter:ActionNotSupported", "not here")));
                };
                // WS-Addressing: the To header must name this pull point.
                let to = format!("http://{}{}", self.addr, request.path);
                if tag_text(&request.body, "To").as_deref() != Some(to.as_str()) {
                    return Some((
                        400,
                        vec![],
                        fault("wsa5:InvalidAddressingHeader", "wrong or missing wsa:To"),
                    ));
                }
                let mut state = self.events.subs.lock().unwrap();
                state.subs.retain(|_, s| s.expires > now);
                let Some(sub) = state.subs.get_mut(&id) else {
                    return Some(gone());
                };
                let body = match op {
                    "PullMessages" => {
                        if self.events.garble_next_pull.swap(false, Ordering::SeqCst) {
                            return Some((
                                200,
                                vec![],
                                "<?xml version=\"1.0\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\"><SOAP-ENV:Body><tev:PullMessagesResponse>".into(),
                            ));
                        }
                        let limit: usize = tag_text(&request.body, "MessageLimit")
                            .and_then(|l| l.parse().ok())
                            .unwrap_or(1);
                        let n = sub.queue.len().min(limit);
                        let messages: String = sub.queue.drain(..n).collect();
                        format!(
                            "<tev:PullMessagesResponse><tev:CurrentTime>{}</tev:CurrentTime><tev:TerminationTime>{}</tev:TerminationTime>{messages}</tev:PullMessagesResponse>",
                            self.events_time(now),
                            self.events_time(sub.expires)
                        )
                    }
                    "Renew" => {
                        let asked = tag_text(&request.body, "TerminationTime")
                            .and_then(|t| parse_xs_duration(&t))
                            .unwrap_or(Duration::from_secs(60));
                        let granted = self.config.max_subscription.map_or(asked, |m| asked.min(m));
                        sub.expires = now + granted;
                        format!(
                            "<wsnt:RenewResponse><wsnt:TerminationTime>{}</wsnt:TerminationTime><wsnt:CurrentTime>{}</wsnt:CurrentTime></wsnt:RenewResponse>",
                            self.events_time(sub.expires),
                            self.events_time(now)
                        )
                    }
                    _ => {
                        state.subs.remove(&id);
                        "<wsnt:UnsubscribeResponse/>".to_string()
                    }
                };
                Some((200, vec![], self.events_envelope(&body)))
            }
            _ => None,
        }
    }

    fn date_and_time(&self) -> String {
        let t = self.camera_now();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><SOAP-ENV:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>{}</tt:Hour><tt:Minute>{}</tt:Minute><tt:Second>{}</tt:Second></tt:Time><tt:Date><tt:Year>{}</tt:Year><tt:Month>{}</tt:Month><tt:Day>{}</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#,
            t.hour(),
            t.minute(),
            t.second(),
            t.year(),
            u8::from(t.month()),
            t.day()
        )
    }

    fn authenticate(&self, request: &Request) -> Result<(), (u16, Vec<String>, String)> {
        match self.config.auth {
            Auth::WsSecurity => self.check_ws_security(&request.body).map_err(|why| {
                (400, vec![], fault("ter:NotAuthorized", &format!("Sender not Authorized: {why}")))
            }),
            Auth::HttpDigest(alg) => self.check_digest(request, alg).map_err(|_| {
                let nonce = hex(&rand::random::<[u8; 16]>());
                self.nonces.lock().unwrap().push(nonce.clone());
                (
                    401,
                    vec![format!(
                        "WWW-Authenticate: Digest realm=\"fake-camera\", qop=\"auth\", nonce=\"{nonce}\", opaque=\"0pq\", algorithm={alg}"
                    )],
                    String::new(),
                )
            }),
        }
    }

    fn check_ws_security(&self, body: &str) -> Result<(), String> {
        let user = tag_text(body, "Username").ok_or("no UsernameToken")?;
        let digest = tag_text(body, "Password").ok_or("no Password")?;
        let nonce = tag_text(body, "Nonce").ok_or("no Nonce")?;
        let created = tag_text(body, "Created").ok_or("no Created")?;
        if user != self.config.username {
            return Err("unknown user".into());
        }
        let created_at = OffsetDateTime::parse(&created, &Rfc3339).map_err(|e| e.to_string())?;
        let off = (created_at - self.camera_now()).abs();
        if off > time::Duration::seconds(5) {
            return Err(format!("Created {created} is {off} off the camera clock"));
        }
        let nonce = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .map_err(|e| e.to_string())?;
        let mut h = Sha1::new();
        h.update(&nonce);
        h.update(created.as_bytes());
        h.update(self.config.password.as_bytes());
        let expected = base64::engine::general_purpose::STANDARD.encode(h.finalize());
        if expected != digest {
            return Err("digest mismatch".into());
        }
        Ok(())
    }

    fn check_digest(&self, request: &Request, alg: &str) -> Result<(), String> {
        let header = request
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
            .ok_or("no Authorization")?;
        let params = header.strip_prefix("Digest ").ok_or("not Digest")?;
        let get = |k: &str| -> Option<String> {
            params.split(", ").find_map(|kv| {
                let (n, v) = kv.split_once('=')?;
                (n.trim() == k).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        let nonce = get("nonce").ok_or("no nonce")?;
        if !self.nonces.lock().unwrap().contains(&nonce) {
            return Err("stale nonce".into());
        }
        if get("username").as_deref() != Some(&self.config.username) {
            return Err("user".into());
        }
        if get("algorithm").as_deref() != Some(alg) || get("opaque").as_deref() != Some("0pq") {
            return Err("algorithm or opaque".into());
        }
        let uri = get("uri").ok_or("uri")?;
        if uri != request.path {
            return Err("uri".into());
        }
        let h = |s: String| match alg {
            "SHA-256" => hex(&Sha256::digest(s.as_bytes())),
            _ => hex(&Md5::digest(s.as_bytes())),
        };
        let ha1 = h(format!(
            "{}:fake-camera:{}",
            self.config.username, self.config.password
        ));
        let ha2 = h(format!("POST:{uri}"));
        let expected = h(format!(
            "{ha1}:{nonce}:{}:{}:auth:{ha2}",
            get("nc").ok_or("nc")?,
            get("cnonce").ok_or("cnonce")?
        ));
        if get("response").as_deref() != Some(expected.as_str()) {
            return Err("response".into());
        }
        Ok(())
    }
}
