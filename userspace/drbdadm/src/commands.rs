//! drbdadm's commands: which drbdsetup/drbdmeta command lines each one
//! runs (in drbdadm-84's order and spelling), including `up`'s staged
//! execution and `adjust`'s comparison of the configuration with the
//! kernel's (`drbdsetup show`).

use std::collections::HashSet;

use crate::config::model::{find_opt, Config, Host, MetaIndex, Opt, Resource, Volume};
use crate::config::options::{
    find_field, Field, ATTACH_ONLY_FIELDS, DISK_FIELDS, NET_FIELDS, RES_FIELDS,
};
use crate::config::{parser, set_me, set_peer};
use crate::exec::{shell_escape, Runner, Stderr, Tools, E_EXEC_ERROR};

/// drbdadm's version, as `--version` and `sh-status` report it.
pub const VERSION: &str = "8.4.11";
pub const API_VERSION: u32 = 1;

/// Everything a command needs.
pub struct Env<'a> {
    pub config: &'a Config,
    pub runner: &'a Runner,
    pub tools: &'a Tools,
    /// drbdsetup/drbdmeta options from the command line.
    pub setup_options: Vec<String>,
    pub nodename: String,
    pub dry_run: bool,
}

/// The stages `up` and `adjust` run their commands in (all resources'
/// commands of one stage before the next stage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Prereq,
    Resource,
    DiskPrereq,
    Disk,
    NetPrereq,
    Net,
}

/// A command scheduled for a stage.
#[derive(Clone, Debug)]
pub enum Action {
    NewResource,
    ResourceOptionsDefaults,
    NewMinor(Volume),
    Attach(Volume),
    DiskOptionsDefaults(Volume),
    Resize(Volume),
    Detach(u32),
    DelMinor(u32),
    /// Disconnect the endpoints the kernel currently uses.
    Disconnect(Box<Resource>),
    Connect,
    NetOptionsDefaults,
}

