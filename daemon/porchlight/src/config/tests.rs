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
