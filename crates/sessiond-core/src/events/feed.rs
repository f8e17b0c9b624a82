//! Positions in an application's event sequence, and the signal long-polling readers wait on.

use std::fmt;

/// Where a reader of the events is: every event after it is new to the reader.
///
/// Two numbers because PostgreSQL hands out sequence values before commit: a reader that went by
/// the sequence alone could pass over an event whose transaction committed late. PostgreSQL
/// readers therefore see only events of transactions older than every transaction still running
/// (`txid`), in (`txid`, `seq`) order; SQLite, with one writer, has `txid` 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub txid: i64,
    pub seq: i64,
}

impl Position {
    /// Before every event.
    pub const START: Position = Position { txid: 0, seq: 0 };

    /// The cursor a client holds: opaque to it, two decimal numbers to us.
    pub fn encode(self) -> String {
        format!("{}.{}", self.txid, self.seq)
    }

    pub fn decode(s: &str) -> Option<Position> {
        let (txid, seq) = s.split_once('.')?;
        let number = |p: &str| -> Option<i64> {
            if p.is_empty() || p.len() > 19 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        Some(Position {
            txid: number(txid)?,
            seq: number(seq)?,
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Raised whenever this node commits an event, so long-polling readers on the node answer at
/// once; readers also re-read on a short period for events other nodes wrote.
#[derive(Debug)]
pub struct EventSignal(tokio::sync::watch::Sender<u64>);

impl Default for EventSignal {
    fn default() -> Self {
        EventSignal(tokio::sync::watch::channel(0).0)
    }
}

impl EventSignal {
    pub fn raise(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Events this node has written since it started.
    pub fn raised(&self) -> u64 {
        *self.0.borrow()
    }

    /// A receiver that sees every raise after this call.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}
