//! The error-budget policy as pure functions: a spec checked into a [`ValidPolicy`], and
//! [`decide()`], which turns each SLO's samples, the time, the previous status and the overrides
//! into the stage in force, the actions it demands and the reason. No I/O: everything the
//! decision needs to remember lives in the policy's status, so any replica after any restart
//! decides the same.

pub mod decide;
pub mod overrides;
pub mod select;
pub mod spec;
pub mod status;

pub use decide::{Decision, Previous, SloView, decide};
pub use spec::{ValidPolicy, ValidStage, When, check_min_requests, check_windows, validate};

/// Transitions kept in `status.history`.
pub const HISTORY: usize = 20;
