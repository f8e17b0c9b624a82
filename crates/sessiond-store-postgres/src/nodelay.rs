//! TCP_NODELAY on the connections to PostgreSQL, which sqlx does not set (libpq does).
//!
//! Without it a message larger than the socket's send buffer (16 KiB by default on Linux) goes
//! out in two writes, and Nagle's algorithm holds the second until the first is acknowledged —
//! which PostgreSQL's kernel delays by up to 40 ms, since the server cannot answer half a
//! message. A grouped insert of 20 sessions, or one large attachment, then took 45 ms instead of
//! 2. sqlx exposes no socket, so after a connection opens this finds the process's TCP sockets
//! to the server's port through `/proc/self/fd` and sets the option on a duplicate of each
//! descriptor (same socket), obtained with `pidfd_getfd` — no unsafe code. Where that is not
//! possible (not Linux, or Linux before 5.6) nothing changes but the stall on large messages.

/// Sets TCP_NODELAY on every TCP socket of this process connected to `port`.
#[cfg(target_os = "linux")]
pub(crate) fn set_for_peer_port(port: u16) {
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};
    let Ok(me) = pidfd_open(getpid(), PidfdFlags::empty()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let Ok(dup) = pidfd_getfd(&me, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let to_server = rustix::net::getpeername(&dup)
            .ok()
            .flatten()
            .and_then(|a| std::net::SocketAddr::try_from(a).ok())
            .is_some_and(|a| a.port() == port);
        if to_server && rustix::net::sockopt::tcp_nodelay(&dup) == Ok(false) {
            let _ = rustix::net::sockopt::set_tcp_nodelay(&dup, true);
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_for_peer_port(_port: u16) {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sockets_to_the_port_get_nodelay_and_others_keep_their_setting() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let other = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = |l: &TcpListener| l.local_addr().map(|a| a.port()).unwrap_or_default();
        let to_server =
            TcpStream::connect(("127.0.0.1", port(&server))).unwrap_or_else(|e| panic!("{e}"));
        let to_other =
            TcpStream::connect(("127.0.0.1", port(&other))).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(to_server.nodelay().ok(), Some(false));
        super::set_for_peer_port(port(&server));
        assert_eq!(to_server.nodelay().ok(), Some(true));
        assert_eq!(to_other.nodelay().ok(), Some(false));
    }
}
