//! The accept loop and connection hygiene: a bounded number of open connections, timeouts for
//! slow request heads and idle keep-alive connections, and an accept loop that survives running
//! out of file descriptors.
//!
//! Every connection is registered with its activity: when it last finished a response, whether a
//! request is in flight, and when the first byte of a request head arrived. One sweeper task
//! closes connections whose head is too slow or that sat idle too long. At the connection limit,
//! the connection idle the longest is closed to make room, so that idle or half-open connections
//! can never lock out a new client (a health probe, say); only when every connection has a
//! request in flight is the new one refused.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a request head may take to arrive, from its first byte.
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in flight and no request started.
    pub idle_timeout: Duration,
}

/// What the sweeper and the eviction know about one connection. Times are milliseconds since
/// the listener started; 0 is "not set".
struct Activity {
    /// End of the last response, or the connection's start.
    idle_since: AtomicU64,
    /// Arrival of the first byte of a request head not yet complete.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    close: CancellationToken,
    closing: AtomicBool,
}

struct Registry {
    start: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        // At least 1, so that 0 keeps meaning "not set".
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn len(&self) -> usize {
        self.conns.lock().map_or(0, |m| m.len())
    }

    /// Closes the connection idle the longest; false if every connection is busy.
    fn evict_idlest(&self) -> bool {
        let Ok(conns) = self.conns.lock() else {
            return false;
        };
        let victim = conns
            .values()
            .filter(|a| {
                a.in_flight.load(Ordering::Relaxed) == 0 && !a.closing.load(Ordering::Relaxed)
            })
            .min_by_key(|a| a.idle_since.load(Ordering::Relaxed));
        match victim {
            Some(a) => {
                metrics::counter!("http_connections_evicted_total").increment(1);
                a.closing.store(true, Ordering::Relaxed);
                a.close.cancel();
                true
            }
            None => false,
        }
    }

    /// Closes connections past their header or idle deadline.
    fn sweep(&self, limits: &Limits) {
        let now = self.now_ms();
        let header = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX);
        let idle = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let Ok(conns) = self.conns.lock() else {
            return;
        };
        for a in conns.values() {
            if a.in_flight.load(Ordering::Relaxed) > 0 || a.closing.load(Ordering::Relaxed) {
                continue;
            }
            let head = a.head_since.load(Ordering::Relaxed);
            let expired = if head != 0 {
                now.saturating_sub(head) > header
            } else {
                now.saturating_sub(a.idle_since.load(Ordering::Relaxed)) > idle
            };
            if expired {
                metrics::counter!(
                    "http_connections_timed_out_total",
                    "reason" => if head != 0 { "header" } else { "idle" }
                )
                .increment(1);
                a.closing.store(true, Ordering::Relaxed);
                a.close.cancel();
            }
        }
    }
}

/// The socket, noting when a request head starts arriving.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.activity.in_flight.load(Ordering::Relaxed) == 0
            && self.activity.head_since.load(Ordering::Relaxed) == 0
        {
            let now = self.registry.now_ms();
            self.activity.head_since.store(now, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks a request in flight until its response is produced.
struct InFlight {
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn begin(activity: &Arc<Activity>, registry: &Arc<Registry>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_since.store(0, Ordering::Relaxed);
        InFlight {
            activity: activity.clone(),
            registry: registry.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity
            .idle_since
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether an accept error means the process is out of descriptors or memory: the listener
/// backs off and tries again rather than stop.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
            || code == rustix::io::Errno::NOBUFS.raw_os_error()
            || code == rustix::io::Errno::NOMEM.raw_os_error()
    )
}

/// Serves `app` on `listener` until `stop` is cancelled, then stops accepting and lets in-flight
/// requests finish for at most `budget`. Returns whether they all finished in time.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    stop: CancellationToken,
    budget: Duration,
) -> bool {
    let registry = Arc::new(Registry {
        start: Instant::now(),
        next_id: AtomicU64::new(1),
        conns: Mutex::new(HashMap::new()),
    });
    let tracker = TaskTracker::new();
    let sweeper = {
        let registry = registry.clone();
        let stop = stop.clone();
        let period = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = tick.tick() => registry.sweep(&limits),
                    () = stop.cancelled() => break,
                }
            }
        })
    };
    let mut last_exhaustion_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = stop.cancelled() => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                metrics::counter!("http_accept_errors_total").increment(1);
                if last_exhaustion_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(error = %e, "accepting a connection failed; backing off");
                    last_exhaustion_log = Some(Instant::now());
                }
                // Descriptors free up as connections close; retrying at once would spin.
                let pause = if is_resource_exhaustion(&e) {
                    registry.evict_idlest();
                    Duration::from_millis(50)
                } else {
                    Duration::from_millis(5)
                };
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if registry.len() >= limits.max_connections && !registry.evict_idlest() {
            metrics::counter!("http_connections_refused_total").increment(1);
            drop(socket);
            continue;
        }
        let _ = socket.set_nodelay(true);
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            idle_since: AtomicU64::new(registry.now_ms()),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            close: CancellationToken::new(),
            closing: AtomicBool::new(false),
        });
        if let Ok(mut m) = registry.conns.lock() {
            m.insert(id, activity.clone());
        }
        metrics::gauge!("http_connections_open").increment(1.0);
        let io = TokioIo::new(Watched {
            inner: socket,
            activity: activity.clone(),
            registry: registry.clone(),
        });
        let service = {
            let app = app.clone();
            let activity = activity.clone();
            let registry = registry.clone();
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let guard = InFlight::begin(&activity, &registry);
                req.extensions_mut().insert(ConnectInfo(peer));
                let call = tower::ServiceExt::oneshot(app.clone(), req);
                async move {
                    let resp = call.await;
                    drop(guard);
                    resp
                }
            })
        };
        let stop = stop.clone();
        let registry = registry.clone();
        tracker.spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // A timed-out or evicted connection is dropped: it has no request in flight.
                () = activity.close.cancelled() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            if let Ok(mut m) = registry.conns.lock() {
                m.remove(&id);
            }
            metrics::gauge!("http_connections_open").decrement(1.0);
        });
    }
    drop(listener);
    sweeper.abort();
    tracker.close();
    match tokio::time::timeout(budget, tracker.wait()).await {
        Ok(()) => {
            tracing::info!("in-flight requests finished");
            true
        }
        Err(_) => {
            tracing::warn!(
                timeout_secs = budget.as_secs(),
                "in-flight requests did not finish in time; exiting"
            );
            false
        }
    }
}

