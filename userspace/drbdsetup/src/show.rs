//! What drbdsetup-84 prints from GET_STATUS replies: `role`, `state`,
//! `cstate`, `dstate`, `get-gi`, `show-gi`, `sh-status` and `show`, byte
//! for byte (see the golden tests).

use std::fmt::Write as _;

use drbd_include::genl::{
    disk_conf, parse_reply, state_info, tla, ConnState, DiskState, Reply, Role,
};
use drbd_include::nla::{Attr, Attrs};

use crate::address;
use crate::options::{self, Kind, OptDef};

/// The state word's fields as drbd-utils' `union drbd_state` reads them;
/// values 8.4 does not define print as "TOO_LARGE".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Word(pub u32);

const TOO_LARGE: &str = "TOO_LARGE";

impl Word {
    fn bits(self, shift: u32, mask: u32) -> u32 {
        (self.0 >> shift) & mask
    }

    /// Own role.
    pub fn role(self) -> &'static str {
        Role::from_raw(self.bits(0, 3)).map_or(TOO_LARGE, Role::name)
    }

    /// Peer's role.
    pub fn peer(self) -> &'static str {
        Role::from_raw(self.bits(2, 3)).map_or(TOO_LARGE, Role::name)
    }

    /// Connection state number.
    pub fn conn_raw(self) -> u32 {
        self.bits(4, 31)
    }

    /// Connection state.
    pub fn conn(self) -> &'static str {
        ConnState::from_raw(self.conn_raw()).map_or(TOO_LARGE, ConnState::name)
    }

    fn disk_raw(self) -> u32 {
        self.bits(9, 15)
    }

    /// Own disk state.
    pub fn disk(self) -> &'static str {
        DiskState::from_raw(self.disk_raw()).map_or(TOO_LARGE, DiskState::name)
    }

    /// Peer's disk state.
    pub fn pdsk(self) -> &'static str {
        DiskState::from_raw(self.bits(13, 15)).map_or(TOO_LARGE, DiskState::name)
    }

    /// IO suspended.
    pub fn susp(self) -> bool {
        self.bits(17, 1) != 0
    }

    /// Sync paused by a dependency.
    pub fn aftr_isp(self) -> bool {
        self.bits(18, 1) != 0
    }

    /// Sync paused by the peer.
    pub fn peer_isp(self) -> bool {
        self.bits(19, 1) != 0
    }

    /// Sync paused by the user.
    pub fn user_isp(self) -> bool {
        self.bits(20, 1) != 0
    }

    /// StandAlone and Diskless: what drbdsetup-84 calls "Unconfigured".
    pub fn unconfigured(self) -> bool {
        self.conn_raw() == ConnState::StandAlone as u32
            && self.disk_raw() == DiskState::Diskless as u32
    }
}

/// The state word of a reply (0 without STATE_INFO, as drbdsetup-84).
pub fn word_of(reply: &Reply<'_>) -> Word {
    Word(reply.state_info.map_or(0, |s| s.current_state))
}

/// The last top-level attribute `number` of a reply body (after the user
/// header), as the kernel's and drbd-utils' `nla_parse` keep it.
pub fn tla_of(body: &[u8], number: u16) -> Option<Attr<'_>> {
    Attrs::new(body.get(8..)?)
        .flatten()
        .filter(|a| a.number == number)
        .last()
}

/// The first field `number` of a struct attribute.
fn field_of<'a>(nest: &Attr<'a>, number: u16) -> Option<Attr<'a>> {
    nest.nested_attrs().flatten().find(|a| a.number == number)
}

/// What a view prints for a device's GET_STATUS reply, and whether it stops.
pub enum Step {
    /// Go on with the next reply.
    Continue,
    /// Stop: exit with this code.
    Exit(u8),
}

/// The GET_STATUS views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `role`: Primary/Secondary.
    Role,
    /// `state`: as `role`, deprecated.
    State,
    /// `cstate`: the connection state.
    Cstate,
    /// `dstate`: UpToDate/DUnknown.
    Dstate,
    /// `get-gi`: the UUIDs and flags on one line.
    GetGi,
    /// `show-gi`: the same, explained.
    ShowGi,
    /// `sh-status`: shell variables.
    ShStatus,
    /// `show`: the configuration.
    Show {
        /// `--show-defaults`.
        defaults: bool,
    },
}

impl View {
    /// Whether an unknown minor is not an error (drbdsetup-84's missing_ok).
    pub fn missing_ok(self) -> bool {
        self == Self::ShStatus
    }
}

