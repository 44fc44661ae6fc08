//! slo-warden: ServiceLevelObjectives in, burn-rate rules out, error budgets enforced.

pub mod api;
pub mod burn_rate;
pub mod decimal;
pub mod duration;
pub mod rules;
pub mod sli;
pub mod validate;
pub mod controller;
pub mod crds;
pub mod documents;
pub mod error;
pub mod http;
pub mod metrics;
