//! An owner edits the config by hand and makes mistakes: every one is
//! reported with the key and the line, and secrets never show.

mod support;

use support::porchlight;

fn check_config(text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write");
    porchlight(&[
        "check-config",
        "--config",
        path.to_str().expect("utf-8 path"),
    ])
}

const GOOD: &str =
    "data_dir = \"/tmp/x\"\n\n[[cameras]]\nname = \"porch\"\nurl = \"rtsp://10.0.0.2/s\"\n";

#[test]
fn the_shipped_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config.example.toml");
    let (code, stdout, stderr) = porchlight(&["check-config", "--config", example]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("name = \"porch\""), "{stdout}");
    assert!(
        stdout.contains("segment_duration = \"1m\""),
        "effective config shows defaults: {stdout}"
    );
}

#[test]
fn each_mistake_names_the_key_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        // (config text, key the error must name, line it must name)
        (&format!("{GOOD}fps = 30\n"), "cameras[0].fps", ":6:"),
        (
            &GOOD.replace("rtsp://10.0.0.2/s", "http://10.0.0.2/s"),
            "cameras[0].url",
            ":5:",
        ),
        (
            &format!("{GOOD}transport = \"quic\"\n"),
            "cameras[0].transport",
            ":6:",
        ),
        (
            &format!("{GOOD}audio = \"yes\"\n"),
            "cameras[0].audio",
            ":6:",
        ),
        (
            &format!("{GOOD}\n[[cameras]]\nname = \"porch\"\nurl = \"rtsp://h/2\"\n"),
            "cameras[1].name",
            ":8:",
        ),
        (
            &format!("{GOOD}[retention]\nmax_age = \"forever\"\n"),
            "retention.max_age",
            ":7:",
        ),
        (&GOOD.replace("data_dir", "datadir"), "datadir", ":1:"),
        (
            &format!("{GOOD}[http]\nbind = \"everywhere\"\n"),
            "http.bind",
            ":7:",
        ),
    ];
    for (text, key, line) in cases {
        let (code, _, stderr) = check_config(text);
        assert_ne!(code, 0, "must fail for key {key}");
        assert!(stderr.contains(key), "error must name `{key}`: {stderr}");
        assert!(
            stderr.contains(line),
            "error must name line {line}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let (code, _, stderr) = check_config("data_dir = \"/x\"\n[[cameras]\nname = 1\n");
    assert_ne!(code, 0);
    assert!(stderr.contains(":2"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let (code, _, stderr) =
        porchlight(&["check-config", "--config", "/nonexistent/porchlight.toml"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("/nonexistent/porchlight.toml") && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn passwords_are_masked_in_the_effective_config() {
    let text = format!("{GOOD}username = \"admin\"\npassword = \"hunter2-secret\"\n");
    let (code, stdout, stderr) = check_config(&text);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("hunter2-secret") && !stderr.contains("hunter2-secret"));
    assert!(stdout.contains("********"), "{stdout}");
}