/// Renders replies one by one, like drbdsetup-84's show functions.
#[derive(Debug)]
pub struct Renderer {
    view: View,
    /// The name drbdsetup calls itself in messages.
    progname: &'static str,
    /// `show`: the resource whose block is open.
    last_resource: Option<String>,
    /// `show`: replies seen.
    calls: usize,
}

impl Renderer {
    /// A renderer for `view`.
    pub fn new(view: View, progname: &'static str) -> Self {
        Self {
            view,
            progname,
            last_resource: None,
            calls: 0,
        }
    }

    fn deprecation(&self, err: &mut String) {
        if self.view == View::State {
            let p = self.progname;
            let _ = writeln!(
                err,
                "'{p} ... state' is deprecated, use '{p} ... role' instead."
            );
        }
    }

    /// One reply (body from the DRBD user header on).
    pub fn reply(
        &mut self,
        body: &[u8],
        reply: &Reply<'_>,
        out: &mut String,
        err: &mut String,
    ) -> Step {
        self.deprecation(err);
        let word = word_of(reply);
        let plain = |out: &mut String, text: &str| {
            out.push_str(text);
            out.push('\n');
            Step::Continue
        };
        match self.view {
            View::Role | View::State if word.unconfigured() => plain(out, "Unconfigured"),
            View::Role | View::State => plain(out, &format!("{}/{}", word.role(), word.peer())),
            View::Cstate if word.unconfigured() => plain(out, "Unconfigured"),
            View::Cstate => plain(out, word.conn()),
            View::Dstate if word.unconfigured() => plain(out, "Unconfigured"),
            View::Dstate => plain(out, &format!("{}/{}", word.disk(), word.pdsk())),
            View::GetGi | View::ShowGi => self.uuids(body, word, out, err),
            View::ShStatus => {
                sh_status(body, reply, out);
                Step::Continue
            }
            View::Show { defaults } => {
                self.show(body, reply, defaults, out);
                Step::Continue
            }
        }
    }

    /// After the last reply (drbdsetup-84 calls the show function once more
    /// without a message).
    pub fn finish(&mut self, out: &mut String, err: &mut String) {
        self.deprecation(err);
        if let View::Show { .. } = self.view {
            if self.calls > 0 {
                out.push_str("    }\n}\n");
            }
        }
    }

    fn uuids(&self, body: &[u8], word: Word, out: &mut String, err: &mut String) -> Step {
        if word.unconfigured() {
            err.push_str("Device is unconfigured\n");
            return Step::Exit(1);
        }
        if word.disk_raw() == DiskState::Diskless as u32 {
            err.push_str("Device has no disk\n");
            return Step::Exit(1);
        }
        let info = tla_of(body, tla::STATE_INFO);
        let uuids = info
            .as_ref()
            .and_then(|i| field_of(i, state_info::UUIDS))
            .map(|a| a.payload);
        let flags = info
            .as_ref()
            .and_then(|i| field_of(i, state_info::DISK_FLAGS))
            .and_then(|a| a.get_u32().ok())
            .unwrap_or(0);
        let Some(raw) = uuids else {
            err.push_str(
                "No uuids found in reply!\nMaybe you need to upgrade your userland tools?\n",
            );
            return Step::Continue;
        };
        let mut slots = [0u64; 4];
        for (slot, chunk) in slots.iter_mut().zip(raw.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *slot = u64::from_ne_bytes(bytes);
        }
        if self.view == View::ShowGi {
            pretty_uuids(&slots, flags, out);
        } else {
            print_uuids(&slots, flags, out);
        }
        Step::Continue
    }

