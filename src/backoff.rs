//! Per-object exponential backoff, kept in the controller context and reset on success, so one
//! failing object retries slowly without slowing down the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

const BASE: Duration = Duration::from_secs(2);
const MAX: Duration = Duration::from_secs(300);

pub struct Backoff<K> {
    failures: Mutex<HashMap<K, u32>>,
}

impl<K: Eq + Hash> Default for Backoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash> Backoff<K> {
    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failed(&self, key: K) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n)
    }

    pub fn succeeded(&self, key: &K) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// 2s, 4s, 8s ... capped at 5 minutes.
pub fn delay(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BASE.saturating_mul(1 << exp).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let b = Backoff::default();
        assert_eq!(b.failed("a"), Duration::from_secs(2));
        assert_eq!(b.failed("a"), Duration::from_secs(4));
        assert_eq!(b.failed("b"), Duration::from_secs(2), "objects back off independently");
        for _ in 0..20 {
            b.failed("a");
        }
        assert_eq!(b.failed("a"), MAX);
        b.succeeded(&"a");
        assert_eq!(b.failed("a"), Duration::from_secs(2));
    }
}
