//! Device service (ver10): the camera's clock, who made it, and where its
//! other services live. Requests are `(action, body)`; parsers take the
//! element inside the SOAP Body.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::error::ErrorKind;
use super::soap::{NS_DEVICE, NS_EVENTS, NS_MEDIA, NS_MEDIA2};
use super::xml::Element;

pub const GET_SYSTEM_DATE_AND_TIME: (&str, &str) = (
    "http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime",
    "<GetSystemDateAndTime xmlns=\"http://www.onvif.org/ver10/device/wsdl\"/>",
);
pub const GET_DEVICE_INFORMATION: (&str, &str) = (
    "http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation",
    "<GetDeviceInformation xmlns=\"http://www.onvif.org/ver10/device/wsdl\"/>",
);
pub const GET_CAPABILITIES: (&str, &str) = (
    "http://www.onvif.org/ver10/device/wsdl/GetCapabilities",
    "<GetCapabilities xmlns=\"http://www.onvif.org/ver10/device/wsdl\"><Category>All</Category></GetCapabilities>",
);
pub const GET_SERVICES: (&str, &str) = (
    "http://www.onvif.org/ver10/device/wsdl/GetServices",
    "<GetServices xmlns=\"http://www.onvif.org/ver10/device/wsdl\"><IncludeCapability>false</IncludeCapability></GetServices>",
);
pub const GET_SCOPES: (&str, &str) = (
    "http://www.onvif.org/ver10/device/wsdl/GetScopes",
    "<GetScopes xmlns=\"http://www.onvif.org/ver10/device/wsdl\"/>",
);

fn expect<'a>(response: &'a Element, name: &str) -> Result<&'a Element, ErrorKind> {
    if response.name == name {
        Ok(response)
    } else {
        Err(ErrorKind::Unexpected(format!(
            "<{}> instead of <{name}>",
            response.name
        )))
    }
}

fn missing(what: &str) -> ErrorKind {
    ErrorKind::Unexpected(format!("no {what} in the answer"))
}

/// What GetSystemDateAndTime says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraClock {
    /// The camera's UTC time.
    pub utc: OffsetDateTime,
    /// `Manual` or `NTP`.
    pub date_time_type: Option<String>,
    /// POSIX TZ string, e.g. `CST6CDT,M3.2.0,M11.1.0`.
    pub time_zone: Option<String>,
}

pub fn parse_system_date_and_time(response: &Element) -> Result<CameraClock, ErrorKind> {
    let response = expect(response, "GetSystemDateAndTimeResponse")?;
    let sdt = response
        .child("SystemDateAndTime")
        .ok_or_else(|| missing("SystemDateAndTime"))?;
    let utc = sdt
        .child("UTCDateTime")
        .ok_or_else(|| missing("UTCDateTime (the camera reports only local time)"))?;
    let num = |path: &[&str]| -> Result<i64, ErrorKind> {
        let text = utc
            .text_at(path)
            .ok_or_else(|| missing(&format!("UTCDateTime/{}", path.join("/"))))?;
        text.parse().map_err(|_| {
            ErrorKind::Unexpected(format!("{} is not a number: {text:?}", path.join("/")))
        })
    };
    let bad = |what: &str| ErrorKind::Unexpected(format!("invalid UTCDateTime ({what})"));
    let year = i32::try_from(num(&["Date", "Year"])?).map_err(|_| bad("year"))?;
    let month = u8::try_from(num(&["Date", "Month"])?)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("month"))?;
    let day = u8::try_from(num(&["Date", "Day"])?).map_err(|_| bad("day"))?;
    let date = Date::from_calendar_date(year, month, day).map_err(|e| bad(&e.to_string()))?;
    let hour = u8::try_from(num(&["Time", "Hour"])?).map_err(|_| bad("hour"))?;
    let minute = u8::try_from(num(&["Time", "Minute"])?).map_err(|_| bad("minute"))?;
    // Leap seconds (60) happen; clamp rather than refuse.
    let second = u8::try_from(num(&["Time", "Second"])?)
        .map_err(|_| bad("second"))?
        .min(59);
    let time = Time::from_hms(hour, minute, second).map_err(|e| bad(&e.to_string()))?;
    Ok(CameraClock {
        utc: PrimitiveDateTime::new(date, time).assume_utc(),
        date_time_type: sdt.text_at(&["DateTimeType"]).map(str::to_string),
        time_zone: sdt.text_at(&["TimeZone", "TZ"]).map(str::to_string),
    })
}