    fn show(&mut self, body: &[u8], reply: &Reply<'_>, defaults: bool, out: &mut String) {
        self.calls += 1;
        let ctx = reply.cfg_context.unwrap_or_default();
        let name = String::from_utf8_lossy(ctx.resource_name.unwrap_or_default()).into_owned();
        let last = self.last_resource.clone().unwrap_or_default();
        if name != last {
            if !last.is_empty() {
                out.push_str("    }\n}\n\n");
            }
            self.last_resource = Some(name.clone());
            let _ = writeln!(out, "resource {name} {{");
            print_options(
                out,
                1,
                body,
                tla::RESOURCE_OPTS,
                "options",
                &[options::RESOURCE_OPTIONS],
                defaults,
            );
            print_options(
                out,
                1,
                body,
                tla::NET_CONF,
                "net",
                &[options::NET_OPTIONS],
                defaults,
            );
            if let Some(peer) = ctx.peer_addr.filter(|a| !a.is_empty()) {
                out.push_str("    _remote_host {\n");
                let _ = writeln!(out, "        address\t\t\t{};", address::format(peer));
                out.push_str("    }\n");
            }
            out.push_str("    _this_host {\n");
            if let Some(me) = ctx.my_addr.filter(|a| !a.is_empty()) {
                let _ = writeln!(out, "        address\t\t\t{};", address::format(me));
            }
        }
        if let Some(volume) = ctx.volume.filter(|v| *v != u32::MAX) {
            let _ = writeln!(out, "        volume {} {{", volume as i32);
            let _ = writeln!(
                out,
                "            device\t\t\tminor {};",
                reply.header.minor as i32
            );
            if let Some(dc) = reply.disk_conf.filter(|d| !d.backing_dev.is_empty()) {
                let _ = writeln!(
                    out,
                    "            disk\t\t\t\"{}\";",
                    String::from_utf8_lossy(dc.backing_dev)
                );
                let meta = String::from_utf8_lossy(dc.meta_dev);
                let where_ = match dc.meta_dev_idx {
                    disk_conf::META_DEV_IDX_INTERNAL | disk_conf::META_DEV_IDX_FLEX_INT => {
                        "internal".to_owned()
                    }
                    disk_conf::META_DEV_IDX_FLEX_EXT => double_quote(&meta),
                    idx => format!("{} [ {idx} ]", double_quote(&meta)),
                };
                let _ = writeln!(out, "            meta-disk\t\t\t{where_};");
            }
            print_options(
                out,
                3,
                body,
                tla::DISK_CONF,
                "disk",
                &[options::ATTACH_ONLY, options::DISK_OPTIONS],
                defaults,
            );
            out.push_str("        }\n");
        }
    }
}

/// drbd-utils' `double_quote_string`.
pub fn double_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if c == '\\' || c == '"' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

fn scale_char(unit: crate::args::Unit) -> &'static str {
    match unit {
        crate::args::Unit::One => "",
        crate::args::Unit::Sectors => "s",
        crate::args::Unit::KiB => "k",
    }
}

/// A field's value as `show` prints it, and whether it is the default.
fn field_text(def: &OptDef, attr: &Attr<'_>) -> (String, bool) {
    match def.kind {
        Kind::Enum { names, default, .. } => {
            let value = attr.get_u32().unwrap_or(u32::MAX);
            let name = names
                .iter()
                .find(|(_, v)| *v == value)
                .map_or("?", |(n, _)| n);
            (name.to_owned(), value == default)
        }
        Kind::Number {
            limits,
            unit,
            wide,
            signed,
        } => {
            let value: i128 = if wide {
                attr.get_u64().map_or(0, i128::from)
            } else if signed {
                attr.get_s32().map_or(0, i128::from)
            } else {
                attr.get_u32().map_or(0, i128::from)
            };
            (
                format!("{value}{}", scale_char(unit)),
                value == i128::from(limits.default),
            )
        }
        Kind::Bool { default } => {
            let value = attr.get_u8().unwrap_or(0) != 0;
            (
                if value { "yes" } else { "no" }.to_owned(),
                value == default,
            )
        }
        Kind::Flag => {
            let value = attr.get_u8().unwrap_or(0) != 0;
            (if value { "yes" } else { "no" }.to_owned(), !value)
        }
        Kind::Str { .. } => {
            let text = attr
                .payload
                .split(|b| *b == 0)
                .next()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            (double_quote(&text), text.is_empty())
        }
    }
}

/// drbd-utils' `print_options`: a `section { ... }` block with the fields
/// the struct carries, defaults left out unless `--show-defaults`.
fn print_options(
    out: &mut String,
    indent: usize,
    body: &[u8],
    tla_number: u16,
    section: &str,
    tables: &[&[OptDef]],
    defaults: bool,
) {
    let Some(nest) = tla_of(body, tla_number) else {
        return;
    };
    let pad = " ".repeat(4 * indent);
    let mut opened = false;
    for def in tables.iter().flat_map(|t| t.iter()) {
        let Some(attr) = field_of(&nest, def.field) else {
            continue;
        };
        if !opened {
            opened = true;
            let _ = writeln!(out, "{pad}{section} {{");
        }
        let (text, is_default) = field_text(def, &attr);
        if is_default && !defaults {
            continue;
        }
        let _ = write!(out, "{pad}    {:<16}\t{text};", def.name);
        if def.unit.is_some() || is_default {
            out.push_str(" # ");
            if let Some(unit) = def.unit {
                out.push_str(unit);
            }
            if def.unit.is_some() && is_default {
                out.push_str(", ");
            }
            if is_default {
                out.push_str("default");
            }
        }
        out.push('\n');
    }
    if opened {
        let _ = writeln!(out, "{pad}}}");
    }
}

