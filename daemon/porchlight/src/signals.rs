//! Waiting for the signals that mean "stop".

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM/SIGINT handlers, registered up front.
///
/// Registering happens at construction, not at the first poll: a service
/// manager (or a test) may send SIGTERM the moment `/healthz` answers, and a
/// signal that arrives before the handler exists kills the process uncleanly.
pub struct StopSignals {
    handlers: Option<(Signal, Signal)>,
}

impl StopSignals {
    pub fn register() -> Self {
        let handlers = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => {
                tracing::warn!("cannot install SIGTERM/SIGINT handlers; stop with SIGKILL");
                None
            }
        };
        StopSignals { handlers }
    }

    /// Resolves on SIGTERM or SIGINT.
    pub async fn received(&mut self) {
        let Some((term, int)) = self.handlers.as_mut() else {
            // Without handlers we can only wait forever; SIGKILL still works.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
