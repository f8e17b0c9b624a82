//! Whether anything was committed to the database since a moment ago, without a transaction.
//!
//! In WAL mode every connection to the file, in any process, shares the wal-index (the `-shm`
//! file). Its first 96 bytes are two copies of a 48-byte header that the committing connection
//! rewrites on every commit: a change counter, the last valid frame and the log's salts (a
//! restarted log gets new salts). The layout is SQLite's documented file format
//! (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header"), stable since WAL appeared.
//!
//! A writer stores the second copy first and the first copy last, so a read that finds both
//! copies equal saw a completed commit; SQLite's own readers rely on the same order. Two equal
//! reads mean no commit in between, from this process or any other. Any doubt (copies that differ
//! mid-commit, a read that fails, no `-shm` file) answers "unknown", and the caller reads the
//! database as it would without this.
//!
//! Reading it costs one `pread` of 96 bytes: no read transaction, no pool connection and none of
//! the two `fcntl` lock calls a read transaction takes on the `-shm` file.

use std::fs::File;
use std::path::Path;

/// Bytes of one header copy.
const HEADER: usize = 48;

/// One committed state of the database file, comparable for equality only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Commit([u8; HEADER]);

impl Commit {
    /// A state whose change counter is `n` (the rest of the header zero), for tests.
    #[cfg(test)]
    pub(crate) fn with_counter(n: u32) -> Commit {
        let mut header = [0u8; HEADER];
        header[8..12].copy_from_slice(&n.to_ne_bytes());
        Commit(header)
    }

    /// SQLite's `iChange`: incremented by every commit (a log restart or truncation leaves it).
    pub(crate) fn change_counter(&self) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.0[8..12]);
        // The wal-index is in the machine's own byte order.
        u32::from_ne_bytes(w)
    }
}

/// The last commit of one database file, for any thread: the wal-index is opened on first use
/// (SQLite creates the `-shm` file with the first write to a new file in WAL mode).
pub(super) struct Marker {
    database: std::path::PathBuf,
    index: std::sync::OnceLock<WalIndex>,
}

impl Marker {
    pub(super) fn new(database: &Path) -> Marker {
        Marker {
            database: database.to_path_buf(),
            index: std::sync::OnceLock::new(),
        }
    }

    /// The last commit to the file by any connection of any process, read without a
    /// transaction; `None` when that cannot be known this way (then read the database).
    pub(super) fn last_commit(&self) -> Option<Commit> {
        if let Some(index) = self.index.get() {
            return index.last_commit();
        }
        // Two first uses may both open it (and keep it open, see `keep_open`); either
        // handle will do.
        let _ = self.index.set(WalIndex::open(&self.database)?);
        self.index.get()?.last_commit()
    }
}

/// The open wal-index of a database file.
pub(super) struct WalIndex {
    file: &'static File,
}

impl WalIndex {
    /// Opens `<database>-shm`, which SQLite creates with the first write to a new file in WAL
    /// mode. `None` while there is none: callers then read the database. The handle is never
    /// closed (see `keep_open`).
    pub(super) fn open(database: &Path) -> Option<WalIndex> {
        let mut name = database.as_os_str().to_owned();
        name.push("-shm");
        Some(WalIndex {
            file: super::keep_open(Path::new(&name))?,
        })
    }

    /// The state last committed, if the header could be read whole.
    pub(super) fn last_commit(&self) -> Option<Commit> {
        let mut both = [0u8; 2 * HEADER];
        read_exact_at(self.file, &mut both)?;
        let (first, second) = both.split_at(HEADER);
        // Byte 12 is `isInit`: zero while the index is being rebuilt after a crash. The checksum
        // is what SQLite's readers check too: equal copies could still both be torn.
        (first == second && first[12] != 0 && checksum_holds(first)).then(|| {
            let mut header = [0u8; HEADER];
            header.copy_from_slice(first);
            Commit(header)
        })
    }
}

/// SQLite's header checksum: the Fibonacci-weighted sum of the first 40 bytes as native-order
/// 32-bit words, stored in the last 8.
fn checksum_holds(header: &[u8]) -> bool {
    let word = |at: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&header[at..at + 4]);
        u32::from_ne_bytes(w)
    };
    let (mut s1, mut s2) = (0u32, 0u32);
    for at in (0..40).step_by(8) {
        s1 = s1.wrapping_add(word(at)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(at + 4)).wrapping_add(s1);
    }
    s1 == word(40) && s2 == word(44)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8]) -> Option<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, 0).ok()
}

#[cfg(not(unix))]
fn read_exact_at(_: &File, _: &mut [u8]) -> Option<()> {
    None
}
