//! The HTTP edge of one core: hyper 1.x running on a glommio executor.
//!
//! This module owns the adapters hyper needs to run on glommio (`Io` for sockets, `LocalExec`
//! for spawning `!Send` tasks, `CoreTimer` for hyper's timeouts), the response body type
//! (`Body`, boxed without a `Send` bound so it can stream from core-local channels), the accept
//! loop (`serve_with`) that speaks HTTP/1.1 and h2c (prior knowledge) on one port, and the per-core
//! `ShutdownSignal` that drains that loop gracefully. It knows nothing about Kinesis: the caller
//! passes a handler that maps a request to a response.
//!
//! Every core binds the same address; glommio always sets `SO_REUSEPORT`, so the kernel spreads
//! new connections over the cores. Each connection stays on the core that accepted it.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite, Stream};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::{TcpListener, TcpStream};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::{Request, Response};

/// A response body. Boxed without a `Send` bound (glommio tasks and channels are `!Send`), so a
/// body may stream from a core-local channel. Build one with [`full`], [`empty`],
/// [`stream_body`] or [`channel_body`].
pub type Body = Pin<Box<dyn hyper::body::Body<Data = Bytes, Error = Infallible>>>;

/// A complete, in-memory response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Box::pin(http_body_util::Full::new(bytes.into()))
}

/// An empty response body.
pub fn empty() -> Body {
    Box::pin(http_body_util::Empty::<Bytes>::new())
}

/// A response body that sends each item of `stream` as soon as it is produced (one HTTP/1.1
/// chunk or one HTTP/2 DATA frame per item, flushed when the stream has nothing more ready).
/// The body ends when the stream ends.
pub fn stream_body<S>(stream: S) -> Body
where
    S: Stream<Item = Bytes> + 'static,
{
    Box::pin(StreamBody { stream: Box::pin(stream), stop: None })
}

/// Like [`stream_body`], but the body also ends cleanly when `shutdown` fires, so long-lived
/// event streams (SubscribeToShard) do not hold up a graceful shutdown.
pub fn stream_body_until<S>(stream: S, shutdown: &ShutdownSignal) -> Body
where
    S: Stream<Item = Bytes> + 'static,
{
    Box::pin(StreamBody { stream: Box::pin(stream), stop: Some(shutdown.wait()) })
}

/// A streamed response body fed by a glommio local channel: every `Bytes` sent on the channel
/// becomes one chunk; the body ends when all senders are dropped.
pub fn channel_body(receiver: LocalReceiver<Bytes>) -> Body {
    stream_body(receiver_stream(receiver))
}

/// An owned stream over a glommio local channel (`LocalReceiver::stream` only borrows).
pub fn receiver_stream<T: 'static>(receiver: LocalReceiver<T>) -> impl Stream<Item = T> {
    futures_lite::stream::unfold(receiver, |receiver| async move {
        let item = receiver.recv().await?;
        Some((item, receiver))
    })
}

/// Empty chunks are skipped (an empty chunk would end an HTTP/1.1 chunked body); this bounds
/// how many are skipped in one poll before yielding to the executor.
const EMPTY_CHUNKS_PER_POLL_MAX: usize = 64;

struct StreamBody<S> {
    stream: Pin<Box<S>>,
    stop: Option<ShutdownWait>,
}

impl<S: Stream<Item = Bytes>> hyper::body::Body for StreamBody<S> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(stop) = &mut this.stop
            && Pin::new(stop).poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        for _ in 0..EMPTY_CHUNKS_PER_POLL_MAX {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(chunk)) if chunk.is_empty() => continue,
                Poll::Ready(Some(chunk)) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Content-Length, or the bytes received so far, exceed the limit. The rest of the body was
    /// not read; the connection will not be reused for another request (HTTP/1.1).
    TooLarge { limit_bytes: usize },
    /// The connection failed or the client aborted while sending the body.
    Read(hyper::Error),
    /// No byte of the body arrived within the stall timeout (`BODY_STALL_TIMEOUT`).
    Stalled,
}

