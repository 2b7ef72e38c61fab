//! The process's contract with its supervisor: systemd readiness notification and termination
//! signals.
//!
//! `notify_ready`/`notify_stopping` speak the `sd_notify` datagram protocol over
//! `$NOTIFY_SOCKET` without libsystemd (so `Type=notify` units work), and do nothing when the
//! variable is unset. `install_signal_handlers` turns SIGTERM and SIGINT into a [`SignalFlag`]
//! that executor tasks on any core can await: the handler only `write`s one byte to a pipe
//! (async-signal-safe), and a plain thread reading the pipe raises the flag and wakes waiters.
//! A second signal while shutting down exits the process at once.

use std::ffi::OsStr;
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

/// Tells systemd the service is ready (`READY=1`). Call once every core is accepting.
pub fn notify_ready() {
    notify_logged("READY=1");
}

/// Tells systemd the service is shutting down (`STOPPING=1`).
pub fn notify_stopping() {
    notify_logged("STOPPING=1");
}

/// Sets the one-line status `systemctl status` shows (`STATUS=...`).
pub fn notify_status(status: &str) {
    notify_logged(&format!("STATUS={status}"));
}

fn notify_logged(state: &str) {
    match notify(state) {
        Ok(true) => tracing::debug!(state, "notified systemd"),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, state, "cannot notify systemd"),
    }
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to `$NOTIFY_SOCKET`. Returns
/// `Ok(false)` when the variable is unset, i.e. not running under a notify-aware supervisor.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => notify_to(&socket, state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends one datagram to a `NOTIFY_SOCKET` address: a filesystem path, or an abstract socket
/// name written with a leading `@`.
fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let sender = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sender.send_to_addr(state.as_bytes(), &address)?
    } else if bytes.starts_with(b"/") {
        sender.send_to(state.as_bytes(), socket)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported NOTIFY_SOCKET address {socket:?}"),
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short notify datagram"));
    }
    Ok(())
}

/// Set once SIGTERM or SIGINT has arrived (or [`SignalFlag::raise`] was called). Cheap to
/// clone, `Send + Sync`; [`SignalFlag::wait`] can be awaited on any executor (the waker is
/// woken from the signal thread).
#[derive(Clone, Debug, Default)]
pub struct SignalFlag {
    inner: Arc<SignalInner>,
}

#[derive(Debug, Default)]
struct SignalInner {
    /// The first signal number received, or 0.
    signal: AtomicI32,
    wakers: Mutex<Vec<Waker>>,
}

impl SignalFlag {
    /// A flag not connected to any signal (tests, or shutdown by other means).
    pub fn new() -> SignalFlag {
        SignalFlag::default()
    }

    /// Raises the flag as if `signal` had arrived, and wakes every waiter. Only the first
    /// raise is recorded.
    pub fn raise(&self, signal: i32) {
        assert!(signal > 0, "signal numbers are positive");
        let first = self
            .inner
            .signal
            .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if first {
            let wakers = std::mem::take(&mut *self.inner.wakers.lock().expect("not poisoned"));
            for waker in wakers {
                waker.wake();
            }
        }
    }

