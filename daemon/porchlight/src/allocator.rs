//! Allocator tuning for a daemon that runs for months.
//!
//! Every camera's fragment writes and index work run on tokio's blocking
//! pool, so with many cameras dozens of threads allocate and free video
//! buffers. glibc gives busy threads their own arenas (up to 8 per core),
//! and freed memory fragments across them: in the 64-camera soak the
//! resident size kept creeping (566 KiB/min after warm-up). Two arenas
//! halved that (268 KiB/min, and RSS went back down between steps) with
//! no frame lost. See docs/decisions.md.

/// Arenas glibc may use; an explicit `MALLOC_ARENA_MAX` wins.
const ARENAS: i32 = 2;

/// Call before the runtime starts any thread.
pub fn tune_for_long_running_daemon() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called
        // before any other thread exists.
        let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        if applied != 1 {
            eprintln!("porchlight: could not limit malloc arenas (mallopt returned {applied}); continuing");
        }
    }
}