impl Action {
    fn label(&self) -> &'static str {
        match self {
            Action::NewResource => "new-resource",
            Action::ResourceOptionsDefaults => "resource-options",
            Action::NewMinor(_) => "new-minor",
            Action::Attach(_) => "attach",
            Action::DiskOptionsDefaults(_) => "disk-options",
            Action::Resize(_) => "resize",
            Action::Detach(_) => "detach",
            Action::DelMinor(_) => "del-minor",
            Action::Disconnect(_) => "disconnect",
            Action::Connect => "connect",
            Action::NetOptionsDefaults => "net-options",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Deferred {
    pub stage: Stage,
    pub res: String,
    pub action: Action,
}

/// `--name=value` for every option.
fn opts_args(opts: &[Opt]) -> Vec<String> {
    opts.iter()
        .map(|o| match o.value() {
            Some(v) => format!("--{}={v}", o.name),
            None => format!("--{}", o.name),
        })
        .collect()
}

/// The meta data index as drbdmeta takes it.
fn meta_index_arg(vol: &Volume) -> String {
    match &vol.meta_index {
        Some(MetaIndex::Flexible) if vol.internal_md() => "flex-internal".into(),
        Some(MetaIndex::Flexible) => "flex-external".into(),
        _ => vol.meta_index().to_owned(),
    }
}

impl Env<'_> {
    fn setup(&self) -> String {
        self.tools.drbdsetup.clone()
    }

    fn run(&self, argv: Vec<String>, res: &Resource) -> i32 {
        self.runner.run(&argv, &res.name)
    }

    /// `drbdsetup <arg> <minor|resource> [options]`
    fn generic_argv(&self, arg: &str, res: &Resource, vol: Option<&Volume>) -> Vec<String> {
        let mut argv = vec![self.setup(), arg.to_owned()];
        argv.push(vol.map_or_else(|| res.name.clone(), |v| v.minor().to_string()));
        argv.extend(self.setup_options.iter().cloned());
        argv
    }

    pub fn generic(&self, arg: &str, res: &Resource, vol: Option<&Volume>) -> i32 {
        self.run(self.generic_argv(arg, res, vol), res)
    }

    /// `drbdmeta <minor> v08 <md dev> <index> <arg> [options]`
    pub fn meta(&self, arg: &str, res: &Resource, vol: &Volume) -> i32 {
        let mut argv = vec![
            self.tools.drbdmeta.clone(),
            vol.minor().to_string(),
            "v08".into(),
            vol.md_device().to_owned(),
            meta_index_arg(vol),
            arg.to_owned(),
        ];
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    /// drbdsetup first; if that cannot answer (not configured, diskless),
    /// ask drbdmeta (dstate, invalidate, show-gi, get-gi).
    pub fn generic_then_meta(&self, arg: &str, res: &Resource, vol: &Volume) -> i32 {
        let argv = self.generic_argv(arg, res, Some(vol));
        let out = self.runner.run_with(&argv, &res.name, Stderr::Capture);
        if out.code == 11 || out.code == 17 {
            eprint!("{}", out.stderr);
            return out.code;
        }
        if out.code != 0 || self.dry_run {
            return self.meta(arg, res, vol);
        }
        0
    }

    pub fn outdate(&self, res: &Resource, vol: &Volume) -> i32 {
        let argv = self.generic_argv("outdate", res, Some(vol));
        let rv = self
            .runner
            .run_with(&argv, &res.name, Stderr::Suppress)
            .code;
        match rv {
            17 => 17,
            5 if self.meta("outdate", res, vol) != 0 => 5,
            5 => 0,
            _ if rv != 0 || self.dry_run => self.meta("outdate", res, vol),
            _ => 0,
        }
    }

    pub fn attach(&self, res: &Resource, vol: &Volume) -> i32 {
        let rv = self.meta("apply-al", res, vol);
        if rv != 0 {
            return rv;
        }
        let mut argv = vec![
            self.setup(),
            "attach".into(),
            vol.minor().to_string(),
            vol.disk().to_owned(),
            vol.md_device().to_owned(),
            vol.meta_index().to_owned(),
        ];
        argv.extend(opts_args(&vol.disk_options));
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    /// disk-options; with `reset`, `--set-defaults` and the configured
    /// options except size and max-bio-bvecs (which need attach/resize).
    pub fn disk_options(&self, res: &Resource, vol: &Volume, reset: bool) -> i32 {
        let mut argv = vec![self.setup(), "disk-options".into(), vol.minor().to_string()];
        if reset {
            argv.push("--set-defaults".into());
            let opts: Vec<Opt> = vol
                .disk_options
                .iter()
                .filter(|o| o.name != "size" && o.name != "max-bio-bvecs")
                .cloned()
                .collect();
            argv.extend(opts_args(&opts));
        }
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    pub fn new_resource(&self, res: &Resource) -> i32 {
        let mut argv = vec![self.setup(), "new-resource".into(), res.name.clone()];
        argv.extend(opts_args(&res.res_options));
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    pub fn resource_options(&self, res: &Resource, reset: bool) -> i32 {
        let mut argv = vec![self.setup(), "resource-options".into(), res.name.clone()];
        if reset {
            argv.push("--set-defaults".into());
            argv.extend(opts_args(&res.res_options));
        }
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    pub fn new_minor(&self, res: &Resource, vol: &Volume) -> i32 {
        let argv = vec![
            self.setup(),
            "new-minor".into(),
            res.name.clone(),
            vol.minor().to_string(),
            vol.vnr.to_string(),
        ];
        self.run(argv, res)
    }

    /// My address and the peer's; an error code if the peer is unknown.
    fn endpoints(&self, res: &Resource) -> Result<Vec<String>, i32> {
        let mut v = Vec::new();
        if let Some(a) = res.me().and_then(|h| h.address.as_ref()) {
            v.push(a.to_arg());
        }
        match res.peer().and_then(|h| h.address.as_ref()) {
            Some(a) => v.push(a.to_arg()),
            None if self.dry_run => v.push("N/A".into()),
            None => {
                eprintln!(
                    "resource {}: cannot configure network without knowing my peer.",
                    res.name
                );
                return Err(E_EXEC_ERROR);
            }
        }
        Ok(v)
    }

    pub fn connect(&self, res: &Resource) -> i32 {
        let mut argv = vec![self.setup(), "connect".into(), res.name.clone()];
        match self.endpoints(res) {
            Ok(e) => argv.extend(e),
            Err(code) => return code,
        }
        argv.extend(opts_args(&res.net));
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    pub fn net_options(&self, res: &Resource, reset: bool) -> i32 {
        let mut argv = vec![self.setup(), "net-options".into()];
        match self.endpoints(res) {
            Ok(e) => argv.extend(e),
            Err(code) => return code,
        }
        if reset {
            argv.push("--set-defaults".into());
            argv.extend(opts_args(&res.net));
        }
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    pub fn disconnect(&self, res: &Resource) -> i32 {
        let mut argv = vec![self.setup(), "disconnect".into()];
        if let Ok(e) = self.endpoints(res) {
            argv.extend(e);
        }
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    /// resize, then check-resize to record the new backing device size.
    pub fn resize(&self, res: &Resource, vol: &Volume, quiet: bool) -> i32 {
        let mut argv = vec![self.setup(), "resize".into(), vol.minor().to_string()];
        let size = find_opt(&vol.disk_options, "size").or_else(|| find_opt(&res.disk, "size"));
        if let Some(o) = size {
            argv.push(format!("--size={}", o.value().unwrap_or("")));
        }
        argv.extend(self.setup_options.iter().cloned());
        let stderr = if quiet {
            Stderr::Suppress
        } else {
            Stderr::Inherit
        };
        let rv = self.runner.run_with(&argv, &res.name, stderr).code;
        if rv != 0 {
            return rv;
        }
        let check = vec![self.setup(), "check-resize".into(), vol.minor().to_string()];
        self.runner.run_with(&check, &res.name, stderr);
        0
    }

    /// drbdsetup resize && check-resize, or else drbdmeta check-resize.
    pub fn check_resize(&self, res: &Resource, vol: &Volume) -> i32 {
        if self.resize(res, vol, true) == 0 {
            return 0;
        }
        self.meta("check-resize", res, vol)
    }

    pub fn wait_connect(&self, res: &Resource, vol: &Volume) -> i32 {
        let mut argv = vec![self.setup(), "wait-connect".into(), vol.minor().to_string()];
        argv.extend(opts_args(&res.startup));
        self.run(argv, res)
    }

    /// A kernel helper callback: runs the configured handler, if any.
    pub fn khelper(
        &self,
        cmd: &str,
        res: &Resource,
        vol: Option<&Volume>,
        config_file: &str,
    ) -> i32 {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut peer: Option<&Host> = res.peer();
        if peer.is_none() {
            if let (Ok(addr), Ok(af)) = (
                std::env::var("DRBD_PEER_ADDRESS"),
                std::env::var("DRBD_PEER_AF"),
            ) {
                peer = res.hosts.iter().find(|h| {
                    h.address
                        .as_ref()
                        .is_some_and(|a| a.af == af && a.addr == addr)
                });
            }
        }
        if let Some(p) = peer {
            if let Some(a) = &p.address {
                env.push(("DRBD_PEER_AF".into(), a.af.clone()));
                env.push(("DRBD_PEER_ADDRESS".into(), a.addr.clone()));
            }
            env.push((
                "DRBD_PEER".into(),
                p.names.first().cloned().unwrap_or_default(),
            ));
            env.push(("DRBD_PEERS".into(), p.names_str()));
        }
        match vol {
            Some(v) => {
                env.push(("DRBD_MINOR".into(), v.minor().to_string()));
                env.push(("DRBD_VOLUME".into(), v.vnr.to_string()));
                env.push(("DRBD_LL_DISK".into(), v.disk().to_owned()));
            }
            None => {
                let minors: Vec<String> = res
                    .my_volumes()
                    .iter()
                    .map(|v| v.minor().to_string())
                    .collect();
                env.push(("DRBD_MINOR".into(), minors.join(" ")));
            }
        }
        env.push(("DRBD_RESOURCE".into(), res.name.clone()));
        env.push(("DRBD_CONF".into(), config_file.to_owned()));
        let Some(handler) = find_opt(&res.handlers, cmd).and_then(Opt::value) else {
            return 0;
        };
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned(), handler.to_owned()];
        self.runner.run_env(&argv, &res.name, &env)
    }

    /// sh-b-pri: become primary if the startup section says so.
    pub fn sh_b_pri(&self, res: &Resource, vol: &Volume) -> i32 {
        let mine = res
            .become_primary_on
            .iter()
            .any(|n| *n == self.nodename || n == "both");
        if !mine {
            return 0;
        }
        let mut rv = 0;
        for _ in 0..5 {
            rv = self.generic("primary", res, Some(vol));
            if rv == 0 {
                return 0;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        rv
    }

    /// sh-status: shell variables describing every resource, then each
    /// volume's `drbdsetup sh-status`.
    pub fn sh_status(&self, config_file: &str) -> i32 {
        if !self.dry_run {
            println!(
                "_drbd_version={}\n_drbd_api={API_VERSION}",
                shell_escape(VERSION)
            );
            println!("_config_file={}\n\n", shell_escape(config_file));
        }
        for r in self.config.resources.iter().filter(|r| !r.ignore) {
            println!("_conf_res_name={}", shell_escape(&r.name));
            println!(
                "_conf_file_line={}:{}\n",
                shell_escape(&r.config_file),
                r.start_line
            );
            println!("_stacked_on=\n_stacked_on_device=\n_stacked_on_minor=");
            for v in r.my_volumes() {
                println!("_conf_volume={}", v.vnr);
                let rv = self.generic("sh-status", r, Some(v));
                if rv != 0 {
                    return rv;
                }
            }
        }
        0
    }

    /// Runs the commands `up`/`adjust` scheduled, stage by stage. A failed
    /// prerequisite skips the rest of that resource's commands.
    pub fn run_deferred(&self, mut items: Vec<Deferred>) -> i32 {
        items.sort_by_key(|d| d.stage);
        let mut skip: HashSet<String> = HashSet::new();
        let mut i = 0;
        while i < items.len() {
            let stage = items[i].stage;
            let mut worst = 0;
            while i < items.len() && items[i].stage == stage {
                let d = &items[i];
                i += 1;
                let Some(res) = self.config.resource(&d.res) else {
                    continue;
                };
                if skip.contains(&d.res) {
                    eprintln!(
                        "drbdadm: {} {}: skipped due to earlier error",
                        d.action.label(),
                        d.res
                    );
                    continue;
                }
                let r = self.run_action(res, &d.action);
                if r != 0 && matches!(stage, Stage::Prereq | Stage::DiskPrereq) {
                    skip.insert(d.res.clone());
                }
                worst = worst.max(r);
            }
            if worst != 0 {
                return 1;
            }
        }
        0
    }

    fn run_action(&self, res: &Resource, action: &Action) -> i32 {
        match action {
            Action::NewResource => self.new_resource(res),
            Action::ResourceOptionsDefaults => self.resource_options(res, true),
            Action::NewMinor(v) => self.new_minor(res, v),
            Action::Attach(v) => self.attach(res, v),
            Action::DiskOptionsDefaults(v) => self.disk_options(res, v, true),
            Action::Resize(v) => self.resize(res, v, false),
            Action::Detach(m) => self.minor_cmd("detach", res, *m),
            Action::DelMinor(m) => self.minor_cmd("del-minor", res, *m),
            Action::Disconnect(running) => self.disconnect(running),
            Action::Connect => self.connect(res),
            Action::NetOptionsDefaults => self.net_options(res, true),
        }
    }

    fn minor_cmd(&self, arg: &str, res: &Resource, minor: u32) -> i32 {
        let mut argv = vec![self.setup(), arg.to_owned(), minor.to_string()];
        argv.extend(self.setup_options.iter().cloned());
        self.run(argv, res)
    }

    /// `drbdsetup show <res>`, parsed; None if the kernel does not know it.
    fn running(&self, res: &Resource) -> Result<Option<Resource>, String> {
        let argv = vec![self.setup(), "show".into(), res.name.clone()];
        let Some(text) = self.runner.query(&argv) else {
            return Ok(None);
        };
        let Some(mut running) = parser::parse_show(&text, &res.name).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let mut cfg = Config {
            resources: vec![running],
            ..Default::default()
        };
        set_me(&mut cfg, "_this_host").map_err(|e| e.to_string())?;
        running = cfg.resources.remove(0);
        set_peer(&mut running, false, None).map_err(|e| e.to_string())?;
        Ok(Some(running))
    }
}

/// `up` for one volume: create the resource (once) and the minor, attach,
/// then connect (once).
pub fn schedule_up(res: &Resource, vol: &Volume, first: bool) -> Vec<Deferred> {
    let item = |stage: Stage, action: Action| Deferred {
        stage,
        res: res.name.clone(),
        action,
    };
    let mut d = Vec::new();
    if first {
        d.push(item(Stage::Prereq, Action::NewResource));
        d.push(item(Stage::Net, Action::Connect));
    }
    d.push(item(Stage::Prereq, Action::NewMinor(vol.clone())));
    d.push(item(Stage::Disk, Action::Attach(vol.clone())));
    d
}

/// drbd-utils' `opts_equal`: every option the kernel reports must equal
/// the configured one or be the default, and every configured option not
/// reported must be the default.
fn opts_equal(fields: &[Field], conf: &[Opt], running: &[Opt]) -> bool {
    let field = |name: &str| find_field(fields, name);
    let mut mentioned: HashSet<&str> = HashSet::new();
    for r in running {
        match find_opt(conf, &r.name) {
            Some(c) => {
                let equal = match field(&r.name) {
                    Some(f) => f.is_equal(r.value(), c.value()),
                    None => r.value() == c.value(),
                };
                if !equal {
                    return false;
                }
                mentioned.insert(c.name.as_str());
            }
            None => {
                if !field(&r.name).is_some_and(|f| f.is_default(r.value())) {
                    return false;
                }
            }
        }
    }
    conf.iter()
        .filter(|c| !mentioned.contains(c.name.as_str()))
        .all(|c| field(&c.name).is_some_and(|f| f.is_default(c.value())))
}

/// The configured and the running volume use the same disks.
fn disk_equal(conf: &Volume, running: &Volume) -> bool {
    match (&conf.disk, &running.disk) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            if a != b || conf.internal_md() != running.internal_md() {
                return false;
            }
            conf.internal_md() || conf.meta_disk == running.meta_disk
        }
        _ => false,
    }
}

fn attach_field(name: &str) -> Option<Field> {
    find_field(ATTACH_ONLY_FIELDS, name).or_else(|| find_field(DISK_FIELDS, name))
}

/// Moves option `name` to the front (where attach passes it first and
/// disk-options skips it); returns it if present.
fn move_to_head(opts: &mut Vec<Opt>, name: &str) -> Option<Opt> {
    let pos = opts.iter().position(|o| o.name == name)?;
    let o = opts.remove(pos);
    opts.insert(0, o.clone());
    Some(o)
}

/// A volume's adjustments.
#[derive(Clone, Debug, Default)]
struct AdjVol {
    vol: Volume,
    del_minor: bool,
    add_minor: bool,
    detach: bool,
    attach: bool,
    resize: bool,
    disk_opts: bool,
}

/// Whether `name` (size or max-bio-bvecs) differs between config and kernel.
fn special_differs(conf: &mut Volume, kern: &mut Volume, name: &str) -> bool {
    let c = move_to_head(&mut conf.disk_options, name);
    let k = move_to_head(&mut kern.disk_options, name);
    let field = attach_field(name);
    let k = k.filter(|k| !field.is_some_and(|f| f.is_default(k.value())));
    match (&c, &k) {
        (None, None) => false,
        (Some(c), Some(k)) => !field.is_some_and(|f| f.is_equal(k.value(), c.value())),
        _ => true,
    }
}

fn compare_volume(conf: Volume, mut kern: Volume) -> AdjVol {
    let mut a = AdjVol {
        attach: conf.minor != kern.minor || !disk_equal(&conf, &kern),
        vol: conf,
        ..Default::default()
    };
    if special_differs(&mut a.vol, &mut kern, "max-bio-bvecs") {
        a.attach = true;
    }
    if special_differs(&mut a.vol, &mut kern, "size") {
        a.resize = true;
    }
    let rest = |opts: &[Opt]| -> Vec<Opt> {
        opts.iter()
            .skip_while(|o| o.name == "size" || o.name == "max-bio-bvecs")
            .cloned()
            .collect()
    };
    if !a.attach {
        a.disk_opts = !opts_equal(
            DISK_FIELDS,
            &rest(&a.vol.disk_options),
            &rest(&kern.disk_options),
        );
    }
    if a.attach && kern.disk.is_some() {
        a.detach = true;
    }
    a
}

/// Pairs configured and running volumes by volume number.
fn compare_volumes(conf: &[Volume], kern: &[Volume]) -> Vec<AdjVol> {
    let mut out: Vec<AdjVol> = Vec::new();
    // a volume whose minor changed is removed and created anew
    let same = |c: &Volume, k: &Volume| c.vnr == k.vnr && c.minor == k.minor;
    for c in conf {
        match kern.iter().find(|k| same(c, k)) {
            Some(k) => out.push(compare_volume(c.clone(), k.clone())),
            None => out.push(AdjVol {
                vol: c.clone(),
                add_minor: true,
                attach: true,
                ..Default::default()
            }),
        }
    }
    for k in kern.iter().filter(|k| !conf.iter().any(|c| same(c, k))) {
        let mut v = Volume::new(k.vnr);
        v.minor = k.minor;
        let mut a = AdjVol {
            del_minor: true,
            ..Default::default()
        };
        if k.disk.is_some() {
            v.disk.clone_from(&k.disk);
            v.meta_disk.clone_from(&k.meta_disk);
            v.meta_index.clone_from(&k.meta_index);
            a.detach = true;
        }
        a.vol = v;
        let pos = out
            .iter()
            .position(|x| x.vol.vnr > k.vnr)
            .unwrap_or(out.len());
        out.insert(pos, a);
    }
    out
}

fn addr_equal(conf: &Resource, running: &Resource) -> bool {
    match (conf.peer(), running.peer()) {
        (None, None) => return true,
        (_, None) | (None, _) => return false,
        _ => {}
    }
    let me = |r: &Resource| r.me().and_then(|h| h.address.clone());
    let peer = |r: &Resource| r.peer().and_then(|h| h.address.clone());
    me(conf).is_some() && me(conf) == me(running) && peer(conf) == peer(running)
}

impl Env<'_> {
    /// `adjust`: compares the configuration with the kernel's and schedules
    /// only the commands needed to make them agree.
    pub fn adjust(&self, res: &Resource) -> Result<Vec<Deferred>, String> {
        let running = self.running(res)?;
        let name = res.name.clone();
        let mut out = Vec::new();
        let mut push = |stage: Stage, action: Action| {
            out.push(Deferred {
                stage,
                res: name.clone(),
                action,
            })
        };
        let kern_vols: Vec<Volume> = running
            .as_ref()
            .map(|r| r.my_volumes().to_vec())
            .unwrap_or_default();
        let vols = compare_volumes(res.my_volumes(), &kern_vols);
        let (do_connect, mut do_net, do_res) = match &running {
            Some(r) => (
                !addr_equal(res, r),
                !opts_equal(NET_FIELDS, &res.net, &r.net),
                !opts_equal(RES_FIELDS, &res.res_options, &r.res_options),
            ),
            None => {
                push(Stage::Prereq, Action::NewResource);
                (true, false, false)
            }
        };
        let do_disconnect = do_connect
            && running
                .as_ref()
                .is_some_and(|r| r.peer.is_some() || !r.net.is_empty());
        if do_res {
            push(Stage::Resource, Action::ResourceOptionsDefaults);
        }
        for a in &vols {
            if a.detach {
                push(Stage::Prereq, Action::Detach(a.vol.minor()));
            }
            if a.del_minor {
                push(Stage::Prereq, Action::DelMinor(a.vol.minor()));
            }
            if a.add_minor {
                push(Stage::DiskPrereq, Action::NewMinor(a.vol.clone()));
            }
            if a.attach {
                push(Stage::Disk, Action::Attach(a.vol.clone()));
            }
            if a.disk_opts {
                push(Stage::Disk, Action::DiskOptionsDefaults(a.vol.clone()));
            }
            if a.resize {
                push(Stage::Disk, Action::Resize(a.vol.clone()));
            }
        }
        if do_connect {
            if do_disconnect {
                if let Some(r) = &running {
                    push(Stage::NetPrereq, Action::Disconnect(Box::new(r.clone())));
                }
            }
            push(Stage::Net, Action::Connect);
            do_net = false;
        }
        if do_net {
            push(Stage::Net, Action::NetOptionsDefaults);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(minor: u32, disk: &str, opts: &[(&str, &str)]) -> Volume {
        Volume {
            minor: Some(minor),
            disk: Some(disk.into()),
            meta_disk: Some("internal".into()),
            meta_index: Some(MetaIndex::Internal),
            disk_options: opts.iter().map(|(n, v)| Opt::new(n, v)).collect(),
            ..Volume::new(0)
        }
    }

    #[test]
    fn equal_volumes_need_nothing() {
        let a = compare_volume(
            vol(0, "/dev/a", &[("resync-rate", "100M")]),
            vol(0, "/dev/a", &[("resync-rate", "102400k")]),
        );
        assert!(!a.attach && !a.disk_opts && !a.resize && !a.detach);
    }

    #[test]
    fn changed_options_and_disks() {
        let a = compare_volume(
            vol(0, "/dev/a", &[("resync-rate", "100M")]),
            vol(0, "/dev/a", &[]),
        );
        assert!(a.disk_opts && !a.attach);
        let a = compare_volume(vol(0, "/dev/b", &[]), vol(0, "/dev/a", &[]));
        assert!(a.attach && a.detach);
        let a = compare_volume(
            vol(0, "/dev/a", &[("al-extents", "1237")]),
            vol(0, "/dev/a", &[]),
        );
        assert!(!a.disk_opts, "a default value equals an unset one");
        let a = compare_volume(
            vol(0, "/dev/a", &[("resync-rate", "1M"), ("size", "1G")]),
            vol(0, "/dev/a", &[]),
        );
        assert!(a.resize && a.disk_opts);
        assert_eq!(a.vol.disk_options[0].name, "size");
    }

    #[test]
    fn volumes_only_in_the_kernel_are_removed() {
        let kern = vec![
            vol(0, "/dev/a", &[]),
            Volume {
                vnr: 1,
                ..vol(1, "/dev/b", &[])
            },
        ];
        let v = compare_volumes(&[vol(0, "/dev/a", &[])], &kern);
        assert_eq!(v.len(), 2);
        assert!(v[1].del_minor && v[1].detach);
        assert_eq!(v[1].vol.minor, Some(1));
    }

    #[test]
    fn option_lists_compare_with_defaults() {
        let c = [Opt::new("protocol", "C"), Opt::new("cram-hmac-alg", "sha1")];
        let r = [Opt::new("cram-hmac-alg", "sha1")];
        assert!(opts_equal(NET_FIELDS, &c, &r));
        assert!(!opts_equal(NET_FIELDS, &c[..1], &r));
        assert!(!opts_equal(NET_FIELDS, &[Opt::new("protocol", "A")], &[]));
    }
}
