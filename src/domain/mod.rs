//! The pure core: serials, statuses, reasons, the lifecycle state machine
//! and the self-service lock-out rule.
//!
//! Nothing here touches the clock, the store or the network; every function
//! that needs "now" takes it as an argument.

pub mod lifecycle;
pub mod lockout;
pub mod reason;
pub mod serial;
pub mod status;
pub mod sync_window;

pub use lifecycle::{Transition, TransitionError};
pub use reason::{CrlReason, RevocationReason};
pub use serial::Serial;
pub use status::{CertStatus, Channel};
pub use sync_window::SyncWindow;