/// Longest wait for the next piece of a request body (like nginx's `client_body_timeout`): a
/// client that sends a body a byte a minute must not hold a connection and its buffer forever.
pub const BODY_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a response write may wait for the client to take bytes: a client that never reads
/// its response (a 13 MB GetRecords page) must not pin it in memory forever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(60);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit_bytes } => {
                write!(f, "request body exceeds the limit of {limit_bytes} bytes")
            }
            BodyError::Read(error) => write!(f, "reading the request body failed: {error}"),
            BodyError::Stalled => write!(f, "the request body stalled"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::TooLarge { .. } | BodyError::Stalled => None,
            BodyError::Read(error) => Some(error),
        }
    }
}

/// Collects a request body of at most `limit` bytes. Fails before reading anything when the
/// declared Content-Length exceeds `limit`, and as soon as the received bytes exceed it, so no
/// more than `limit` bytes (plus one frame) are ever buffered. A body that arrives in one frame
/// is returned without copying.
pub async fn read_body_limited(
    mut body: Incoming,
    limit: usize,
    stall_timeout: Duration,
) -> Result<Bytes, BodyError> {
    let too_large = || BodyError::TooLarge { limit_bytes: limit };
    let hint: SizeHint = hyper::body::Body::size_hint(&body);
    if hint.lower() > limit as u64 {
        return Err(too_large());
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut received: usize = 0;
    loop {
        // A frame already buffered is taken without arming a timer (the common case: a small
        // body arrives with its head), so the stall timeout costs nothing per request.
        let mut frame = std::pin::pin!(body.frame());
        let next = match futures_lite::future::poll_once(&mut frame).await {
            Some(next) => next,
            None => {
                let waited = futures_lite::future::or(async { Some(frame.await) }, async {
                    glommio::timer::sleep(stall_timeout).await;
                    None
                })
                .await;
                waited.ok_or(BodyError::Stalled)?
            }
        };
        let Some(frame) = next else { break };
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(chunk) = frame.into_data() else { continue }; // Trailers are ignored.
        if chunk.is_empty() {
            continue;
        }
        received = received.saturating_add(chunk.len());
        if received > limit {
            return Err(too_large());
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(chunk),
            (Some(_), None) => {
                let head = first.take().expect("first chunk is present");
                let capacity = usize::try_from(hint.lower()).unwrap_or(limit).max(received);
                let mut buffer = BytesMut::with_capacity(capacity.min(limit));
                buffer.extend_from_slice(&head);
                buffer.extend_from_slice(&chunk);
                joined = Some(buffer);
            }
            (_, Some(buffer)) => buffer.extend_from_slice(&chunk),
        }
    }
    debug_assert!(received <= limit);
    Ok(match (first, joined) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(chunk), None) => chunk,
        (None, None) => Bytes::new(),
    })
}

/// hyper's executor for a glommio core: spawns the task on the current executor (hyper uses
/// it for HTTP/2 streams). Futures need not be `Send`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        glommio::spawn_local(future).detach();
    }
}

/// hyper's timer: glommio's own timers, kept by the executor of the core that serves the
/// connection (no timer thread, no syscall and no cross-thread wake-up per request). Without a
/// timer hyper silently disables `header_read_timeout` and HTTP/2 keep-alive.
///
/// hyper asks for `Send + Sync` sleeps (its timer API serves multi-threaded runtimes), which
/// glommio's `Timer` is not. `CoreSleep` is `Send + Sync` by contract: it is only ever
/// touched on the thread that created it, and it checks. Our connections are `!Send` futures
/// spawned on their core (`LocalExec`), so hyper never moves one of their sleeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreTimer;

struct CoreSleep {
    timer: std::mem::ManuallyDrop<glommio::timer::Timer>,
    thread: std::thread::ThreadId,
}

// SAFETY: the glommio timer inside is only accessed (polled, reset, dropped) on `thread`, the
// thread that created it: `poll` and `reset` check, and `drop` leaks the timer elsewhere. A
// shared reference gives no access to it at all.
unsafe impl Send for CoreSleep {}
// SAFETY: see `Send`; `&CoreSleep` exposes nothing.
unsafe impl Sync for CoreSleep {}

impl CoreSleep {
    /// Must be called on a glommio executor thread (hyper calls it from the connection task).
    fn new(duration: Duration) -> CoreSleep {
        CoreSleep {
            timer: std::mem::ManuallyDrop::new(glommio::timer::Timer::new(duration)),
            thread: std::thread::current().id(),
        }
    }

    fn on_own_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }
}

