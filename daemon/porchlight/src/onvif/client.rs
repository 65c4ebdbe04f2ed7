//! `OnvifClient`: one camera's device service, with its clock offset and
//! service addresses learned at `connect`.
//!
//! Auth order: WS-Security UsernameToken (PasswordDigest, `Created` on the
//! camera's clock) in every call but GetSystemDateAndTime; HTTP Digest when
//! the camera answers 401.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::device::{self, CameraClock, DeviceInformation, ServiceAddresses};
use super::error::{ErrorKind, OnvifError};
use super::http::{Credentials, HttpClient, HttpUrl, DEFAULT_MAX_BODY, DEFAULT_TIMEOUT};
use super::media::{self, MediaVersion, Profile};
use super::soap::{self, UsernameToken};
use super::xml::Element;

/// Limits for every call a client makes.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Whole-call limit (connect, answer, HTTP Digest retry). Default 5 s.
    pub timeout: Duration,
    /// Largest answer accepted. Default 1 MiB.
    pub max_response: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            max_response: DEFAULT_MAX_BODY,
        }
    }
}

/// A connected camera.
#[derive(Clone, Debug)]
pub struct OnvifClient {
    camera: String,
    device: HttpUrl,
    http: HttpClient,
    credentials: Option<Credentials>,
    clock: Option<CameraClock>,
    clock_offset: time::Duration,
    media: Option<HttpUrl>,
    media2: Option<HttpUrl>,
    events: Option<HttpUrl>,
}

/// Everything `porchlight discover` prints about one camera.
#[derive(Clone, Debug)]
pub struct CameraDescription {
    pub address: String,
    /// From the `onvif://www.onvif.org/name/` scope, if any.
    pub name: Option<String>,
    pub info: DeviceInformation,
    /// Camera clock minus ours.
    pub clock_offset: time::Duration,
    pub profiles: Vec<ProfileDescription>,
}

#[derive(Clone, Debug)]
pub struct ProfileDescription {
    pub profile: Profile,
    /// `None` when the camera has none for this profile (fault or unsupported).
    pub stream_uri: Option<String>,
    pub snapshot_uri: Option<String>,
}