/// Meta data flags (`MDF_*`).
mod mdf {
    pub const CONSISTENT: u32 = 1 << 0;
    pub const PRIMARY_IND: u32 = 1 << 1;
    pub const CONNECTED_IND: u32 = 1 << 2;
    pub const FULL_SYNC: u32 = 1 << 3;
    pub const WAS_UP_TO_DATE: u32 = 1 << 4;
    pub const PEER_OUT_DATED: u32 = 1 << 5;
    pub const CRASHED_PRIMARY: u32 = 1 << 6;
    pub const AL_CLEAN: u32 = 1 << 7;
}

/// drbd-utils' `dt_print_uuids`.
fn print_uuids(uuids: &[u64; 4], flags: u32, out: &mut String) {
    for uuid in uuids {
        let _ = write!(out, "{uuid:016X}:");
    }
    let bit = |f: u32| u8::from(flags & f != 0);
    let _ = writeln!(
        out,
        "{}:{}:{}:{}:{}:{}:{}",
        bit(mdf::CONSISTENT),
        bit(mdf::WAS_UP_TO_DATE),
        bit(mdf::PRIMARY_IND),
        bit(mdf::CONNECTED_IND),
        bit(mdf::FULL_SYNC),
        bit(mdf::PEER_OUT_DATED),
        bit(mdf::CRASHED_PRIMARY)
    );
}

/// The legend above the UUIDs of `show-gi`.
const GI_HEADER: &[&str] = &[
    "",
    "       +--<  Current data generation UUID  >-",
    "       |               +--<  Bitmap's base data generation UUID  >-",
    "       |               |                 +--<  younger history UUID  >-",
    "       |               |                 |         +-<  older history  >-",
    "       V               V                 V         V",
];

/// The legend below the UUIDs of `show-gi`.
const GI_FOOTER: &[&str] = &[
    "                                                                    ^ ^ ^ ^ ^ ^ ^",
    "                                      -<  Data consistency flag  >--+ | | | | | |",
    "                             -<  Data was/is currently up-to-date  >--+ | | | | |",
    "                                  -<  Node was/is currently primary  >--+ | | | |",
    "                                  -<  Node was/is currently connected  >--+ | | |",
    "         -<  Node was in the progress of setting all bits in the bitmap  >--+ | |",
    "                        -<  The peer's disk was out-dated or inconsistent  >--+ |",
    "      -<  This node was a crashed primary, and has not seen its peer since   >--+",
    "",
];

/// drbd-utils' `dt_pretty_print_uuids`.
fn pretty_uuids(uuids: &[u64; 4], flags: u32, out: &mut String) {
    for line in GI_HEADER {
        out.push_str(line);
        out.push('\n');
    }
    print_uuids(uuids, flags, out);
    for line in GI_FOOTER {
        out.push_str(line);
        out.push('\n');
    }
    let state = if flags & mdf::CONSISTENT != 0 {
        if flags & mdf::WAS_UP_TO_DATE != 0 {
            "UpToDate"
        } else {
            "Outdated"
        }
    } else {
        "Inconsistent"
    };
    let _ = writeln!(
        out,
        "flags:{} {}, {}, {}{}{}",
        if flags & mdf::CRASHED_PRIMARY != 0 {
            " crashed"
        } else {
            ""
        },
        if flags & mdf::PRIMARY_IND != 0 {
            "Primary"
        } else {
            "Secondary"
        },
        if flags & mdf::CONNECTED_IND != 0 {
            "Connected"
        } else {
            "StandAlone"
        },
        state,
        if flags & mdf::FULL_SYNC != 0 {
            ", need full sync"
        } else {
            ""
        },
        if flags & mdf::PEER_OUT_DATED != 0 {
            ", peer Outdated"
        } else {
            ""
        },
    );
    let _ = writeln!(
        out,
        "meta-data: {}",
        if flags & mdf::AL_CLEAN != 0 {
            "clean"
        } else {
            "need apply-al"
        }
    );
}

