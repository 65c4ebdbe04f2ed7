//! Log setup: `RUST_LOG` filters (default info), one line per event on
//! stderr.
//!
//! Under systemd, stderr goes to journald, which stamps each line itself and
//! has no use for colour. When `JOURNAL_STREAM` names our stderr (systemd
//! sets it for exactly that case), lines carry no timestamp, no ANSI codes
//! and start with a syslog priority prefix (`<3>` error ... `<7>` debug), so
//! `journalctl -p warning -u porchlight` filters by level.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,retina=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if stderr_is_journal() {
        builder
            .with_ansi(false)
            .event_format(journal_format())
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The journal's line format: a `<N>` priority prefix instead of the level,
/// no time (journald stamps lines itself).
fn journal_format() -> JournalPriority<
    tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Full, ()>,
> {
    JournalPriority(
        tracing_subscriber::fmt::format()
            .with_target(false)
            .with_level(false)
            .without_time(),
    )
}

/// True when systemd connected our stderr to the journal: `JOURNAL_STREAM`
/// is `<device>:<inode>` of that stream (inherited values that name some
/// other file, e.g. after a redirect, do not count).
fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some(value) = value.to_str() else {
        return false;
    };
    // SAFETY: fstat on fd 2 with a zeroed, correctly sized stat buffer.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut stat) } != 0 {
        return false;
    }
    journal_stream_names(value, stat.st_dev, stat.st_ino)
}

fn journal_stream_names(value: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// The syslog priority journald reads from a `<N>` line prefix.
fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Prefixes each event with its syslog priority, then formats it as `F` does.
struct JournalPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn journal_stream_must_name_our_stderr() {
        assert!(journal_stream_names("64768:1234", 64768, 1234));
        assert!(!journal_stream_names("64768:1234", 64768, 99));
        assert!(!journal_stream_names("64768", 64768, 1234));
        assert!(!journal_stream_names("x:y", 0, 0));
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn journal_lines_carry_priority_and_no_time_or_colour() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .event_format(journal_format())
            .with_max_level(Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(camera = "porch", "disk gone");
            tracing::warn!("slow");
            tracing::info!("recording");
            tracing::debug!("detail");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "<3>disk gone camera=\"porch\"",
                "<4>slow",
                "<6>recording",
                "<7>detail"
            ]
        );
    }
}