impl OnvifClient {
    /// Connects with default limits (5 s per call, 1 MiB per answer).
    pub async fn connect(
        xaddr: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<OnvifClient, OnvifError> {
        Self::connect_with(xaddr, credentials, ClientOptions::default()).await
    }

    /// Reads the camera's clock (for the WS-Security offset), then where its
    /// services are (GetServices, or GetCapabilities on older cameras).
    pub async fn connect_with(
        xaddr: &str,
        credentials: Option<(&str, &str)>,
        options: ClientOptions,
    ) -> Result<OnvifClient, OnvifError> {
        let device = HttpUrl::parse(xaddr).map_err(|k| OnvifError::new(xaddr, "connect", k))?;
        let mut client = OnvifClient {
            camera: xaddr.to_string(),
            device: device.clone(),
            http: HttpClient {
                timeout: options.timeout,
                max_body: options.max_response,
            },
            credentials: credentials.map(|(u, p)| Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            clock: None,
            clock_offset: time::Duration::ZERO,
            media: None,
            media2: None,
            events: None,
        };

        // The clock first, unauthenticated (the spec requires cameras to allow it).
        let before = OffsetDateTime::now_utc();
        let (action, body) = device::GET_SYSTEM_DATE_AND_TIME;
        match client
            .call(&device, "GetSystemDateAndTime", action, body, false)
            .await
            .and_then(|r| {
                device::parse_system_date_and_time(&r)
                    .map_err(|k| client.error("GetSystemDateAndTime", k))
            }) {
            Ok(clock) => {
                let after = OffsetDateTime::now_utc();
                let local_mid = before + (after - before) / 2;
                client.clock_offset = clock.utc - local_mid;
                client.clock = Some(clock);
            }
            // A camera that cannot tell the time still streams; go on with our clock.
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::Fault { .. }
                        | ErrorKind::Unsupported(_)
                        | ErrorKind::Unexpected(_)
                        | ErrorKind::Xml(_)
                ) =>
            {
                tracing::warn!(camera = %client.camera, error = %e, "camera clock unknown; WS-Security uses the local clock");
            }
            Err(e) => return Err(e),
        }

        let (action, body) = device::GET_SERVICES;
        let addresses = match client
            .call(&device, "GetServices", action, body, true)
            .await
        {
            Ok(r) => device::parse_services(&r)
                .map(|s| ServiceAddresses::from_services(&s))
                .map_err(|k| client.error("GetServices", k))?,
            Err(e) if matches!(e.kind, ErrorKind::Unsupported(_) | ErrorKind::Fault { .. }) => {
                let (action, body) = device::GET_CAPABILITIES;
                let r = client
                    .call(&device, "GetCapabilities", action, body, true)
                    .await?;
                device::parse_capabilities(&r).map_err(|k| client.error("GetCapabilities", k))?
            }
            Err(e) => return Err(e),
        };
        client.media = addresses.media.as_deref().map(|a| client.rebase(a));
        client.media2 = addresses.media2.as_deref().map(|a| client.rebase(a));
        client.events = addresses.events.as_deref().map(|a| client.rebase(a));
        Ok(client)
    }

    /// The address given to `connect`.
    pub fn address(&self) -> &str {
        &self.camera
    }

    /// Camera clock minus local clock, measured at `connect` (zero when the
    /// camera would not say). Also the clock skew recorded in evidence.
    pub fn clock_offset(&self) -> time::Duration {
        self.clock_offset
    }

    /// What GetSystemDateAndTime said at `connect`.
    pub fn camera_clock(&self) -> Option<&CameraClock> {
        self.clock.as_ref()
    }

    /// The Media (ver10) service, if the camera has one.
    pub fn media_address(&self) -> Option<&HttpUrl> {
        self.media.as_ref()
    }

    /// The Media2 (ver20) service, if the camera has one.
    pub fn media2_address(&self) -> Option<&HttpUrl> {
        self.media2.as_ref()
    }

    pub fn events_address(&self) -> Option<&HttpUrl> {
        self.events.as_ref()
    }

    pub async fn device_information(&self) -> Result<DeviceInformation, OnvifError> {
        let (action, body) = device::GET_DEVICE_INFORMATION;
        let r = self
            .call(&self.device, "GetDeviceInformation", action, body, true)
            .await?;
        device::parse_device_information(&r).map_err(|k| self.error("GetDeviceInformation", k))
    }

    /// The camera's name from its scopes, if it sets one.
    pub async fn name(&self) -> Result<Option<String>, OnvifError> {
        let (action, body) = device::GET_SCOPES;
        let r = self
            .call(&self.device, "GetScopes", action, body, true)
            .await?;
        device::parse_scopes_name(&r).map_err(|k| self.error("GetScopes", k))
    }

    /// Media profiles: from Media2 when offered (H.265 shows up there),
    /// otherwise, or if Media2 refuses, from Media.
    pub async fn profiles(&self) -> Result<Vec<Profile>, OnvifError> {
        if let Some(media2) = &self.media2 {
            let (action, body) = media::GET_PROFILES2;
            match self
                .call(media2, "GetProfiles (Media2)", action, body, true)
                .await
            {
                Ok(r) => {
                    return media::parse_profiles2(&r)
                        .map_err(|k| self.error("GetProfiles (Media2)", k))
                }
                Err(e) if e.is_unsupported() && self.media.is_some() => {}
                Err(e) => return Err(e),
            }
        }
        let media = self.media_service("GetProfiles")?;
        let (action, body) = media::GET_PROFILES;
        let r = self.call(media, "GetProfiles", action, body, true).await?;
        media::parse_profiles(&r).map_err(|k| self.error("GetProfiles", k))
    }

    /// RTSP URI (RTP unicast) of a profile.
    pub async fn stream_uri(&self, profile: &Profile) -> Result<String, OnvifError> {
        let (service, op) = self.service_for(profile, "GetStreamUri")?;
        let (action, body) = media::get_stream_uri(profile.version, &profile.token);
        let r = self.call(service, op, action, &body, true).await?;
        media::parse_uri(&r, "GetStreamUri").map_err(|k| self.error(op, k))
    }

    /// JPEG snapshot URI of a profile.
    pub async fn snapshot_uri(&self, profile: &Profile) -> Result<String, OnvifError> {
        let (service, op) = self.service_for(profile, "GetSnapshotUri")?;
        let (action, body) = media::get_snapshot_uri(profile.version, &profile.token);
        let r = self.call(service, op, action, &body, true).await?;
        media::parse_uri(&r, "GetSnapshotUri").map_err(|k| self.error(op, k))
    }

    /// Name, make, model, firmware, serial, clock offset, and each profile
    /// with its stream and snapshot URIs.
    pub async fn describe(&self) -> Result<CameraDescription, OnvifError> {
        let info = self.device_information().await?;
        let name = match self.name().await {
            Ok(n) => n,
            Err(e) if tolerable(&e) => None,
            Err(e) => return Err(e),
        };
        let mut profiles = Vec::new();
        for profile in self.profiles().await? {
            let stream_uri = match self.stream_uri(&profile).await {
                Ok(u) => Some(u),
                Err(e) if tolerable(&e) => None,
                Err(e) => return Err(e),
            };
            let snapshot_uri = match self.snapshot_uri(&profile).await {
                Ok(u) => Some(u),
                Err(e) if tolerable(&e) => None,
                Err(e) => return Err(e),
            };
            profiles.push(ProfileDescription {
                profile,
                stream_uri,
                snapshot_uri,
            });
        }
        Ok(CameraDescription {
            address: self.camera.clone(),
            name,
            info,
            clock_offset: self.clock_offset,
            profiles,
        })
    }

    fn media_service(&self, op: &'static str) -> Result<&HttpUrl, OnvifError> {
        self.media.as_ref().ok_or_else(|| {
            self.error(
                op,
                ErrorKind::Unsupported("the camera lists no Media service".into()),
            )
        })
    }

    fn service_for(
        &self,
        profile: &Profile,
        op: &'static str,
    ) -> Result<(&HttpUrl, &'static str), OnvifError> {
        match profile.version {
            MediaVersion::Media1 => Ok((self.media_service(op)?, op)),
            MediaVersion::Media2 => {
                let op2 = if op == "GetStreamUri" {
                    "GetStreamUri (Media2)"
                } else {
                    "GetSnapshotUri (Media2)"
                };
                let service = self.media2.as_ref().ok_or_else(|| {
                    self.error(op2, ErrorKind::Unsupported("no Media2 service".into()))
                })?;
                Ok((service, op2))
            }
        }
    }

    pub(super) fn error(&self, operation: &str, kind: ErrorKind) -> OnvifError {
        OnvifError::new(&self.camera, operation, kind)
    }

    /// A service address as the camera gave it, except that an unusable host
    /// (`0.0.0.0`, a bad URL) is replaced by the one we connected to.
    pub(super) fn rebase(&self, xaddr: &str) -> HttpUrl {
        match HttpUrl::parse(xaddr) {
            Ok(u) if u.host != "0.0.0.0" && u.host != "::" => u,
            Ok(u) => HttpUrl {
                path: u.path,
                ..self.device.clone()
            },
            Err(_) => self.device.clone(),
        }
    }

    /// One SOAP call; returns the element inside the Body.
    async fn call(
        &self,
        url: &HttpUrl,
        operation: &str,
        action: &str,
        body: &str,
        ws_security: bool,
    ) -> Result<Element, OnvifError> {
        self.call_with_headers(
            url,
            operation,
            action,
            body,
            ws_security,
            "",
            Duration::ZERO,
        )
        .await
    }

    /// One SOAP call with extra header blocks (WS-Addressing for events) and
    /// `extra_time` on top of the call limit (for a PullMessages the camera
    /// may hold open for its Timeout).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn call_with_headers(
        &self,
        url: &HttpUrl,
        operation: &str,
        action: &str,
        body: &str,
        ws_security: bool,
        headers: &str,
        extra_time: Duration,
    ) -> Result<Element, OnvifError> {
        let token = match (&self.credentials, ws_security) {
            (Some(c), true) => Some(UsernameToken::new(
                &c.username,
                &c.password,
                OffsetDateTime::now_utc() + self.clock_offset,
            )),
            _ => None,
        };
        let envelope = soap::envelope_with_headers(body, token.as_ref(), headers);
        let http;
        let http = if extra_time.is_zero() {
            &self.http
        } else {
            http = HttpClient {
                timeout: self.http.timeout + extra_time,
                ..self.http.clone()
            };
            &http
        };
        let response = http
            .post_soap(url, action, &envelope, self.credentials.as_ref())
            .await
            .map_err(|k| self.error(operation, k))?;
        let envelope = soap::check_response(&response).map_err(|k| self.error(operation, k))?;
        into_body_content(envelope).map_err(|k| self.error(operation, k))
    }
}

