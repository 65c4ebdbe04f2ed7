use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw = raw::parse(text)?;
    validate(raw, text, None, &|_| None)
}

const MINIMAL: &str = r#"
data_dir = "/tmp/porchlight"

[[cameras]]
name = "porch"
url = "rtsp://192.168.1.20:554/stream1"
"#;

#[test]
fn minimal_config_gets_safe_defaults() {
    let config = parse(MINIMAL).expect("valid");
    assert_eq!(config.http.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.retention.min_free, ByteSize(5_000_000_000));
    assert_eq!(config.storage.segment_duration, Duration::from_secs(60));
    let cam = &config.cameras[0];
    assert_eq!(cam.transport, Transport::Tcp);
    assert_eq!(cam.streams, vec![StreamKind::Main]);
    assert!(cam.audio && cam.enabled);
}

#[test]
fn per_camera_retention_overrides_global_defaults() {
    let text = r#"
data_dir = "/d"
[retention]
max_bytes = "200GB"
max_age = "30d"
[[cameras]]
name = "a"
url = "rtsp://h/1"
retention = { max_age = "14d" }
[[cameras]]
name = "b"
url = "rtsp://h/2"
"#;
    let config = parse(text).expect("valid");
    let a = config.cameras[0].retention;
    assert_eq!(a.max_bytes, Some(ByteSize(200_000_000_000)));
    assert_eq!(
        a.max_age,
        Some(HumanDuration(Duration::from_secs(14 * 86_400)))
    );
    let b = config.cameras[1].retention;
    assert_eq!(
        b.max_age,
        Some(HumanDuration(Duration::from_secs(30 * 86_400)))
    );
}

fn error_of(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let e = error_of(&format!("{MINIMAL}colour = \"red\"\n"));
    let shown = e.to_string();
    assert!(shown.contains("colour"), "{shown}");
    assert_eq!(e.line, Some(7), "{shown}");
    assert_eq!(e.key.as_deref(), Some("cameras[0].colour"), "{shown}");
}

