//! Pure SCBE kernel gate: no I/O, no clock reads, no threads, no environment.
//!
//! `scbe-core` turns Falco JSON lines into decisions: it maps a line to a
//! [`KernelEvent`] ([`falco`]), scores it ([`gate`]: threat membrane,
//! integrity, geometry), runs the domain [`turnstile`], keeps the decaying
//! per-process antibody load ([`memory`]), derives the immune cell state and
//! kernel action, and plans enforcement ([`enforcement`]). Time enters as a
//! [`Timestamp`] value or through the [`Clock`] trait. Applying a plan is the
//! agent's job; reading files is the caller's.
//!
//! Under [`Policy::reference()`] the output reproduces the original Python
//! gate exactly (see `SPEC.md`).

pub mod bytescan;
pub mod clock;
pub mod enforcement;
pub mod event;
pub mod falco;
pub mod gate;
pub mod geometry;
pub mod integrity;
pub mod json;
pub mod jsonw;
pub mod limits;
pub mod litscan;
pub mod membrane;
pub mod memory;
pub mod policy;
pub mod policy_toml;
pub mod pyregex;
pub mod pystr;
pub mod pyvalue;
pub mod record;
pub mod turnstile;

pub use clock::{Clock, ManualClock, Timestamp};
pub use enforcement::{EnforcementAction, EnforcementPlan, EnforcementPlanner, PlannerConfig};
pub use event::{KernelEvent, Pid};
pub use falco::{LineError, MappingOptions};
pub use gate::{Assessment, CellState, EventFeatures, Gate, KernelAction, Resolution};
pub use policy::Policy;
pub use policy_toml::{parse_policy, policy_to_toml, PolicyError};
pub use record::{
    finish_record, prepare_event, prepare_line, prepare_lines, record_tail, Advance, Bridge,
    DecisionRecord, LineOutcome, Prepared, PreparedLine, RecordRef,
};
pub use turnstile::{Decision, Domain};
