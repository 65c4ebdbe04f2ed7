//! Asking a discovered device what is needed to record it: who it is
//! (GetDeviceInformation), its profiles (GetProfiles) and the stream URI of
//! the chosen main and sub profiles (GetStreamUri), and its clock skew.

use crate::onvif::{DeviceInformation, OnvifClient, OnvifError};

/// Why a device could not be asked; each names what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the camera refused the username or password ({0})")]
    WrongCredentials(String),
    #[error("cannot talk ONVIF to the camera at {addresses}: {error}")]
    Unreachable { addresses: String, error: String },
    #[error("the camera has no profile `{token}` for the {which} stream (it has: {available})")]
    UnknownProfile {
        which: &'static str,
        token: String,
        available: String,
    },
    #[error("main and sub must be different profiles (both are `{0}`)")]
    SameProfile(String),
    #[error("the camera has no media profiles")]
    NoProfiles,
    #[error("the camera gave no usable RTSP stream URI for profile `{profile}`: {error}")]
    StreamUri { profile: String, error: String },
}

/// What a device told us.
#[derive(Clone, Debug)]
pub struct DeviceAnswer {
    /// The device service address that answered.
    pub onvif: String,
    pub info: Option<DeviceInformation>,
    /// Camera clock minus ours.
    pub clock_skew_ms: i64,
    pub main_profile: String,
    pub sub_profile: Option<String>,
    pub url: String,
    pub sub_url: Option<String>,
}

/// Connects to the first of `xaddrs` that answers (wrong credentials stop
/// the search: the same device answers on all of them).
pub async fn connect(
    xaddrs: &[String],
    credentials: Option<(&str, &str)>,
) -> Result<OnvifClient, AskError> {
    let mut last: Option<OnvifError> = None;
    for xaddr in xaddrs {
        match OnvifClient::connect(xaddr, credentials).await {
            Ok(client) => return Ok(client),
            Err(e) if e.is_wrong_credentials() => {
                return Err(AskError::WrongCredentials(e.to_string()))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(AskError::Unreachable {
        addresses: xaddrs.join(", "),
        error: last.map_or_else(|| "it announced no address".into(), |e| e.to_string()),
    })
}

/// Asks for the streams of `main` (default: the first profile) and `sub`
/// (default: none).
pub async fn ask(
    xaddrs: &[String],
    credentials: Option<(&str, &str)>,
    main: Option<&str>,
    sub: Option<&str>,
) -> Result<DeviceAnswer, AskError> {
    let client = connect(xaddrs, credentials).await?;
    let refused = |e: OnvifError| {
        if e.is_wrong_credentials() {
            AskError::WrongCredentials(e.to_string())
        } else {
            AskError::Unreachable {
                addresses: client.address().to_string(),
                error: e.to_string(),
            }
        }
    };
    let info = match client.device_information().await {
        Ok(info) => Some(info),
        Err(e) if e.is_wrong_credentials() => return Err(refused(e)),
        Err(e) => {
            tracing::warn!(camera = %client.address(), error = %e, "no device information; matching by endpoint only");
            None
        }
    };
    let profiles = client.profiles().await.map_err(refused)?;
    let available = || {
        profiles
            .iter()
            .map(|p| format!("`{}` ({})", p.token, p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |which: &'static str, token: &str| {
        profiles
            .iter()
            .find(|p| p.token == token)
            .ok_or_else(|| AskError::UnknownProfile {
                which,
                token: token.to_string(),
                available: available(),
            })
    };
    let main_profile = match main {
        Some(token) => find("main", token)?,
        None => profiles.first().ok_or(AskError::NoProfiles)?,
    };
    let sub_profile = sub.map(|token| find("sub", token)).transpose()?;
    if let Some(sub) = sub_profile {
        if sub.token == main_profile.token {
            return Err(AskError::SameProfile(sub.token.clone()));
        }
    }
    let uri = |profile: &crate::onvif::Profile| {
        let client = &client;
        let profile = profile.clone();
        async move {
            let text = client
                .stream_uri(&profile)
                .await
                .map_err(|e| AskError::StreamUri {
                    profile: profile.token.clone(),
                    error: e.to_string(),
                })?;
            clean_stream_uri(&text).map_err(|error| AskError::StreamUri {
                profile: profile.token.clone(),
                error,
            })
        }
    };
    let url = uri(main_profile).await?;
    let sub_url = match sub_profile {
        Some(p) => Some(uri(p).await?),
        None => None,
    };
    Ok(DeviceAnswer {
        onvif: client.address().to_string(),
        info,
        clock_skew_ms: client.clock_offset().whole_milliseconds() as i64,
        main_profile: main_profile.token.clone(),
        sub_profile: sub_profile.map(|p| p.token.clone()),
        url,
        sub_url,
    })
}

/// An rtsp:// URI without credentials in it (some cameras embed them; the
/// login is kept apart, out of logs).
pub fn clean_stream_uri(text: &str) -> Result<String, String> {
    let mut url = crate::config::parse_rtsp_url(text.trim())?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_uris_lose_embedded_logins_and_must_be_rtsp() {
        assert_eq!(
            clean_stream_uri(" rtsp://admin:pw@10.0.0.5:554/main ").unwrap(),
            "rtsp://10.0.0.5:554/main"
        );
        assert!(clean_stream_uri("http://10.0.0.5/x").is_err());
        assert!(clean_stream_uri("not a url").is_err());
    }
}
