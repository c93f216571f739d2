//! Shared definitions of rdrbd, a Rust implementation of DRBD 8.4.
//!
//! `nla` is a netlink attribute codec and `genl` is DRBD 8.4's generic
//! netlink API (family "drbd", version 1) built on it. Both are plain `core`
//! code without allocation: the kernel module includes the two files as
//! sibling modules with `#[path]`, the userspace tools use this crate.
#![no_std]
#![forbid(unsafe_code)]

/// Netlink attribute parsing and encoding over byte slices.
pub mod nla;

/// DRBD 8.4 generic netlink commands, attributes, codes and codecs.
pub mod genl;

/// Bounded NUL-terminated strings (resource names, device paths).
pub mod fixed_str;
