//! Prometheus text exposition of [`Health`]. Hand-written: the format is
//! small and a metrics crate would add a registry we do not need.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::health::Health;
use crate::time::now_utc_us;

/// Renders every metric in the Prometheus text format (version 0.0.4).
pub fn render(health: &Health) -> String {
    let mut out = String::with_capacity(4096);
    let cameras = || health.cameras.values();

    family(
        &mut out,
        "porchlight_frames_total",
        "counter",
        "Video frames stored, per stream.",
    );
    for cam in cameras() {
        for s in &cam.streams {
            sample2(
                &mut out,
                "porchlight_frames_total",
                &cam.name,
                s.kind.as_str(),
                s.frames_total.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "porchlight_bytes_written_total",
        "counter",
        "Bytes written to segment files, per stream.",
    );
    for cam in cameras() {
        for s in &cam.streams {
            sample2(
                &mut out,
                "porchlight_bytes_written_total",
                &cam.name,
                s.kind.as_str(),
                s.bytes_written_total.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "porchlight_fragments_dropped_total",
        "counter",
        "Fragments that could not be stored (disk full after retention, writer backlog).",
    );
    for cam in cameras() {
        for s in &cam.streams {
            sample2(
                &mut out,
                "porchlight_fragments_dropped_total",
                &cam.name,
                s.kind.as_str(),
                s.fragments_dropped_total.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "porchlight_rtp_packets_lost_total",
        "counter",
        "RTP packets the camera sent that never arrived.",
    );
    for cam in cameras() {
        for s in &cam.streams {
            sample2(
                &mut out,
                "porchlight_rtp_packets_lost_total",
                &cam.name,
                s.kind.as_str(),
                s.packets_lost_total.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "porchlight_reconnects_total",
        "counter",
        "Times a camera connection was (re)started after a failure or end of stream.",
    );
    for cam in cameras() {
        sample1(
            &mut out,
            "porchlight_reconnects_total",
            &cam.name,
            cam.reconnects_total.load(Ordering::Relaxed),
        );
    }
    family(
        &mut out,
        "porchlight_camera_up",
        "gauge",
        "1 when every recorded stream of the camera is delivering frames.",
    );
    for cam in cameras() {
        sample1(
            &mut out,
            "porchlight_camera_up",
            &cam.name,
            u64::from(cam.is_up()),
        );
    }
    family(
        &mut out,
        "porchlight_storage_bytes",
        "gauge",
        "Bytes of footage kept for the camera.",
    );
    for cam in cameras() {
        sample1(
            &mut out,
            "porchlight_storage_bytes",
            &cam.name,
            cam.storage_bytes.load(Ordering::Relaxed),
        );
    }
    family(
        &mut out,
        "porchlight_oldest_recording_seconds",
        "gauge",
        "Age in seconds of the camera's oldest footage kept.",
    );
    let now = now_utc_us();
    for cam in cameras() {
        let oldest = cam.oldest_recording_utc_us.load(Ordering::Relaxed);
        let age = if oldest > 0 {
            (now - oldest).max(0) as f64 / 1e6
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "porchlight_oldest_recording_seconds{{camera=\"{}\"}} {age:.3}",
            cam.name
        );
    }
    family(
        &mut out,
        "porchlight_retention_deleted_bytes_total",
        "counter",
        "Bytes of old footage deleted by retention.",
    );
    let _ = writeln!(
        out,
        "porchlight_retention_deleted_bytes_total {}",
        health.retention_deleted_bytes_total.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "porchlight_disk_free_bytes",
        "gauge",
        "Free bytes on the data directory's filesystem.",
    );
    let _ = writeln!(
        out,
        "porchlight_disk_free_bytes {}",
        health.disk_free_bytes.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "porchlight_store_ok",
        "gauge",
        "1 while the store can write.",
    );
    let _ = writeln!(
        out,
        "porchlight_store_ok {}",
        u8::from(health.store_ok.load(Ordering::Relaxed))
    );
    render_uplink(&mut out, &health.uplink);
    out
}

/// The relay uplink's state (only when one is configured).
fn render_uplink(out: &mut String, uplink: &crate::health::UplinkHealth) {
    if !uplink.configured.load(Ordering::Relaxed) {
        return;
    }
    let rows = [
        (
            "porchlight_uplink_connected",
            "gauge",
            "1 while the outbound tunnel to the relay is up.",
            u64::from(uplink.connected.load(Ordering::Relaxed)),
        ),
        (
            "porchlight_uplink_connections_total",
            "counter",
            "Tunnels to the relay established (TLS verified, upgrade accepted).",
            uplink.connections_total.load(Ordering::Relaxed),
        ),
        (
            "porchlight_uplink_reconnects_total",
            "counter",
            "Tunnels established again after one ended.",
            uplink.reconnects_total.load(Ordering::Relaxed),
        ),
        (
            "porchlight_uplink_failed_attempts_total",
            "counter",
            "Attempts to reach the relay that failed (connect, TLS, upgrade).",
            uplink.failed_attempts_total.load(Ordering::Relaxed),
        ),
    ];
    for (name, kind, help, value) in rows {
        family(out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

// Camera names are validated to [a-z0-9_-], so no label escaping is needed.
fn sample1(out: &mut String, name: &str, camera: &str, value: u64) {
    let _ = writeln!(out, "{name}{{camera=\"{camera}\"}} {value}");
}

fn sample2(out: &mut String, name: &str, camera: &str, stream: &str, value: u64) {
    let _ = writeln!(
        out,
        "{name}{{camera=\"{camera}\",stream=\"{stream}\"}} {value}"
    );
}