/// Errors `describe` notes as "none" instead of failing.
fn tolerable(e: &OnvifError) -> bool {
    matches!(
        e.kind,
        ErrorKind::Unsupported(_) | ErrorKind::Fault { .. } | ErrorKind::Unexpected(_)
    )
}

fn into_body_content(envelope: Element) -> Result<Element, ErrorKind> {
    soap::body_content(&envelope)?;
    let body = envelope
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .and_then(|b| b.children.into_iter().next());
    body.ok_or_else(|| ErrorKind::Unexpected("empty SOAP Body".into()))
}

impl fmt::Display for CameraDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {}", i.manufacturer, i.model));
        writeln!(f, "{name} ({})", self.address)?;
        writeln!(f, "  make:     {}", i.manufacturer)?;
        writeln!(f, "  model:    {}", i.model)?;
        writeln!(f, "  firmware: {}", i.firmware_version)?;
        writeln!(f, "  serial:   {}", i.serial_number)?;
        writeln!(
            f,
            "  clock:    {:+.0} s from ours",
            self.clock_offset.as_seconds_f64()
        )?;
        for p in &self.profiles {
            let pr = &p.profile;
            write!(f, "  profile {} ({})", pr.token, pr.name)?;
            match &pr.video {
                Some(v) => {
                    write!(f, ": {} {}x{}", v.codec, v.width, v.height)?;
                    if let Some(fps) = v.fps {
                        write!(f, " @ {fps} fps")?;
                    }
                    if let Some(kbps) = v.bitrate_kbps {
                        write!(f, ", {kbps} kbit/s")?;
                    }
                }
                None => write!(f, ": no video")?,
            }
            if let Some(a) = &pr.audio {
                write!(f, ", audio {}", a.encoding)?;
            }
            writeln!(f)?;
            if let Some(u) = &p.stream_uri {
                writeln!(f, "    stream:   {u}")?;
            }
            if let Some(u) = &p.snapshot_uri {
                writeln!(f, "    snapshot: {u}")?;
            }
        }
        Ok(())
    }
}
