//! The `no_std` sources shared with the userspace tools (`include/src/`),
//! compiled into the module. Not every item is used by the kernel side.

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/nla.rs"]
pub(crate) mod nla;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/genl.rs"]
pub(crate) mod genl;

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../../include/src/fixed_str.rs"]
pub(crate) mod fixed_str;
