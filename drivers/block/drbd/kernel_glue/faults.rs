//! The fault injection module parameters (`enable_faults`, `fault_rate`,
//! `fault_devs`, `fault_count`, declared in the C shim) and the draw that
//! decides one request (`drbd_insert_fault`; the rule is
//! `include/src/faults.rs`).

use kernel::prelude::*;

use super::shim;
use crate::drbd_include::faults::{Fault, FaultParams};

/// The parameters now.
fn params() -> FaultParams {
    let (mut enable, mut rate, mut devs) = (0, 0, 0);
    // SAFETY: the shim writes three u32s through valid pointers.
    unsafe { shim::rdrbd_fault_params(&mut enable, &mut rate, &mut devs) };
    FaultParams { enable, rate, devs }
}

/// Whether to simulate `fault` on minor `minor` now (any context); a hit
/// is counted in `fault_count` and logged as 8.4 does (rate-limited).
pub(crate) fn insert(minor: u32, fault: Fault) -> bool {
    let params = params();
    if !params.armed(fault, minor) {
        return false;
    }
    let hit = params.inject(fault, minor, super::random_u64() as u32);
    if hit {
        // SAFETY: an atomic increment, callable from any context.
        unsafe { shim::rdrbd_fault_counted() };
        // SAFETY: __printk_ratelimit may be called from any context.
        if unsafe { shim::rdrbd_ratelimit() } {
            pr_warn!("drbd{}: ***Simulating {} failure\n", minor, fault.name());
        }
    }
    hit
}
