//! Runs a test inside a fresh network namespace so multicast can never
//! leave the machine (or reach anything real on it).
//!
//! `unshare(CLONE_NEWNET)` on a dedicated thread moves only that thread into
//! a new namespace holding just `lo`, which is brought up with the MULTICAST
//! flag (the host's `lo` may lack it, and then the kernel does not route
//! multicast over it). Every socket the test opens on that thread, including
//! those of its current-thread tokio runtime, lives in the namespace; port
//! 3702 there is free. Needs root (CAP_SYS_ADMIN), as the test suite has.

use std::future::Future;
use std::io;

/// Runs `test` on a thread in its own network namespace with a
/// current-thread tokio runtime. Panics propagate.
pub fn isolated<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let outcome = std::thread::spawn(move || {
        // SAFETY: plain syscall; affects only this thread.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET) failed (these tests need root): {}",
            io::Error::last_os_error()
        );
        loopback_up_with_multicast().expect("bring lo up with MULTICAST in the namespace");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(test());
    })
    .join();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// `ip link set lo up multicast on`, by ioctl.
fn loopback_up_with_multicast() -> io::Result<()> {
    // SAFETY: a socket and two ioctls on a zeroed, NUL-terminated ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_MULTICAST) as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result
    }
}