#[test]
fn wrong_type_names_the_key_path() {
    let e = error_of(&MINIMAL.replace("name = \"porch\"", "name = \"porch\"\ntransport = 5"));
    assert_eq!(e.key.as_deref(), Some("cameras[0].transport"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
}

#[test]
fn bad_transport_is_rejected() {
    let e = error_of(&format!("{MINIMAL}transport = \"carrier-pigeon\"\n"));
    assert_eq!(e.key.as_deref(), Some("cameras[0].transport"), "{e}");
    assert!(e.message.contains("carrier-pigeon"), "{e}");
}

#[test]
fn bad_url_is_rejected_with_line() {
    let e = error_of(&MINIMAL.replace("rtsp://192.168.1.20:554/stream1", "http://cam/x"));
    assert_eq!(e.key.as_deref(), Some("cameras[0].url"), "{e}");
    assert_eq!(e.line, Some(6), "{e}");
    let e = error_of(&MINIMAL.replace("rtsp://192.168.1.20:554/stream1", "not a url"));
    assert!(e.message.contains("not a valid URL"), "{e}");
}

#[test]
fn credentials_in_url_are_rejected() {
    let e = error_of(&MINIMAL.replace("rtsp://192.168", "rtsp://admin:hunter2@192.168"));
    assert_eq!(e.key.as_deref(), Some("cameras[0].url"), "{e}");
    assert!(!e.to_string().contains("hunter2") || e.message.contains("not in the URL"));
}

#[test]
fn duplicate_camera_names_are_rejected() {
    let e = error_of(&format!(
        "{MINIMAL}\n[[cameras]]\nname = \"porch\"\nurl = \"rtsp://h/2\"\n"
    ));
    assert_eq!(e.key.as_deref(), Some("cameras[1].name"), "{e}");
    assert_eq!(e.line, Some(9), "{e}");
    assert!(e.message.contains("duplicate"), "{e}");
}

#[test]
fn camera_names_must_be_url_safe() {
    let e = error_of(&MINIMAL.replace("\"porch\"", "\"Front Porch\""));
    assert_eq!(e.key.as_deref(), Some("cameras[0].name"), "{e}");
}

#[test]
fn bad_sizes_and_durations_name_the_key() {
    let e = error_of(&format!(
        "{MINIMAL}retention = {{ max_bytes = \"lots\" }}\n"
    ));
    assert_eq!(
        e.key.as_deref(),
        Some("cameras[0].retention.max_bytes"),
        "{e}"
    );
    let e = error_of(
        "data_dir = \"/d\"
[retention]
max_age = \"3 fortnights\"
",
    );
    assert_eq!(e.key.as_deref(), Some("retention.max_age"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn missing_data_dir_is_reported() {
    let e = error_of("[http]\nbind = \"127.0.0.1:1\"\n");
    assert!(e.message.contains("data_dir"), "{e}");
}

#[test]
fn bad_bind_address_is_reported() {
    let e = error_of("data_dir = \"/d\"\n[http]\nbind = \"localhost\"\n");
    assert_eq!(e.key.as_deref(), Some("http.bind"), "{e}");
    assert_eq!(e.line, Some(3), "{e}");
}

#[test]
fn sub_stream_needs_sub_url() {
    let e = error_of(&format!("{MINIMAL}streams = [\"main\", \"sub\"]\n"));
    assert_eq!(e.key.as_deref(), Some("cameras[0].streams"), "{e}");
}

#[test]
fn password_and_password_file_together_are_rejected() {
    let e = error_of(&format!(
        "{MINIMAL}username = \"u\"\npassword = \"p\"\npassword_file = \"/x\"\n"
    ));
    assert_eq!(e.key.as_deref(), Some("cameras[0].password_file"), "{e}");
}

#[test]
fn password_comes_from_environment_and_is_masked() {
    let text = format!("{MINIMAL}username = \"admin\"\n");
    let raw = raw::parse(&text).expect("parses");
    let config = validate(raw, &text, None, &|var| {
        (var == "PORCHLIGHT_CAMERA_PORCH_PASSWORD").then(|| "s3cret-value".to_string())
    })
    .expect("valid");
    let cam = &config.cameras[0];
    assert_eq!(
        cam.password.as_ref().map(Secret::expose),
        Some("s3cret-value")
    );
    let rendered = config.to_masked_toml();
    assert!(!rendered.contains("s3cret-value"), "{rendered}");
    assert!(
        rendered.contains("PORCHLIGHT_CAMERA_PORCH_PASSWORD"),
        "{rendered}"
    );
    assert!(!format!("{config:?}").contains("s3cret-value"));
}

#[test]
fn password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("porch.pass"), "from-file\n").expect("write");
    let text = format!("{MINIMAL}username = \"admin\"\npassword_file = \"porch.pass\"\n");
    let config = Config::parse(&text, Some(dir.path())).expect("valid");
    assert_eq!(
        config.cameras[0].password.as_ref().map(Secret::expose),
        Some("from-file")
    );
    let e = Config::parse(
        &text.replace("porch.pass", "missing.pass"),
        Some(dir.path()),
    )
    .expect_err("missing file");
    assert_eq!(e.key.as_deref(), Some("cameras[0].password_file"), "{e}");
}

#[test]
fn rendered_config_parses_back() {
    let config = parse(MINIMAL).expect("valid");
    let rendered = config.to_masked_toml();
    // "unlimited" is for humans; everything else must be valid TOML.
    toml::from_str::<toml::Table>(&rendered).expect("rendered config is TOML");
}

#[test]
fn time_server_must_be_a_host() {
    let with = |value: &str| format!("{MINIMAL}[export]\ntime_server = \"{value}\"\n");
    let config = parse(&with("ntp.example.org:123")).expect("valid");
    assert_eq!(
        config.export.time_server.as_deref(),
        Some("ntp.example.org:123")
    );
    let e = error_of(&with("http://ntp.example.org/"));
    assert_eq!(e.key.as_deref(), Some("export.time_server"), "{e}");
    assert_eq!(e.line, Some(8), "{e}");
}

#[test]
fn audit_log_is_kept_at_least_a_year() {
    let config = parse(MINIMAL).expect("valid");
    assert_eq!(config.audit.max_age, Duration::from_secs(400 * 86_400));

    let longer = parse("data_dir = \"/d\"\n[audit]\nmax_age = \"800d\"\n").expect("valid");
    assert_eq!(longer.audit.max_age, Duration::from_secs(800 * 86_400));

    let e = parse("data_dir = \"/d\"\n[audit]\nmax_age = \"30d\"\n").expect_err("too short");
    assert_eq!(e.key.as_deref(), Some("audit.max_age"));
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("365d"), "{e}");
}

const SHARING: &str = r#"
data_dir = "/d"

[policy]
timezone = "America/Chicago"
max_clip = "1h"
min_window = "30m"
max_window = "6h"
max_radius_m = 250
requests_per_case = 1
requests_per_agency_per_day = 5
approval_expiry = "12h"
download_expiry = "48h"

[relay]
listen = "0.0.0.0:8443"
agency_ca = "agencies.pem"

[[cameras]]
name = "porch"
url = "rtsp://h/1"
sharing = "emergency_auto"
location = { lat = 32.7767, lon = -96.797 }
audio_to_police = true
max_clip_to_police = "20m"
schedule = [
  { days = "mon-fri", from = "22:00", to = "06:00" },
  { days = ["sat", "sun"], from = "00:00", to = "24:00" },
]
outside_schedule = "on_request"
"#;

#[test]
fn policy_and_sharing_default_to_nothing_shared() {
    let config = parse(MINIMAL).expect("valid");
    let p = &config.policy;
    assert!(!p.privacy);
    assert_eq!(p.max_clip, Duration::from_secs(12 * 3600));
    assert_eq!(
        (p.min_window, p.max_window),
        (Duration::from_secs(900), Duration::from_secs(12 * 3600))
    );
    assert_eq!(
        (
            p.max_radius_m,
            p.requests_per_case,
            p.requests_per_agency_per_day
        ),
        (400, 2, 20)
    );
    assert_eq!(p.approval_expiry, Duration::from_secs(86_400));
    assert_eq!(p.download_expiry, Duration::from_secs(3 * 86_400));
    assert_eq!(config.relay.listen, None);
    let sharing = &config.cameras[0].sharing;
    assert_eq!(sharing.level, crate::policy::SharingLevel::Off);
    assert!(!sharing.audio_to_police && sharing.location.is_none() && sharing.schedule.is_none());
}

#[test]
fn policy_and_sharing_keys_parse() {
    let base = std::path::Path::new("/etc/porchlight");
    let raw = raw::parse(SHARING).expect("parses");
    let config = validate(raw, SHARING, Some(base), &|_| None).expect("valid");
    assert_eq!(
        config.policy.timezone_name.as_deref(),
        Some("America/Chicago")
    );
    assert_eq!(config.policy.max_radius_m, 250);
    assert_eq!(config.relay.listen.map(|a| a.port()), Some(8443));
    assert_eq!(
        config.relay.agency_ca.as_deref(),
        Some(base.join("agencies.pem").as_path())
    );
    let sharing = &config.cameras[0].sharing;
    assert_eq!(sharing.level, crate::policy::SharingLevel::EmergencyAuto);
    assert_eq!(
        sharing.outside_schedule,
        crate::policy::SharingLevel::OnRequest
    );
    assert_eq!(
        sharing.schedule.as_ref().map(|s| s.windows().len()),
        Some(2)
    );
    assert_eq!(sharing.max_clip, Some(Duration::from_secs(1200)));

    let policy = crate::policy::Policy::from_config(&config);
    assert_eq!(policy.max_clip, Duration::from_secs(3600));
    assert_eq!(policy.limits.requests_per_case, 1);
    assert!(policy.cameras[0].audio_allowed);
    assert_eq!(policy.cameras[0].location.map(|l| l.lat), Some(32.7767));

    // The effective config shows the keys and parses back.
    let rendered = config.to_masked_toml();
    assert!(
        rendered.contains("sharing = \"emergency_auto\""),
        "{rendered}"
    );
    assert!(rendered.contains("from = \"22:00\""), "{rendered}");
    toml::from_str::<toml::Table>(&rendered).expect("rendered config is TOML");
}

#[test]
fn audio_the_camera_does_not_record_is_not_shared() {
    let text = SHARING.replace(
        "audio_to_police = true",
        "audio_to_police = true\naudio = false",
    );
    let config = parse(&text).expect("valid");
    assert!(!crate::policy::Policy::from_config(&config).cameras[0].audio_allowed);
}

#[test]
fn sharing_mistakes_name_the_key_and_line() {
    let cases: &[(String, &str, usize, &str)] = &[
        // (config, key, line, part of the message)
        (
            SHARING.replace("\"emergency_auto\"", "\"always\""),
            "cameras[0].sharing",
            22,
            "on_request",
        ),
        (
            SHARING.replace("lat = 32.7767", "lat = 132.7767"),
            "cameras[0].location",
            23,
            "latitude",
        ),
        (
            SHARING.replace("location = { lat = 32.7767, lon = -96.797 }\n", ""),
            "cameras[0].location",
            22,
            "location",
        ),
        (
            SHARING.replace("\"mon-fri\"", "\"mon-funday\""),
            "cameras[0].schedule[0].days",
            27,
            "funday",
        ),
        (
            SHARING.replace("from = \"22:00\"", "from = \"25:00\""),
            "cameras[0].schedule[0].from",
            27,
            "25:00",
        ),
        (
            SHARING.replace("to = \"06:00\"", "to = \"22:00\""),
            "cameras[0].schedule[0]",
            27,
            "24:00",
        ),
        (
            SHARING.replace(
                "outside_schedule = \"on_request\"",
                "outside_schedule = \"emergency_live\"",
            ),
            "cameras[0].outside_schedule",
            30,
            "lower",
        ),
        (
            SHARING.replace(
                "timezone = \"America/Chicago\"",
                "timezone = \"Mars/Olympus\"",
            ),
            "policy.timezone",
            5,
            "Mars/Olympus",
        ),
        (
            SHARING.replace("max_window = \"6h\"", "max_window = \"13h\""),
            "policy.max_window",
            8,
            "between",
        ),
        (
            SHARING.replace("min_window = \"30m\"", "min_window = \"10m\""),
            "policy.min_window",
            7,
            "between",
        ),
        (
            SHARING.replace("max_window = \"6h\"", "max_window = \"20m\""),
            "policy.max_window",
            8,
            "min_window",
        ),
        (
            SHARING.replace("max_radius_m = 250", "max_radius_m = 5000"),
            "policy.max_radius_m",
            9,
            "between",
        ),
        (
            SHARING.replace("max_radius_m = 250", "max_radius_m = -1"),
            "policy.max_radius_m",
            9,
            "",
        ),
        (
            SHARING.replace("requests_per_case = 1", "requests_per_case = 0"),
            "policy.requests_per_case",
            10,
            "between",
        ),
        (
            SHARING.replace("download_expiry = \"48h\"", "download_expiry = \"soon\""),
            "policy.download_expiry",
            13,
            "soon",
        ),
        (
            SHARING
                .replace("privacy_note", "x")
                .replace("[policy]", "[policy]\nprivacy = \"yes\""),
            "policy.privacy",
            5,
            "",
        ),
        (
            SHARING.replace("agency_ca = \"agencies.pem\"\n", ""),
            "relay.agency_ca",
            16,
            "client certificate",
        ),
        (
            SHARING.replace("0.0.0.0:8443", "everywhere"),
            "relay.listen",
            16,
            "",
        ),
        (
            SHARING.replace("0.0.0.0:8443", "127.0.0.1:8080"),
            "relay.listen",
            16,
            "http.bind",
        ),
        (
            SHARING.replace("[relay]", "[relay]\nport = 1"),
            "relay.port",
            16,
            "port",
        ),
        (
            SHARING.replace(
                "max_clip_to_police = \"20m\"",
                "max_clip_to_police = \"5s\"",
            ),
            "cameras[0].max_clip_to_police",
            25,
            "1m",
        ),
    ];
    for (text, key, line, message) in cases {
        let e = error_of(text);
        assert_eq!(e.key.as_deref(), Some(*key), "{e}");
        assert_eq!(e.line, Some(*line), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}

#[test]
fn outside_schedule_needs_a_schedule() {
    let e = error_of(&format!(
        "{MINIMAL}sharing = \"registered\"\nlocation = {{ lat = 1.0, lon = 2.0 }}\noutside_schedule = \"off\"\n"
    ));
    assert_eq!(e.key.as_deref(), Some("cameras[0].outside_schedule"), "{e}");
    let e = error_of(&format!(
        "{MINIMAL}sharing = \"registered\"\nlocation = {{ lat = 1.0, lon = 2.0 }}\nschedule = []\n"
    ));
    assert_eq!(e.key.as_deref(), Some("cameras[0].schedule"), "{e}");
}

#[test]
fn mqtt_is_off_unless_configured_and_its_mistakes_are_named() {
    assert!(parse(MINIMAL).expect("valid").mqtt.is_none());
    let with = |table: &str| format!("{MINIMAL}[mqtt]\n{table}\n");
    let m = parse(&with("host = \"broker.lan\""))
        .expect("valid")
        .mqtt
        .expect("on");
    assert_eq!(
        (m.port, m.base_topic.as_str(), m.discovery_prefix.as_str()),
        (1883, "porchlight", "homeassistant")
    );
    let tls = parse(&with("host = \"b\"\nca_file = \"/etc/ca.pem\""))
        .expect("valid")
        .mqtt
        .expect("on");
    assert_eq!(tls.port, 8883, "TLS defaults to 8883");
    assert!(parse(&with("host = \"b\"\nenabled = false"))
        .expect("valid")
        .mqtt
        .is_none());
    for (table, key) in [
        ("port = 1883", "mqtt.host"),
        ("host = \"b\"\nport = 70000", "mqtt.port"),
        ("host = \"b\"\nclient_cert = \"c.pem\"", "mqtt.ca_file"),
        (
            "host = \"b\"\nca_file = \"ca\"\nclient_cert = \"c.pem\"",
            "mqtt.client_key",
        ),
        ("host = \"b\"\nbase_topic = \"home/#\"", "mqtt.base_topic"),
        (
            "host = \"b\"\npassword = \"x\"\npassword_file = \"p\"",
            "mqtt.password_file",
        ),
        ("host = \"b\"\ncolour = \"red\"", "mqtt.colour"),
    ] {
        let e = error_of(&with(table));
        assert_eq!(e.key.as_deref(), Some(key), "{table}: {e}");
    }
}

#[test]
fn discovery_is_off_unless_configured_and_needs_named_interfaces() {
    let base = "data_dir = \"/tmp/x\"\n";
    assert!(Config::parse(base, None).unwrap().discovery.is_none());
    let off = Config::parse(&format!("{base}[discovery]\nenabled = false\n"), None).unwrap();
    assert!(off.discovery.is_none());
    let on = Config::parse(
        &format!("{base}[discovery]\ninterfaces = [\"eth0\"]\ninterval = \"1m\"\n"),
        None,
    )
    .unwrap();
    let on = on.discovery.expect("on");
    assert_eq!(on.interfaces, ["eth0"]);
    assert_eq!(on.interval.0, std::time::Duration::from_secs(60));
    for (text, key, message, line) in [
        (
            "[discovery]\n",
            "discovery.interfaces",
            "name the interfaces",
            2,
        ),
        (
            "[discovery]\ninterfaces = [\"eth0\"]\ninterval = \"1s\"\n",
            "discovery.interval",
            "between 10s and 1d",
            2,
        ),
        (
            "[discovery]\ninterfaces = [\"eth0\"]\nport = 1\n",
            "discovery.port",
            "unknown field `port`",
            4,
        ),
    ] {
        let e = Config::parse(&format!("{base}{text}"), None).unwrap_err();
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert!(e.to_string().contains(message), "{e}");
        assert_eq!(e.line, Some(line), "{e}");
    }
}

#[test]
fn registry_keys_parse_and_their_mistakes_are_named() {
    let with = |relay: &str, camera: &str| {
        SHARING
            .replace(
                "agency_ca = \"agencies.pem\"\n",
                &format!("agency_ca = \"agencies.pem\"\n{relay}"),
            )
            .replace(
                "audio_to_police = true\n",
                &format!("audio_to_police = true\n{camera}"),
            )
    };
    let config = parse(&with(
        "registry_url = \"https://relay.example.org/registry\"\nlocation_decimals = 1\ncontact_alias = \"porch-17\"\n",
        "direction = \" north \"\nfield_of_view = \"the driveway\"\n",
    ))
    .expect("valid");
    let registry = config.relay.registry.as_ref().expect("registry");
    assert_eq!(registry.url.as_str(), "https://relay.example.org/registry");
    // The registry CA defaults to the agency CA.
    assert_eq!(registry.ca, std::path::PathBuf::from("agencies.pem"));
    assert_eq!(registry.location_decimals, 1);
    assert_eq!(registry.contact_alias.as_deref(), Some("porch-17"));
    assert_eq!(
        config.cameras[0].sharing.direction.as_deref(),
        Some("north")
    );
    assert_eq!(
        config.cameras[0].sharing.field_of_view.as_deref(),
        Some("the driveway")
    );
    let rendered = config.to_masked_toml();
    assert!(rendered.contains("registry_url = "), "{rendered}");
    for line in [
        "location_decimals = 1",
        "contact_alias = \"porch-17\"",
        "direction = \"north\"",
        "field_of_view = \"the driveway\"",
    ] {
        assert!(rendered.contains(line), "{line} in {rendered}");
    }

    let url = "registry_url = \"https://r.example/\"\n";
    let cases: &[(String, &str, &str)] = &[
        (
            with("registry_url = \"http://r.example/\"\n", ""),
            "relay.registry_url",
            "https",
        ),
        (
            with("registry_url = \"not a url\"\n", ""),
            "relay.registry_url",
            "not a URL",
        ),
        (
            with(&format!("{url}location_decimals = 4\n"), ""),
            "relay.location_decimals",
            "between 0 and 3",
        ),
        (
            with(&format!("{url}contact_alias = \"a\\u202Eb\"\n"), ""),
            "relay.contact_alias",
            "text-direction",
        ),
        (
            with("contact_alias = \"x\"\n", ""),
            "relay.contact_alias",
            "registry_url",
        ),
        (
            with(url, "direction = \"\"\n"),
            "cameras[0].direction",
            "empty",
        ),
        (
            with(url, &format!("field_of_view = \"{}\"\n", "x".repeat(201))),
            "cameras[0].field_of_view",
            "200",
        ),
    ];
    for (text, key, message) in cases {
        let e = error_of(text);
        assert_eq!(e.key.as_deref(), Some(*key), "{e}");
        assert!(e.line.is_some(), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}

#[test]
fn the_uplink_needs_an_https_url_and_the_pinned_agency_ca() {
    let only_uplink = SHARING.replace(
        "listen = \"0.0.0.0:8443\"",
        "uplink = \"https://relay.example/uplink?box=7\"",
    );
    let config = parse(&only_uplink).expect("valid");
    assert_eq!(config.relay.listen, None, "no inbound port");
    let uplink = config.relay.uplink.expect("uplink");
    assert_eq!(
        (uplink.host.as_str(), uplink.port, uplink.path.as_str()),
        ("relay.example", 443, "/uplink?box=7")
    );
    assert_eq!(config.relay.uplink_retry_max, Duration::from_secs(30));
    let cases: &[(String, &str, &str)] = &[
        (
            only_uplink.replace("https://relay.example", "http://relay.example"),
            "relay.uplink",
            "https",
        ),
        (
            only_uplink.replace("https://relay.example/uplink?box=7", "relay.example"),
            "relay.uplink",
            "not a URL",
        ),
        (
            only_uplink.replace("https://relay.example", "https://u:p@relay.example"),
            "relay.uplink",
            "password",
        ),
        (
            only_uplink.replace("agency_ca = \"agencies.pem\"\n", ""),
            "relay.agency_ca",
            "relay.uplink",
        ),
        (
            only_uplink.replace("[relay]", "[relay]\nuplink_retry_max = \"1h\""),
            "relay.uplink_retry_max",
            "between",
        ),
    ];
    for (text, key, message) in cases {
        let e = error_of(text);
        assert_eq!(e.key.as_deref(), Some(*key), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
}
