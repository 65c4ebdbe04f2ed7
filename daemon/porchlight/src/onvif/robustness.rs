//! Every parser fed truncations, bit flips and random bytes of real answers:
//! errors are fine, panics are not.

use rand::{Rng, SeedableRng};

use super::{device, events, media, soap, xml};

const FIXTURES: &[&str] = &[
    "agsh-onvif/GetSystemDateAndTime.xml",
    "agsh-onvif/GetDeviceInformation.xml",
    "agsh-onvif/GetCapabilities.xml",
    "agsh-onvif/GetCapabilitiesEncoder.xml",
    "agsh-onvif/GetServices.xml",
    "agsh-onvif/GetProfiles.xml",
    "agsh-onvif/GetStreamUri.xml",
    "agsh-onvif/GetSnapshotUri.xml",
    "agsh-onvif/Error.xml",
    "ex_onvif/get_device_information.xml",
    "ex_onvif/get_system_date_and_time.xml",
    "ex_onvif/soap_fault.xml",
    "handwritten/media2/GetProfiles.xml",
    "handwritten/media2/GetStreamUri.xml",
    "agsh-onvif/Unsubscribe.xml",
    "handwritten/events/PullMessages.xml",
];

/// Runs every parser on `bytes`; the results are ignored.
fn all_parsers(bytes: &[u8]) {
    let response = super::http::Response {
        status: 200,
        reason: "OK".into(),
        headers: vec![],
        body: bytes.to_vec(),
    };
    let _ = soap::check_response(&response);
    let Ok(doc) = xml::parse(bytes) else { return };
    let Ok(body) = soap::body_content(&doc) else {
        return;
    };
    let _ = device::parse_system_date_and_time(body);
    let _ = device::parse_device_information(body);
    let _ = device::parse_services(body);
    let _ = device::parse_capabilities(body);
    let _ = device::parse_scopes_name(body);
    let _ = media::parse_profiles(body);
    let _ = media::parse_profiles2(body);
    let _ = media::parse_uri(body, "GetStreamUri");
    let _ = media::parse_uri(body, "GetSnapshotUri");
    let _ = events::parse_create_pull_point(body);
    if let Ok(r) = events::parse_pull_messages(body) {
        for n in &r.notifications {
            let _ = n.camera_event();
        }
    }
    let _ = soap::Fault::from_element(body).into_error();
}

fn load(path: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../tests/data/onvif/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn truncations_never_panic() {
    for path in FIXTURES {
        let bytes = load(path);
        for end in 0..bytes.len() {
            all_parsers(&bytes[..end]);
        }
    }
}

#[test]
fn mutations_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7616);
    for path in FIXTURES {
        let original = load(path);
        for _ in 0..300 {
            let mut bytes = original.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..bytes.len());
                match rng.random_range(0..4) {
                    0 => bytes[i] = rng.random(),
                    1 => bytes[i] = b"<>/&;:\"'= x"[rng.random_range(0..11)],
                    2 => {
                        bytes.remove(i);
                    }
                    _ => {
                        let j = rng.random_range(0..bytes.len());
                        let (a, b) = (i.min(j), i.max(j));
                        let chunk = bytes[a..b].to_vec();
                        bytes.splice(b..b, chunk);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            all_parsers(&bytes);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2617);
    for _ in 0..2000 {
        let len = rng.random_range(0..512);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        all_parsers(&bytes);
        // Random tag soup is likelier to get past the first checks.
        let soup: String = (0..len)
            .map(|_| {
                [
                    "<a>",
                    "</a>",
                    "<b:c x='1'>",
                    "</b:c>",
                    "&amp;",
                    "t",
                    "<d/>",
                    "<?x?>",
                ][rng.random_range(0..8)]
            })
            .collect();
        all_parsers(soup.as_bytes());
    }
}