    pub fn is_raised(&self) -> bool {
        self.signal().is_some()
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.inner.signal.load(Ordering::Acquire) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// A future that completes with the signal number once the flag is raised.
    pub fn wait(&self) -> SignalWait {
        SignalWait { flag: self.clone() }
    }
}

/// The future returned by [`SignalFlag::wait`].
#[derive(Debug)]
pub struct SignalWait {
    flag: SignalFlag,
}

impl Future for SignalWait {
    type Output = i32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<i32> {
        if let Some(signal) = self.flag.signal() {
            return Poll::Ready(signal);
        }
        let mut wakers = self.flag.inner.wakers.lock().expect("not poisoned");
        // Checked again under the lock: `raise` takes the wakers under the same lock.
        if let Some(signal) = self.flag.signal() {
            return Poll::Ready(signal);
        }
        // One entry per waiting task, however often it polls.
        if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The pipe's write end, used by the signal handler; -1 until installed.
static SIGNAL_PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

static INSTALLED: OnceLock<SignalFlag> = OnceLock::new();

/// Runs in signal context: only async-signal-safe calls (`write`), and errno is preserved.
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, valid for the thread's lifetime.
    let errno = unsafe { *libc::__errno_location() };
    let fd = SIGNAL_PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signal as u8;
        // SAFETY: writes one byte from a live stack variable; the fd is non-blocking, so a
        // full pipe drops the byte instead of blocking the handler.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Routes SIGTERM and SIGINT to the returned flag, process-wide (whichever thread the kernel
/// picks runs the handler). The first signal raises the flag; a second one exits the process
/// at once with status 128 + signal. Calling it again returns the same flag.
pub fn install_signal_handlers() -> io::Result<SignalFlag> {
    if let Some(flag) = INSTALLED.get() {
        return Ok(flag.clone());
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    // SAFETY: fcntl on an fd we just created.
    if unsafe { libc::fcntl(write_fd, libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let flag = SignalFlag::new();
    let thread_flag = flag.clone();
    std::thread::Builder::new()
        .name("spate-signals".into())
        .spawn(move || watch_signals(read_fd, &thread_flag))?;
    SIGNAL_PIPE_WRITE.store(write_fd, Ordering::Relaxed);
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid starting value; we set the handler, an empty
        // mask and SA_RESTART (so other threads' syscalls are not interrupted with EINTR).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(INSTALLED.get_or_init(|| flag).clone())
}

/// The signal thread: blocks on the pipe, raises the flag on the first signal, exits the
/// process on the second. Ends only if the pipe fails.
fn watch_signals(read_fd: libc::c_int, flag: &SignalFlag) {
    let mut received: u32 = 0;
    loop {
        let mut byte = 0u8;
        // SAFETY: reads one byte into a live stack variable from the fd this thread owns.
        let read = unsafe { libc::read(read_fd, (&mut byte as *mut u8).cast(), 1) };
        if read < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!(%error, "signal pipe failed; signals are no longer handled");
            return;
        }
        if read == 0 {
            return;
        }
        let signal = i32::from(byte);
        received += 1;
        if received == 1 {
            tracing::info!(signal = signal_name(signal), "shutting down gracefully");
            flag.raise(signal);
        } else {
            tracing::warn!(signal = signal_name(signal), "second signal: exiting immediately");
            std::process::exit(128 + signal);
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn notifies_path_and_abstract_sockets() {
        let directory = std::env::temp_dir().join(format!("spate-notify-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("temp dir");
        let path = directory.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).expect("bind path");
        notify_to(path.as_os_str(), "READY=1").expect("notify path");
        let mut buffer = [0u8; 64];
        let length = receiver.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..length], b"READY=1");
        let _ = std::fs::remove_file(&path);

        use std::os::linux::net::SocketAddrExt;
        let name = format!("spate-notify-test-{}", std::process::id());
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let receiver = UnixDatagram::bind_addr(&address).expect("bind abstract");
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").expect("notify abstract");
        let length = receiver.recv(&mut buffer).expect("recv");
        assert_eq!(&buffer[..length], b"STOPPING=1");

        assert!(notify_to(OsStr::new("vsock:2:1"), "READY=1").is_err());
    }

    #[test]
    fn flag_wakes_a_waiter_on_another_thread() {
        let flag = SignalFlag::new();
        let waiter = {
            let flag = flag.clone();
            std::thread::spawn(move || futures_lite::future::block_on(flag.wait()))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!flag.is_raised());
        flag.raise(libc::SIGTERM);
        flag.raise(libc::SIGINT);
        assert_eq!(waiter.join().expect("waiter"), libc::SIGTERM);
        assert_eq!(flag.signal(), Some(libc::SIGTERM));
    }
}
