//! The parsed configuration: what drbd.conf says, before and after the
//! inheritance drbd-utils applies (common -> resource -> volume/host).

/// One `name value;` option. Flags are stored with the value "yes" or
/// "no"; `value` is None only for synthetic value-less options
/// (`stacked-timeouts` in dump output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub name: String,
    pub value: Option<String>,
    /// The value is printed verbatim by dump (already escaped).
    pub escaped: bool,
}

impl Opt {
    pub fn new(name: &str, value: &str) -> Self {
        Opt {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            escaped: false,
        }
    }

    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }
}

pub fn find_opt<'a>(opts: &'a [Opt], name: &str) -> Option<&'a Opt> {
    opts.iter().find(|o| o.name == name)
}

/// drbd-utils' `expand_opts`: every option of `from` that `to` lacks is
/// prepended to `to` (so inherited options end up first, in reverse order).
pub fn expand_opts(from: &[Opt], to: &mut Vec<Opt>) {
    for o in from {
        if find_opt(to, &o.name).is_none() {
            to.insert(0, o.clone());
        }
    }
}

/// A network address as drbd.conf writes it: `ipv4 10.0.0.1:7789`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub af: String,
    pub addr: String,
    pub port: String,
}

impl Address {
    /// The form drbdsetup takes: `ipv4:10.0.0.1:7789`, `ipv6:[::1]:7789`.
    pub fn to_arg(&self) -> String {
        if self.af == "ipv6" {
            format!("{}:[{}]:{}", self.af, self.addr, self.port)
        } else {
            format!("{}:{}:{}", self.af, self.addr, self.port)
        }
    }
}

/// Meta data location of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaIndex {
    Internal,
    Flexible,
    Index(String),
}

impl MetaIndex {
    pub fn as_str(&self) -> &str {
        match self {
            MetaIndex::Internal => "internal",
            MetaIndex::Flexible => "flexible",
            MetaIndex::Index(i) => i,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub vnr: u32,
    pub device: Option<String>,
    pub minor: Option<u32>,
    pub disk: Option<String>,
    pub meta_disk: Option<String>,
    pub meta_index: Option<MetaIndex>,
    pub disk_options: Vec<Opt>,
    /// Statements written directly in the host/resource section, not in a
    /// `volume N { }` block.
    pub implicit: bool,
}

impl Volume {
    pub fn new(vnr: u32) -> Self {
        Volume {
            vnr,
            ..Default::default()
        }
    }

    pub fn minor(&self) -> u32 {
        self.minor.unwrap_or(u32::MAX)
    }

    pub fn disk(&self) -> &str {
        self.disk.as_deref().unwrap_or("")
    }

    pub fn meta_disk(&self) -> &str {
        self.meta_disk.as_deref().unwrap_or("")
    }

    pub fn meta_index(&self) -> &str {
        self.meta_index.as_ref().map_or("", MetaIndex::as_str)
    }

    pub fn internal_md(&self) -> bool {
        self.meta_disk() == "internal"
    }

    /// The device holding the meta data (the disk itself if internal).
    pub fn md_device(&self) -> &str {
        if self.internal_md() {
            self.disk()
        } else {
            self.meta_disk()
        }
    }
}

/// Inserts a volume keeping the list sorted by volume number (after equal
/// numbers, as drbd-utils' INSERT_SORTED does).
pub fn insert_sorted(vols: &mut Vec<Volume>, vol: Volume) {
    let pos = vols
        .iter()
        .position(|v| v.vnr > vol.vnr)
        .unwrap_or(vols.len());
    vols.insert(pos, vol);
}

/// Which kind of host section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    On,
    /// `_this_host` in `drbdsetup show` output.
    ThisHost,
    /// `_remote_host` in `drbdsetup show` output.
    RemoteHost,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub kind: HostKind,
    pub names: Vec<String>,
    pub volumes: Vec<Volume>,
    pub address: Option<Address>,
    /// Where the address statement is (for "IP not found" messages).
    pub address_line: u32,
    pub res_options: Vec<Opt>,
    pub line: u32,
}

impl Host {
    pub fn names_str(&self) -> String {
        self.names.join(" ")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    /// The file it is defined in, canonical (as dump shows it).
    pub config_file: String,
    /// The file name as errors show it.
    pub display_file: String,
    pub start_line: u32,
    /// Resource-level volumes (and implicit volume 0 from resource-level
    /// device/disk/meta-disk statements), inherited by host sections.
    pub volumes: Vec<Volume>,
    pub hosts: Vec<Host>,
    pub net: Vec<Opt>,
    pub disk: Vec<Opt>,
    pub res_options: Vec<Opt>,
    pub startup: Vec<Opt>,
    pub handlers: Vec<Opt>,
    pub become_primary_on: Vec<String>,
    pub stacked_timeouts: bool,
    /// Index into `hosts` of this node's section.
    pub me: Option<usize>,
    /// Index into `hosts` of the peer's section.
    pub peer: Option<usize>,
    /// No host section names this node.
    pub ignore: bool,
}

impl Resource {
    pub fn me(&self) -> Option<&Host> {
        self.me.and_then(|i| self.hosts.get(i))
    }

