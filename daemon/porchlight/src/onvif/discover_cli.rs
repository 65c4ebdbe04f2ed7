//! `porchlight discover`: finds ONVIF cameras on the LAN and, given
//! credentials, asks each for its make, model and streams, so a newcomer can
//! copy the RTSP URL into the config instead of digging through a manual.

use std::fmt::Write as _;
use std::time::Duration;

use super::discovery::{probe, DiscoveredDevice, ProbeOptions};
use super::OnvifClient;

/// What to look for and how to log in.
pub struct DiscoverArgs {
    pub interfaces: Vec<String>,
    pub timeout: Duration,
    pub credentials: Option<(String, String)>,
}

/// Probes, then describes each camera; one camera's failure is reported in
/// its own section and never stops the others.
pub async fn run(args: DiscoverArgs) -> anyhow::Result<String> {
    let options = ProbeOptions {
        interfaces: args.interfaces,
        timeout: args.timeout,
        ..ProbeOptions::default()
    };
    let devices = probe(&options).await?;
    let mut out = String::new();
    if devices.is_empty() {
        let _ = writeln!(
            out,
            "no ONVIF cameras answered within {:.1} s (is ONVIF enabled on them, and are they on this network?)",
            args.timeout.as_secs_f64()
        );
        return Ok(out);
    }
    let _ = writeln!(out, "found {} ONVIF camera(s)", devices.len());
    for device in &devices {
        describe(&mut out, device, args.credentials.as_ref()).await;
    }
    Ok(out)
}

async fn describe(
    out: &mut String,
    device: &DiscoveredDevice,
    credentials: Option<&(String, String)>,
) {
    let _ = writeln!(
        out,
        "\n{}",
        device.name.as_deref().unwrap_or("(unnamed camera)")
    );
    let _ = writeln!(out, "  endpoint: {}", device.endpoint);
    let _ = writeln!(out, "  answered from: {}", device.from);
    if let Some(hardware) = &device.hardware {
        let _ = writeln!(out, "  hardware: {hardware}");
    }
    if let Some(location) = &device.location {
        let _ = writeln!(out, "  location: {location}");
    }
    for xaddr in &device.xaddrs {
        let _ = writeln!(out, "  device service: {xaddr}");
    }
    let Some(xaddr) = device.xaddrs.first() else {
        let _ = writeln!(out, "  (no device service address: cannot ask for streams)");
        return;
    };
    let credentials = credentials.map(|(u, p)| (u.as_str(), p.as_str()));
    let described = match OnvifClient::connect(xaddr, credentials).await {
        Ok(client) => client.describe().await,
        Err(e) => Err(e),
    };
    match described {
        Ok(description) => {
            for line in description.to_string().lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        Err(e) if e.is_wrong_credentials() => {
            let _ = writeln!(
                out,
                "  cannot log in: {e} (pass --user and --password, or check them)"
            );
        }
        Err(e) => {
            let _ = writeln!(out, "  cannot describe: {e}");
        }
    }
}
