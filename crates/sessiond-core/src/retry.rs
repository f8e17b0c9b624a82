//! Optimistic read-modify-write: read a record, decide, write it only if its version is still the
//! one read, and start over when another writer got there first.

use crate::error::{Error, Result};
use crate::store::{StoreError, StoreResult};

/// Attempts before an operation gives up with [`Error::Conflict`].
pub const RETRIES: usize = 5;

/// What one attempt came to.
pub enum Attempt<T> {
    Done(T),
    /// Another writer changed the record since it was read: read it again.
    Raced,
}

impl<T> Attempt<T> {
    /// The usual reading of a compare-and-swap write: `value` if it was written, [`Attempt::Raced`]
    /// on a version conflict, the store's error otherwise.
    pub fn of_write(written: StoreResult<()>, value: T) -> Result<Self> {
        match written {
            Ok(()) => Ok(Attempt::Done(value)),
            Err(StoreError::Conflict) => Ok(Attempt::Raced),
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `attempt` until it is done or fails, at most [`RETRIES`] times. Each attempt is a fresh
/// future (`|| async move { … }` over copied references), so the operation's future stays `Send`.
pub async fn retry_optimistic<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>>>,
{
    for _ in 0..RETRIES {
        if let Attempt::Done(v) = attempt().await? {
            return Ok(v);
        }
    }
    Err(Error::Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_a_race_and_gives_up_after_the_limit() {
        let mut calls = 0;
        let got = retry_optimistic(|| {
            calls += 1;
            let n = calls;
            async move {
                Ok(if n < 3 {
                    Attempt::Raced
                } else {
                    Attempt::Done(n)
                })
            }
        })
        .await;
        assert_eq!(got.ok(), Some(3));
        let mut calls = 0;
        let got: Result<()> = retry_optimistic(|| {
            calls += 1;
            async { Attempt::of_write(Err(StoreError::Conflict), ()) }
        })
        .await;
        assert!(matches!(got, Err(Error::Conflict)));
        assert_eq!(calls, RETRIES);
        let got: Result<()> =
            retry_optimistic(|| async { Attempt::of_write(Err(StoreError::NotFound), ()) }).await;
        assert!(
            !matches!(got, Err(Error::Conflict)),
            "other errors end at once"
        );
    }
}