impl Future for CoreSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.on_own_thread() {
            // Unreachable (see `CoreTimer`); expiring early beats touching another thread's timer.
            debug_assert!(false, "a CoreSleep was polled off its core");
            return Poll::Ready(());
        }
        Pin::new(&mut *self.timer).poll(cx).map(|_| ())
    }
}

impl Drop for CoreSleep {
    fn drop(&mut self) {
        if self.on_own_thread() {
            // SAFETY: dropped exactly once, here, on the timer's own thread.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.timer) }
        }
        // Elsewhere the timer is leaked: its registration ends when it fires on its core.
    }
}

impl hyper::rt::Sleep for CoreSleep {}

impl hyper::rt::Timer for CoreTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(CoreSleep::new(duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<CoreSleep>() {
            Some(sleep) if sleep.on_own_thread() => {
                let sleep = sleep.get_mut();
                sleep.timer.reset(new_deadline.saturating_duration_since(Instant::now()));
            }
            _ => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The first bytes of a connection must arrive within this deadline. hyper's protocol
/// detection (HTTP/1.1 or h2 preface) has no timeout of its own, so without it a client that
/// connects and sends nothing would hold a connection slot forever.
struct FirstBytesDeadline {
    bytes_remaining: usize,
    timer: glommio::timer::Timer,
}

/// The length of the HTTP/2 connection preface, which hyper-util reads to pick the protocol.
const H2_PREFACE_BYTES: usize = 24;

/// A glommio TCP stream as hyper IO. Reads zero-fill the part of hyper's buffer they may write
/// into (hyper's buffer may be uninitialised memory; glommio's `AsyncRead` wants `&mut [u8]`).
pub struct Io {
    stream: TcpStream,
    first_bytes: Option<FirstBytesDeadline>,
    /// How long writes may stay pending (see `WRITE_STALL_TIMEOUT`), and the timer armed
    /// while they do.
    write_stall_timeout: Duration,
    write_stall: Option<glommio::timer::Timer>,
    /// Reused buffer for gathered writes (at most `GATHER_BYTES_MAX`).
    gather: Vec<u8>,
}

/// Vectored writes copy at most this much into one write (see `poll_write_vectored`).
const GATHER_BYTES_MAX: usize = 64 * 1024;

/// Reads are capped at this size, which bounds the zero-fill per read.
const READ_BYTES_MAX: usize = 64 * 1024;

impl Io {
    /// Wraps `stream`. When `first_bytes_timeout` is set, reads fail with `TimedOut` if the
    /// first 24 bytes (enough for protocol detection) do not arrive in time. Must be called on
    /// a glommio executor.
    pub fn new(
        stream: TcpStream,
        first_bytes_timeout: Option<Duration>,
        write_stall_timeout: Duration,
    ) -> Io {
        let first_bytes = first_bytes_timeout.map(|timeout| FirstBytesDeadline {
            bytes_remaining: H2_PREFACE_BYTES,
            timer: glommio::timer::Timer::new(timeout),
        });
        Io { stream, first_bytes, write_stall_timeout, write_stall: None, gather: Vec::new() }
    }
}

impl Io {
    /// Passes a write's result through, failing it with `TimedOut` once writes have been
    /// pending (no byte taken by the client) for `WRITE_STALL_TIMEOUT`; hyper then closes the
    /// connection and drops the response.
    fn watch_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_stall = None;
            return result;
        }
        let timeout = self.write_stall_timeout;
        let timer = self.write_stall.get_or_insert_with(|| glommio::timer::Timer::new(timeout));
        if Pin::new(timer).poll(cx).is_ready() {
            self.write_stall = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no response bytes in time",
            )));
        }
        Poll::Pending
    }
}

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // SAFETY: `as_mut` hands out the unfilled part of hyper's buffer, possibly
        // uninitialised. We initialise (zero) a prefix of it before viewing it as `[u8]`, never
        // de-initialise anything, and advance the cursor only by the bytes glommio reports read
        // into that prefix.
        let result = unsafe {
            let unfilled = buf.as_mut();
            let length = unfilled.len().min(READ_BYTES_MAX);
            let pointer = unfilled.as_mut_ptr().cast::<u8>();
            pointer.write_bytes(0, length);
            let slice = std::slice::from_raw_parts_mut(pointer, length);
            match Pin::new(&mut this.stream).poll_read(cx, slice) {
                Poll::Ready(Ok(read)) => {
                    debug_assert!(read <= length);
                    buf.advance(read);
                    Poll::Ready(Ok(read))
                }
                Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            }
        };
        match result {
            Poll::Ready(Ok(read)) => {
                if let Some(deadline) = &mut this.first_bytes {
                    deadline.bytes_remaining = deadline.bytes_remaining.saturating_sub(read);
                    if deadline.bytes_remaining == 0 || read == 0 {
                        this.first_bytes = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                if let Some(deadline) = &mut this.first_bytes
                    && Pin::new(&mut deadline.timer).poll(cx).is_ready()
                {
                    this.first_bytes = None;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client sent no request in time",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.watch_write(cx, result)
    }

    /// Saying yes here switches hyper's HTTP/1 writer from copying every body into one
    /// buffer ("flatten": 17% of a core at 13 MB GetRecords pages) to queueing the body's
    /// `Bytes` and handing both to this method.
    fn is_write_vectored(&self) -> bool {
        true
    }

    /// glommio's stream writes one buffer per call, so small pieces (the head and a small
    /// body) are gathered into one write, one TCP send per small response as before; a large
    /// body is written from its own `Bytes` after at most `GATHER_BYTES_MAX` of it is gathered.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let mut pieces = bufs.iter().filter(|b| !b.is_empty());
        let Some(first) = pieces.next() else { return Poll::Ready(Ok(0)) };
        if first.len() >= GATHER_BYTES_MAX || bufs.len() == 1 {
            let result = Pin::new(&mut this.stream).poll_write(cx, first);
            return this.watch_write(cx, result);
        }
        // Written bytes count from the start of `bufs`, and the gathered bytes are a prefix of
        // their concatenation, so a short write reports correctly.
        this.gather.clear();
        this.gather.extend_from_slice(first);
        for piece in pieces {
            let room = GATHER_BYTES_MAX - this.gather.len();
            if room == 0 {
                break;
            }
            this.gather.extend_from_slice(&piece[..piece.len().min(room)]);
        }
        let result = Pin::new(&mut this.stream).poll_write(cx, &this.gather);
        this.watch_write(cx, result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// A per-core, one-way shutdown flag: cheap to clone (`Rc`), `trigger` is idempotent, and any
/// number of tasks on the same core can await [`ShutdownSignal::wait`]. Not `Send`: to shut
/// down several cores, trigger each core's signal from a task on that core.
#[derive(Clone, Default)]
pub struct ShutdownSignal {
    inner: Rc<ShutdownInner>,
}

#[derive(Default)]
struct ShutdownInner {
    triggered: Cell<bool>,
    waiters: RefCell<Waiters>,
}

/// Wakers of pending `ShutdownWait`s, in slots that are reused when a wait is dropped, so the
/// list is bounded by the number of waits alive at once.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownSignal").field("triggered", &self.is_triggered()).finish()
    }
}

impl ShutdownSignal {
    pub fn new() -> ShutdownSignal {
        ShutdownSignal::default()
    }

    /// Fires the signal and wakes every waiter. Calling it again does nothing.
    pub fn trigger(&self) {
        if self.inner.triggered.replace(true) {
            return;
        }
        let wakers: Vec<Waker> = {
            let mut waiters = self.inner.waiters.borrow_mut();
            waiters.slots.iter_mut().filter_map(Option::take).collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.get()
    }

    /// A future that completes once the signal has fired (at once if it already has).
    pub fn wait(&self) -> ShutdownWait {
        ShutdownWait { inner: Rc::clone(&self.inner), slot: None }
    }
}

/// The future returned by [`ShutdownSignal::wait`].
pub struct ShutdownWait {
    inner: Rc<ShutdownInner>,
    slot: Option<usize>,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.inner.triggered.get() {
            return Poll::Ready(());
        }
        let this = &mut *self;
        let mut waiters = this.inner.waiters.borrow_mut();
        match this.slot {
            Some(slot) => match &mut waiters.slots[slot] {
                Some(waker) => waker.clone_from(cx.waker()),
                empty => *empty = Some(cx.waker().clone()),
            },
            None => {
                let waker = Some(cx.waker().clone());
                let slot = match waiters.free.pop() {
                    Some(slot) => {
                        waiters.slots[slot] = waker;
                        slot
                    }
                    None => {
                        waiters.slots.push(waker);
                        waiters.slots.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for ShutdownWait {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut waiters = self.inner.waiters.borrow_mut();
            waiters.slots[slot] = None;
            waiters.free.push(slot);
        }
    }
}

/// Bounds and timeouts of [`serve_with`]. `Default` gives the daemon's values (its configuration sets `shutdown_timeout`).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// An HTTP/1.1 request head (and a connection's first bytes) must arrive within this time;
    /// it also closes idle keep-alive connections.
    pub header_read_timeout: Duration,
    /// Interval of HTTP/2 PINGs that detect dead peers.
    pub h2_keep_alive_interval: Duration,
    /// A PING not answered within this time closes the HTTP/2 connection.
    pub h2_keep_alive_timeout: Duration,
    /// Concurrent streams a client may open on one HTTP/2 connection.
    pub h2_streams_concurrent_max: u32,
    /// Open connections on this core; connections beyond it are closed at once.
    pub connections_max: usize,
    /// How long a graceful shutdown waits for in-flight requests before closing connections.
    pub shutdown_timeout: Duration,
    /// A response write that the client takes no byte of for this long closes the connection.
    pub write_stall_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            header_read_timeout: Duration::from_secs(30),
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(20),
            h2_streams_concurrent_max: 256,
            connections_max: 4096,
            shutdown_timeout: Duration::from_secs(10),
            write_stall_timeout: WRITE_STALL_TIMEOUT,
        }
    }
}

/// After the shutdown timeout, connections are dropped; this bounds the wait for their tasks.
pub const FORCED_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Pause after a failed accept (for example EMFILE), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Accepts connections on `listener` and serves each on this core with `handler` until
/// `shutdown` fires. Then it stops accepting, asks every connection to shut down gracefully
/// (HTTP/1.1: close after the current response; HTTP/2: GOAWAY), waits up to
/// `options.shutdown_timeout` for in-flight requests, closes whatever is left, and returns.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: ShutdownSignal,
    options: ServeOptions,
) where
    H: Fn(Request<Incoming>) -> F + Clone + 'static,
    F: Future<Output = Response<Body>> + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(LocalExec);
    builder.http1().timer(CoreTimer).header_read_timeout(options.header_read_timeout);
    builder
        .http2()
        .timer(CoreTimer)
        .keep_alive_interval(options.h2_keep_alive_interval)
        .keep_alive_timeout(options.h2_keep_alive_timeout)
        .max_concurrent_streams(options.h2_streams_concurrent_max);
    let builder = Rc::new(builder);
    let tracker = Rc::new(ConnectionTracker::default());
    let force_close = ShutdownSignal::new();

    while !shutdown.is_triggered() {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            shutdown.wait().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if tracker.live.get() >= options.connections_max {
            tracing::debug!(
                connections_max = options.connections_max,
                "connection limit reached; closing a new connection"
            );
            drop(stream);
            continue;
        }
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "set_nodelay failed");
        }
        let peer = stream.peer_addr().ok();
        let io = Io::new(stream, Some(options.header_read_timeout), options.write_stall_timeout);
        let guard = ConnectionGuard::new(&tracker);
        let builder = Rc::clone(&builder);
        let handler = handler.clone();
        let shutdown = shutdown.clone();
        let force_close = force_close.clone();
        glommio::spawn_local(async move {
            let _guard = guard;
            let service = hyper::service::service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let connection = builder.serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            let finished =
                futures_lite::future::or(async { Some(connection.as_mut().await) }, async {
                    shutdown.wait().await;
                    None
                })
                .await;
            let result = match finished {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    let drained = futures_lite::future::or(
                        async { Some(connection.as_mut().await) },
                        async {
                            force_close.wait().await;
                            None
                        },
                    )
                    .await;
                    match drained {
                        Some(result) => result,
                        None => {
                            tracing::debug!(?peer, "connection closed at the shutdown timeout");
                            return;
                        }
                    }
                }
            };
            if let Err(error) = result {
                // Clients resetting or dropping connections is routine; not worth more.
                tracing::debug!(?peer, %error, "connection ended with an error");
            }
        })
        .detach();
    }

    drop(listener);
    let live = tracker.live.get();
    if live == 0 {
        return;
    }
    tracing::debug!(live, "stopped accepting; draining connections");
    tracker.draining.set(true);
    let drained = futures_lite::future::or(async { tracker.drained.wait().await }, async {
        glommio::timer::sleep(options.shutdown_timeout).await;
    });
    drained.await;
    let live = tracker.live.get();
    if live > 0 {
        tracing::info!(live, "shutdown timeout reached; closing remaining connections");
        force_close.trigger();
        futures_lite::future::or(async { tracker.drained.wait().await }, async {
            glommio::timer::sleep(FORCED_CLOSE_WAIT).await;
        })
        .await;
    }
}

