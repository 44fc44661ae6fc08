//! slo-warden: ServiceLevelObjectives in, burn-rate rules out, error budgets enforced.

pub mod admission;
pub mod api;
pub mod backoff;
pub mod break_glass;
pub mod budget;
pub mod burn_rate;
pub mod cache;
pub mod controller;
pub mod crds;
pub mod decimal;
pub mod documents;
pub mod duration;
pub mod enforce;
pub mod error;
#[cfg(test)]
pub mod fake_api;
pub mod gate;
pub mod http;
pub mod import;
pub mod kind;
pub mod merge_patch;
pub mod metrics;
pub mod policy;
pub mod release;
pub mod rule_cost;
pub mod rules;
pub mod serving;
pub mod sli;
pub mod ui;
pub mod validate;
