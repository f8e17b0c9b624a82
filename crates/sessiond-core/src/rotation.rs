//! Master-key rotation: re-seal every sealed value under the keyring's active key.
//!
//! The pass is online. Values are replaced one by one with a compare-and-swap, so a value changed
//! concurrently by a running server is never overwritten with stale content; such a value is
//! picked up by the next pass. Passes repeat until one finds nothing left under an old key.

use sessiond_crypto::seal::SealError;

use crate::error::{Error, Result};
use crate::store::{SealedRef, SealedStore};
use crate::vault::Vault;

const PAGE: u32 = 200;
const MAX_PASSES: usize = 10;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    /// Sealed values looked at (over all passes).
    pub scanned: u64,
    /// Values re-sealed under the active key.
    pub resealed: u64,
    /// Values that still use an old key after the last pass (0 on success).
    pub remaining: u64,
}

/// Re-seals everything not yet under the active key. `progress` is called after each page with the
/// running report, so the CLI can show progress on large databases.
pub async fn reseal_all<S>(
    store: &S,
    vault: &Vault,
    progress: &mut (dyn FnMut(&ResealReport) + Send),
) -> Result<ResealReport>
where
    S: SealedStore + ?Sized,
{
    let mut report = ResealReport::default();
    for _ in 0..MAX_PASSES {
        let mut stale = 0u64;
        let mut after: Option<SealedRef> = None;
        loop {
            let page = store.sealed_page(after.as_ref(), PAGE).await?;
            let Some((last, _)) = page.last() else { break };
            let next = last.clone();
            for (r, blob) in &page {
                report.scanned += 1;
                let ring = vault.keyring();
                if ring.is_current(blob) {
                    continue;
                }
                let ctx = r.context();
                let plain = vault.unseal(&ctx, blob).map_err(|e| match e {
                    SealError::UnknownKey(id) => Error::Internal(format!(
                        "{} {} is sealed under {id}, which is not in the keyring; add that key to the keyring and retry",
                        r.kind, r.id
                    )),
                    other => Error::Internal(format!("{} {} cannot be opened: {other}", r.kind, r.id)),
                })?;
                let fresh = ring.seal(&ctx, &plain);
                if store.replace_sealed(r, blob, &fresh).await? {
                    report.resealed += 1;
                } else {
                    stale += 1;
                }
            }
            progress(&report);
            after = Some(next);
        }
        report.remaining = stale;
        if stale == 0 {
            return Ok(report);
        }
    }
    Ok(report)
}