    pub fn peer(&self) -> Option<&Host> {
        self.peer.and_then(|i| self.hosts.get(i))
    }

    /// This node's volumes (empty if the resource is ignored here).
    pub fn my_volumes(&self) -> &[Volume] {
        self.me().map_or(&[], |h| h.volumes.as_slice())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageCount {
    Yes,
    No,
    Ask,
}

impl UsageCount {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageCount::Yes => "yes",
            UsageCount::No => "no",
            UsageCount::Ask => "ask",
        }
    }
}

/// The `global { }` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    pub usage_count: UsageCount,
    pub minor_count: u32,
    pub dialog_refresh: i64,
    pub disable_ip_verification: bool,
    pub udev_always_use_vnr: bool,
    pub cmd_timeout_short: i64,
    pub cmd_timeout_medium: i64,
    pub cmd_timeout_long: i64,
}

/// drbd-utils 9.22's 8.4 drbdadm starts with these timeouts (which differ
/// from the defaults it compares them to when dumping; reproduced so that
/// `dump` prints what drbdadm-84 prints).
impl Default for Global {
    fn default() -> Self {
        Global {
            usage_count: UsageCount::Ask,
            minor_count: 0,
            dialog_refresh: 1,
            disable_ip_verification: false,
            udev_always_use_vnr: false,
            cmd_timeout_short: 5,
            cmd_timeout_medium: 600,
            cmd_timeout_long: 0,
        }
    }
}

/// The defaults `dump` compares the command timeouts against.
pub const CMD_TIMEOUT_SHORT_DEF: i64 = 5;
pub const CMD_TIMEOUT_MEDIUM_DEF: i64 = 121;
pub const CMD_TIMEOUT_LONG_DEF: i64 = 600;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The main configuration file, canonical.
    pub config_file: String,
    pub global: Global,
    pub common: Option<Resource>,
    pub resources: Vec<Resource>,
}

impl Config {
    pub fn resource(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_prepends_missing_in_reverse() {
        let from = vec![Opt::new("a", "1"), Opt::new("b", "2"), Opt::new("c", "3")];
        let mut to = vec![Opt::new("b", "9")];
        expand_opts(&from, &mut to);
        let names: Vec<_> = to.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        assert_eq!(to[2].value(), Some("9"));
    }

    #[test]
    fn volumes_stay_sorted() {
        let mut v = Vec::new();
        insert_sorted(&mut v, Volume::new(2));
        insert_sorted(&mut v, Volume::new(0));
        insert_sorted(&mut v, Volume::new(1));
        assert_eq!(v.iter().map(|v| v.vnr).collect::<Vec<_>>(), [0, 1, 2]);
    }
}