/// GetDeviceInformation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInformation {
    pub manufacturer: String,
    pub model: String,
    pub firmware_version: String,
    pub serial_number: String,
    pub hardware_id: String,
}

pub fn parse_device_information(response: &Element) -> Result<DeviceInformation, ErrorKind> {
    let r = expect(response, "GetDeviceInformationResponse")?;
    let get = |n: &str| r.text_at(&[n]).unwrap_or_default().to_string();
    Ok(DeviceInformation {
        manufacturer: get("Manufacturer"),
        model: get("Model"),
        firmware_version: get("FirmwareVersion"),
        serial_number: get("SerialNumber"),
        hardware_id: get("HardwareId"),
    })
}

/// Where the services this client uses live (raw XAddrs as the camera gave them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceAddresses {
    pub device: Option<String>,
    pub media: Option<String>,
    pub media2: Option<String>,
    pub events: Option<String>,
}

/// One entry of GetServices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub namespace: String,
    pub xaddr: String,
    pub version: Option<(u32, u32)>,
}

pub fn parse_services(response: &Element) -> Result<Vec<Service>, ErrorKind> {
    let r = expect(response, "GetServicesResponse")?;
    Ok(r.children_named("Service")
        .filter_map(|s| {
            Some(Service {
                namespace: s.text_at(&["Namespace"])?.to_string(),
                xaddr: s.text_at(&["XAddr"])?.to_string(),
                version: s.child("Version").and_then(|v| {
                    Some((
                        v.text_at(&["Major"])?.parse().ok()?,
                        v.text_at(&["Minor"])?.parse().ok()?,
                    ))
                }),
            })
        })
        .collect())
}

impl ServiceAddresses {
    pub fn from_services(services: &[Service]) -> ServiceAddresses {
        let find = |ns: &str| {
            services
                .iter()
                .find(|s| s.namespace.trim_end_matches('/') == ns)
                .map(|s| s.xaddr.clone())
        };
        ServiceAddresses {
            device: find(NS_DEVICE),
            media: find(NS_MEDIA),
            media2: find(NS_MEDIA2),
            events: find(NS_EVENTS),
        }
    }
}

/// GetCapabilities (the older way; Media2 is not listed there).
pub fn parse_capabilities(response: &Element) -> Result<ServiceAddresses, ErrorKind> {
    let r = expect(response, "GetCapabilitiesResponse")?;
    let caps = r
        .child("Capabilities")
        .ok_or_else(|| missing("Capabilities"))?;
    let xaddr = |n: &str| caps.text_at(&[n, "XAddr"]).map(str::to_string);
    Ok(ServiceAddresses {
        device: xaddr("Device"),
        media: xaddr("Media"),
        media2: None,
        events: xaddr("Events"),
    })
}