/// Raises the soft limit on open files to the hard limit, so the connection limit, not the
/// default of 1,024 descriptors, decides how many clients are served. Returns the soft limit
/// in force afterwards.
pub fn raise_nofile_limit() -> Option<u64> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let (Some(current), hard) = (limit.current, limit.maximum) else {
        return None;
    };
    let target = hard.unwrap_or(current).max(current);
    if target > current {
        let raised = rustix::process::Rlimit {
            current: Some(target),
            maximum: hard,
        };
        match rustix::process::setrlimit(rustix::process::Resource::Nofile, raised) {
            Ok(()) => return Some(target),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> (SocketAddr, CancellationToken) {
        async fn slow() -> &'static str {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "slow"
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let app = axum::Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/slow", get(slow));
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            app,
            limits,
            stop.clone(),
            Duration::from_secs(1),
        ));
        (addr, stop)
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends one request and reads until the response body `expect` (or the connection ends).
    async fn request(conn: &mut TcpStream, path: &str, expect: &str) -> String {
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        if conn.write_all(req.as_bytes()).await.is_err() {
            return String::new();
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&out).ends_with(expect) {
            match tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether the server closed the connection within `within`.
    async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, conn.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    const SHORT: Limits = Limits {
        max_connections: 100,
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(800),
    };

    #[tokio::test]
    async fn idle_and_slow_head_connections_are_closed() {
        let (addr, stop) = start(SHORT).await;
        let mut idle = connect(addr).await;
        let mut kept = connect(addr).await;
        assert!(
            request(&mut kept, "/", "ok")
                .await
                .starts_with("HTTP/1.1 200")
        );
        let mut partial = connect(addr).await;
        partial
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            closed_within(&mut partial, Duration::from_millis(700)).await,
            "a head that never completes is cut at the header timeout"
        );
        assert!(
            !closed_within(&mut idle, Duration::from_millis(100)).await,
            "an idle connection lives until the idle timeout"
        );
        assert!(closed_within(&mut idle, Duration::from_millis(1500)).await);
        assert!(
            closed_within(&mut kept, Duration::from_millis(1500)).await,
            "so does a kept-alive one after its response"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn at_the_limit_the_idlest_connection_makes_room() {
        let limits = Limits {
            max_connections: 3,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        };
        let (addr, stop) = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(connect(addr).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut probe = connect(addr).await;
        assert!(
            request(&mut probe, "/", "ok")
                .await
                .starts_with("HTTP/1.1 200"),
            "a new client is served although idle connections fill the limit"
        );
        assert!(
            closed_within(&mut idle[0], Duration::from_millis(500)).await,
            "the oldest idle connection was closed"
        );
        assert!(!closed_within(&mut idle[2], Duration::from_millis(100)).await);
        stop.cancel();
    }

    #[tokio::test]
    async fn when_every_connection_is_busy_a_new_one_is_refused() {
        let limits = Limits {
            max_connections: 1,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        };
        let (addr, stop) = start(limits).await;
        let mut busy = connect(addr).await;
        let slow = tokio::spawn(async move { request(&mut busy, "/slow", "slow").await });
        tokio::time::sleep(Duration::from_millis(150)).await;
        let mut extra = connect(addr).await;
        assert_eq!(request(&mut extra, "/", "ok").await, "", "refused");
        let slow = slow.await.unwrap_or_default();
        assert!(slow.ends_with("slow"), "the busy request finished: {slow}");
        let mut later = connect(addr).await;
        assert!(
            request(&mut later, "/", "ok")
                .await
                .starts_with("HTTP/1.1 200")
        );
        stop.cancel();
    }
}