/// Counts this core's open connections; once draining, fires `drained` at zero.
#[derive(Default)]
struct ConnectionTracker {
    live: Cell<usize>,
    draining: Cell<bool>,
    drained: ShutdownSignal,
}

struct ConnectionGuard {
    tracker: Rc<ConnectionTracker>,
}

impl ConnectionGuard {
    fn new(tracker: &Rc<ConnectionTracker>) -> ConnectionGuard {
        tracker.live.set(tracker.live.get() + 1);
        ConnectionGuard { tracker: Rc::clone(tracker) }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let live = self.tracker.live.get();
        debug_assert!(live > 0);
        self.tracker.live.set(live - 1);
        if live == 1 && self.tracker.draining.get() {
            self.tracker.drained.trigger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn shutdown_signal_wakes_waiters_and_reuses_slots() {
        glommio::LocalExecutorBuilder::default().io_memory(1 << 20).make().expect("executor").run(
            async {
                let signal = ShutdownSignal::new();
                let first = glommio::spawn_local({
                    let signal = signal.clone();
                    async move { signal.wait().await }
                });
                // A dropped wait frees its slot for the next one.
                for _ in 0..10 {
                    let wait = signal.wait();
                    let _ = futures_lite::future::poll_once(wait).await;
                }
                glommio::executor().yield_task_queue_now().await;
                assert!(signal.inner.waiters.borrow().slots.len() <= 2);
                assert!(!signal.is_triggered());
                signal.trigger();
                signal.trigger();
                first.await;
                signal.wait().await;
            },
        );
    }

    /// Serves `handler` with `options` on a loopback port, on a glommio executor in its own
    /// thread, until the returned sender fires (or is dropped); the handle joins that thread.
    fn start_server<H, F>(
        handler: H,
        options: ServeOptions,
    ) -> (std::net::SocketAddr, futures_channel::oneshot::Sender<()>, std::thread::JoinHandle<()>)
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
        F: Future<Output = Response<Body>> + 'static,
    {
        let (address_sender, address_receiver) = std::sync::mpsc::channel();
        let (stop_sender, stop_receiver) = futures_channel::oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            glommio::LocalExecutorBuilder::default()
                .io_memory(1 << 20)
                .make()
                .expect("executor")
                .run(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
                    address_sender.send(listener.local_addr().expect("address")).expect("send");
                    let shutdown = ShutdownSignal::new();
                    glommio::spawn_local({
                        let shutdown = shutdown.clone();
                        async move {
                            let _ = stop_receiver.await;
                            shutdown.trigger();
                        }
                    })
                    .detach();
                    serve_with(listener, handler, shutdown, options).await;
                })
        });
        (address_receiver.recv().expect("address"), stop_sender, server)
    }

    fn http_exchange(address: std::net::SocketAddr, request: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    }

    #[test]
    fn serves_http1_limits_bodies_and_shuts_down() {
        let handler = |request: Request<Incoming>| async move {
            match read_body_limited(request.into_body(), 8, BODY_STALL_TIMEOUT).await {
                Ok(body) => Response::new(full(body)),
                Err(error) => {
                    Response::builder().status(413).body(full(error.to_string())).expect("response")
                }
            }
        };
        let (address, stop_sender, server) = start_server(handler, ServeOptions::default());
        let ok = http_exchange(
            address,
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("hello"), "{ok}");
        let declared = http_exchange(
            address,
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\nConnection: close\r\n\r\n123456789",
        );
        assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
        let chunked = http_exchange(
            address,
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n",
        );
        assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
        let joined = http_exchange(
            address,
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
        );
        assert!(joined.ends_with("abcdef"), "{joined}");

        // An idle keep-alive connection must not hold up the shutdown.
        let mut idle = std::net::TcpStream::connect(address).expect("connect");
        idle.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        let mut buffer = [0u8; 256];
        let read = idle.read(&mut buffer).expect("read");
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"));
        let started = Instant::now();
        stop_sender.send(()).expect("stop");
        server.join().expect("server thread");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn limits_connections_and_force_closes_at_the_shutdown_timeout() {
        let handler = |_request: Request<Incoming>| async move {
            glommio::timer::sleep(Duration::from_secs(60)).await;
            Response::new(empty())
        };
        let options = ServeOptions {
            connections_max: 1,
            shutdown_timeout: Duration::from_millis(300),
            ..ServeOptions::default()
        };
        let (address, stop_sender, server) = start_server(handler, options);
        let mut stuck = std::net::TcpStream::connect(address).expect("connect");
        stuck.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stuck.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(100));

        let mut refused = std::net::TcpStream::connect(address).expect("connect");
        refused.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut buffer = [0u8; 64];
        assert_eq!(refused.read(&mut buffer).expect("closed, not timed out"), 0);

        let started = Instant::now();
        stop_sender.send(()).expect("stop");
        server.join().expect("server thread");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        let read = stuck.read(&mut buffer).unwrap_or(0);
        assert_eq!(read, 0, "the stuck request got no response");
    }

    /// A body that stops arriving fails with `Stalled` after the stall timeout (not before),
    /// and the handler can answer.
    #[test]
    fn a_stalled_request_body_times_out() {
        let handler = |request: Request<Incoming>| async move {
            match read_body_limited(request.into_body(), 1 << 20, Duration::from_millis(400)).await
            {
                Ok(_) => Response::new(empty()),
                Err(BodyError::Stalled) => {
                    Response::builder().status(408).body(empty()).expect("response")
                }
                Err(other) => panic!("{other}"),
            }
        };
        let (address, stop_sender, server) = start_server(handler, ServeOptions::default());
        let started = Instant::now();
        let response = http_exchange(
            address,
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly ten.",
        );
        let elapsed = started.elapsed();
        assert!(response.starts_with("HTTP/1.1 408"), "{response}");
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        stop_sender.send(()).expect("stop");
        server.join().expect("server thread");
    }

    /// A client that never reads its (large) response: the write stalls, and after the
    /// write-stall timeout the connection is closed and the rest of the response dropped.
    #[test]
    fn a_response_the_client_never_reads_is_dropped() {
        const LEN: usize = 256 << 20;
        let handler =
            |_request: Request<Incoming>| async move { Response::new(full(vec![b'x'; LEN])) };
        let options = ServeOptions {
            write_stall_timeout: Duration::from_millis(400),
            ..ServeOptions::default()
        };
        let (address, stop_sender, server) = start_server(handler, options);
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
        // Read nothing until the server has given up.
        std::thread::sleep(Duration::from_secs(2));
        let mut received = 0usize;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
        assert!(received > 0, "part of the response was sent");
        assert!(received < LEN, "the whole {LEN}-byte response was held for a stalled client");
        stop_sender.send(()).expect("stop");
        server.join().expect("server thread");
    }

    /// hyper's `header_read_timeout` runs on `CoreTimer`: a connection whose request head
    /// stalls half-way (past the first-bytes deadline) is closed once the timeout passes, not
    /// before; a request in time on another connection is still answered.
    #[test]
    fn header_read_timeout_closes_a_stalled_request_head() {
        let handler = |_request: Request<Incoming>| async move { Response::new(empty()) };
        let options = ServeOptions {
            header_read_timeout: Duration::from_millis(400),
            ..ServeOptions::default()
        };
        let (address, stop_sender, server) = start_server(handler, options);
        let mut stalled = std::net::TcpStream::connect(address).expect("connect");
        stalled.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let started = Instant::now();
        // More than the 24 bytes of the first-bytes deadline, but no end of head.
        stalled.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nX-Slow: 1").expect("write");
        let ok = http_exchange(address, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let mut rest = Vec::new();
        // hyper may answer 408 before closing; either way the connection ends.
        stalled.read_to_end(&mut rest).expect("closed, not timed out");
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "closed after {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
        assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"), "{rest:?}");
        stop_sender.send(()).expect("stop");
        server.join().expect("server thread");
    }
}