/// The scopes' `onvif://www.onvif.org/name/...` value, percent-decoded.
pub fn parse_scopes_name(response: &Element) -> Result<Option<String>, ErrorKind> {
    let r = expect(response, "GetScopesResponse")?;
    Ok(r.children_named("Scopes").find_map(|s| {
        let item = s.text_at(&["ScopeItem"])?;
        let name = item.strip_prefix("onvif://www.onvif.org/name/")?;
        let decoded = percent_decode(name);
        (!decoded.is_empty()).then_some(decoded)
    }))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'_' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::xml;
    use super::*;

    fn body(path: &str) -> Element {
        super::super::xml::fixture_body(path)
    }

    #[test]
    fn clock_from_two_cameras() {
        let c = parse_system_date_and_time(&body("agsh-onvif/GetSystemDateAndTime.xml")).unwrap();
        assert_eq!(c.utc, time::macros::datetime!(2014-12-24 19:14:37 UTC));
        assert_eq!(c.date_time_type.as_deref(), Some("Manual"));
        assert_eq!(c.time_zone.as_deref(), Some("MoroccoStandardTime0"));
        // Milesight (ex_onvif): UTC 19:49:06, local 16:49:06 in BRT3.
        let c = parse_system_date_and_time(&body("ex_onvif/get_system_date_and_time.xml")).unwrap();
        assert_eq!(c.utc, time::macros::datetime!(2024-07-09 19:49:06 UTC));
        assert_eq!(c.time_zone.as_deref(), Some("BRT3"));
    }

    #[test]
    fn device_information_from_two_cameras() {
        let d = parse_device_information(&body("ex_onvif/get_device_information.xml")).unwrap();
        assert_eq!(
            d,
            DeviceInformation {
                manufacturer: "Milesight Technology Co.,Ltd.".into(),
                model: "MS-C8165-PE".into(),
                firmware_version: "61.8.0.3-r8".into(),
                serial_number: "EM82V102329001403".into(),
                hardware_id: "V1.0".into(),
            }
        );
        let d = parse_device_information(&body("agsh-onvif/GetDeviceInformation.xml")).unwrap();
        assert_eq!(d.manufacturer, "Mockup Manufacturer");
        assert_eq!(d.firmware_version, "Mockup_15_14_13");
        assert_eq!(d.hardware_id, "MOCKUP");
    }

    #[test]
    fn services_and_capabilities() {
        let s = parse_services(&body("agsh-onvif/GetServices.xml")).unwrap();
        assert_eq!(s[0].namespace, NS_DEVICE);
        assert_eq!(s[0].version, Some((2, 42)));
        let a = ServiceAddresses::from_services(&s);
        assert_eq!(
            a.media.as_deref(),
            Some("http://192.168.68.111/onvif/services")
        );
        assert_eq!(
            a.events.as_deref(),
            Some("http://192.168.68.111/onvif/services")
        );
        assert_eq!(a.media2, None);
        let c = parse_capabilities(&body("agsh-onvif/GetCapabilities.xml")).unwrap();
        assert_eq!(
            c.media.as_deref(),
            Some("http://192.168.68.111/onvif/services")
        );
        assert_eq!(
            c.device.as_deref(),
            Some("http://192.168.68.111/onvif/services")
        );
        // The encoder capture declares encoding="utf-16" but is UTF-8 (env: prefix).
        let c = parse_capabilities(&body("agsh-onvif/GetCapabilitiesEncoder.xml")).unwrap();
        assert_eq!(
            c.device.as_deref(),
            Some("http://192.168.30.65/onvif/device_service")
        );
        assert!(c.media.is_some());
    }

    #[test]
    fn wrong_answer_is_unexpected() {
        let d = body("agsh-onvif/GetServices.xml");
        assert!(matches!(
            parse_device_information(&d),
            Err(ErrorKind::Unexpected(_))
        ));
        assert!(matches!(
            parse_system_date_and_time(&d),
            Err(ErrorKind::Unexpected(_))
        ));
    }

    #[test]
    fn scope_name() {
        let doc = xml::parse(br#"<GetScopesResponse><Scopes><ScopeDef>Fixed</ScopeDef><ScopeItem>onvif://www.onvif.org/type/video_encoder</ScopeItem></Scopes><Scopes><ScopeItem>onvif://www.onvif.org/name/Front%20Porch_Cam</ScopeItem></Scopes></GetScopesResponse>"#).unwrap();
        assert_eq!(
            parse_scopes_name(&doc).unwrap().as_deref(),
            Some("Front Porch Cam")
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
    }
}
