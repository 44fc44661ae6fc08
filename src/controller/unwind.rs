//! A panic in one reconcile is that object's failure, never the process's: without this,
//! kube-runtime re-raises it, the process exits, and the standby that takes over meets the same
//! object and dies the same way.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::api::bounds;
use crate::error::{Error, Result};

/// Runs one reconcile; a panic in it becomes [`Error::Panicked`] (reported on the object and
/// backed off like any failure).
pub async fn contained<T>(reconcile: impl Future<Output = Result<T>>) -> Result<T> {
    // Nothing the reconcile shares is left half-written by a panic: the caches are read-only
    // and the backoff map recovers from a poisoned lock.
    match AssertUnwindSafe(reconcile).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(Error::Panicked(bounds::shorten(&what)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_reconcile_is_an_error() {
        let overflow = |t: jiff::Timestamp| t + jiff::SignedDuration::from_hours(24 * 365 * 10_000);
        let e = contained(async { Ok::<_, Error>(overflow(jiff::Timestamp::now())) })
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "ReconcilePanicked");
        assert!(e.to_string().starts_with("the reconcile panicked: "), "{e}");

        let long = "x".repeat(1_000_000);
        let e = contained(async {
            if !long.is_empty() {
                panic!("{long}");
            }
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(e.to_string().len() < 600, "the message is short");
        assert_eq!(contained(async { Ok::<_, Error>(7) }).await.unwrap(), 7);
    }
}
