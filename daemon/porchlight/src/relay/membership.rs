//! Whether this box is in the relay program right now. Leaving flips it
//! once, for everything at the same moment: the relay listener closes new
//! connections and refuses calls on open ones, and whatever serves live
//! video to the relay ends its shares.
//!
//! The hook for live share (and anything else that hands footage to the
//! relay): check [`Membership::is_member`] before serving, and end what is
//! running when [`Membership::left`] turns true (or on
//! [`crate::events::DaemonEvent::RelayLeft`] on the bus). Both happen
//! before any token or grant is revoked in the database.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

/// Shared, cheap to clone.
#[derive(Clone, Debug)]
pub struct Membership(Arc<watch::Sender<bool>>);

impl Membership {
    /// A member unless the box left and has not enrolled again
    /// (`relay/left.json` in the data dir).
    pub fn load(data_dir: &Path) -> Membership {
        let left = super::registry::state::left_path(data_dir).exists();
        Membership(Arc::new(watch::channel(left).0))
    }

    pub fn is_member(&self) -> bool {
        !*self.0.borrow()
    }

    /// Turns true once the owner leaves (and stays so for this run).
    pub fn left(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    pub(super) fn leave(&self) {
        self.0.send_replace(true);
    }
}