/// drbd-utils' `shell_escape`: a backslash before every character outside
/// `%+-./0-9:=@A-Z_a-z`.
pub fn shell_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        let clean = c.is_ascii_alphanumeric() || "%+-./:=@_".contains(c);
        if !clean {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Per mille of a resync that is done, as drbdsetup-84 computes it (with
/// its unsigned wrap-around).
pub fn synced_per_mille(bits_oos: u64, bits_rs_failed: u64, bits_rs_total: u64) -> u32 {
    let shift = if bits_rs_total >= 1 << 32 { 16 } else { 10 };
    let left = bits_oos.wrapping_sub(bits_rs_failed) >> shift;
    let total = 1u64.wrapping_add(bits_rs_total >> shift);
    let done = 1000u64.wrapping_sub(left.wrapping_mul(1000) / total);
    done as u32
}

fn sh_status(body: &[u8], reply: &Reply<'_>, out: &mut String) {
    let ctx = reply.cfg_context.unwrap_or_default();
    let name = String::from_utf8_lossy(ctx.resource_name.unwrap_or_default()).into_owned();
    let _ = writeln!(out, "_minor={}", reply.header.minor);
    let _ = writeln!(out, "_res_name={}", shell_escape(&name));
    let _ = writeln!(out, "_volume={}", ctx.volume.unwrap_or(u32::MAX) as i32);
    let word = word_of(reply);
    let available = reply.state_info.is_some();
    if word.unconfigured() && word.role() != "Primary" {
        let known = if available {
            "Unconfigured"
        } else {
            "NA # not available or not yet created"
        };
        let _ = writeln!(out, "_known={known}\n");
        out.push_str(
            "_cstate=Unconfigured\n_role=\n_peer=\n_disk=\n_pdsk=\n_flags_susp=\n\
             _flags_aftr_isp=\n_flags_peer_isp=\n_flags_user_isp=\n_resynced_percent=\n",
        );
    } else {
        let flag = |set: bool| if set { "1" } else { "" };
        let _ = write!(
            out,
            "_known=Configured\n\n_cstate={}\n_role={}\n_peer={}\n_disk={}\n_pdsk={}\n\n",
            word.conn(),
            word.role(),
            word.peer(),
            word.disk(),
            word.pdsk()
        );
        let _ = write!(
            out,
            "_flags_susp={}\n_flags_aftr_isp={}\n_flags_peer_isp={}\n_flags_user_isp={}\n\n",
            flag(word.susp()),
            flag(word.aftr_isp()),
            flag(word.peer_isp()),
            flag(word.user_isp())
        );
        out.push_str("_resynced_percent=");
        let info = tla_of(body, tla::STATE_INFO);
        let has_total = info
            .as_ref()
            .is_some_and(|i| field_of(i, state_info::BITS_RS_TOTAL).is_some());
        match reply.state_info.filter(|_| has_total) {
            Some(si) => {
                let done = synced_per_mille(
                    si.bits_oos.unwrap_or(0),
                    si.bits_rs_failed.unwrap_or(0),
                    si.bits_rs_total.unwrap_or(0),
                );
                let _ = writeln!(out, "{}.{}", done / 10, done % 10);
            }
            None => out.push('\n'),
        }
    }
    out.push_str("\n_sh_status_process\n\n\n");
}

/// Parses a reply for the views; the text drbdsetup-84 prints when it does
/// not validate.
pub fn parse(body: &[u8]) -> Result<Reply<'_>, &'static str> {
    parse_reply(body)
        .map_err(|_| "reply did not validate - do you need to upgrade your userland tools?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(shell_escape("r0-a_b.c/d:e=f@g%h+i"), "r0-a_b.c/d:e=f@g%h+i");
        assert_eq!(shell_escape("r 0;$x'\""), "r\\ 0\\;\\$x\\'\\\"");
        assert_eq!(double_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(synced_per_mille(0, 0, 1024), 1000);
        assert_eq!(synced_per_mille(1024, 0, 1024), 500);
        assert_eq!(synced_per_mille(300_000, 1000, 1 << 20), 717);
        assert_eq!(synced_per_mille(1 << 33, 0, 1 << 33), 1);
        // drbdsetup-84's unsigned arithmetic wraps for odd counters.
        assert_eq!(synced_per_mille(0, 2048, 1024), 2000);
        let w = Word(0x7f_ffff);
        assert_eq!(
            (w.role(), w.conn(), w.disk()),
            ("TOO_LARGE", "TOO_LARGE", "TOO_LARGE")
        );
        assert!(!w.unconfigured());
        assert!(Word(0).unconfigured());
        assert!(tla_of(&[1, 2, 3], tla::STATE_INFO).is_none());
        assert!(parse(&[0; 4]).is_err());
    }
}
