//! A recursive-descent parser for drbd.conf (the grammar of drbd-utils'
//! 8.4 drbdadm), also used for `drbdsetup show` output in `adjust`.
//!
//! Every error names the file and line: `drbd.conf:12: unknown keyword 'foo'`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::lexer::{tokenize, Tok, Token};
use super::model::{
    insert_sorted, Address, Config, Host, HostKind, MetaIndex, Opt, Resource, UsageCount, Volume,
};
use super::options::{
    self, check_range, keyword, Range, Section, Style, CMD_TIMEOUT_RANGE, DIALOG_REFRESH_RANGE,
    MINOR_COUNT_RANGE, PORT_RANGE,
};
use super::ConfigError;

/// What is being parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// drbd.conf and its includes.
    Config,
    /// `drbdsetup show` output: `_this_host`/`_remote_host` sections, no
    /// uniqueness or completeness checks.
    Show,
}

/// Where the tokens come from.
#[derive(Clone, Debug)]
pub struct FileName {
    /// As error messages name it.
    pub display: String,
    /// Absolute path (what `dump` prints); its directory anchors includes.
    pub canonical: String,
}

/// Parser state shared across included files.
#[derive(Default)]
pub struct Loader {
    pub config: Config,
    /// Canonical paths of the files read so far (each is read once).
    seen_files: Vec<PathBuf>,
    /// Global uniqueness: key -> "file:line" of first use.
    uniq: HashMap<String, String>,
    global_seen: bool,
    depth: u32,
}

impl Loader {
    /// Parses the main configuration file and everything it includes.
    pub fn load(path: &Path, display: &str) -> Result<Config, ConfigError> {
        let canonical = canonical_path(path);
        let mut loader = Loader::default();
        loader.config.config_file = canonical.clone();
        loader.parse_file(
            path,
            FileName {
                display: display.to_owned(),
                canonical,
            },
        )?;
        Ok(loader.config)
    }

    /// Parses configuration text read from stdin (`-c -`); includes are
    /// relative to the current directory.
    pub fn load_text(text: &str, display: &str) -> Result<Config, ConfigError> {
        let mut loader = Loader::default();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        loader.config.config_file = display.to_owned();
        let canonical = cwd.join(display).to_string_lossy().into_owned();
        loader.parse_text(
            text,
            FileName {
                display: display.to_owned(),
                canonical,
            },
        )?;
        for r in &mut loader.config.resources {
            r.config_file = display.to_owned();
        }
        Ok(loader.config)
    }

    fn parse_file(&mut self, path: &Path, name: FileName) -> Result<(), ConfigError> {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.seen_files.contains(&real) {
            return Ok(());
        }
        self.seen_files.push(real);
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: name.display.clone(),
            line: 0,
            msg: format!("can not read: {e}"),
        })?;
        self.parse_text(&text, name)
    }

    /// Parses configuration text (used directly by tests).
    pub fn parse_text(&mut self, text: &str, name: FileName) -> Result<(), ConfigError> {
        let toks = tokenize(text).map_err(|e| ConfigError {
            file: name.display.clone(),
            line: e.line,
            msg: e.msg,
        })?;
        let mut p = Parser {
            toks,
            pos: 0,
            file: name,
            mode: Mode::Config,
        };
        p.parse_top(self)
    }
}

/// Parses `drbdsetup show <res>` output; None if it holds no resource.
pub fn parse_show(text: &str, res_name: &str) -> Result<Option<Resource>, ConfigError> {
    let file = FileName {
        display: format!("drbdsetup show {res_name}"),
        canonical: String::new(),
    };
    let toks = tokenize(text).map_err(|e| ConfigError {
        file: file.display.clone(),
        line: e.line,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        pos: 0,
        file,
        mode: Mode::Show,
    };
    if !p.eat_word("resource") {
        return Ok(None);
    }
    let name_tok = p.next();
    if !matches!(name_tok.tok, Tok::Word(_) | Tok::Str(_)) {
        return Ok(None);
    }
    if !p.eat_punct('{') {
        return Ok(None);
    }
    let mut loader = Loader::default();
    let res = p.parse_resource(&mut loader, res_name, false)?;
    Ok(Some(res))
}

pub fn canonical_path(path: &Path) -> String {
    // drbd-utils canonifies the directory and keeps the file name.
    let file = path.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    dir.join(file).to_string_lossy().into_owned()
}

const HOST_KEYWORDS: &str =
    "disk | device | address | meta-disk | flexible-meta-disk | volume | options";

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    file: FileName,
    mode: Mode,
}

fn is_int(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Parser {
    fn peek(&self) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.pos.min(last)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn line(&self) -> u32 {
        self.peek().line
    }

    fn err_at(&self, line: u32, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display.clone(),
            line,
            msg: msg.into(),
        }
    }

    fn unexpected(&self, t: &Token, expected: &str) -> ConfigError {
        let msg = match &t.tok {
            Tok::Eof => format!("unexpected end of file, expected {expected}"),
            Tok::Word(w) => format!("unknown keyword '{w}', expected {expected}"),
            Tok::Other(c) => format!("unexpected character '{c}', expected {expected}"),
            other => format!("expected {expected}, got '{other}'"),
        };
        self.err_at(t.line, msg)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if matches!(&self.peek().tok, Tok::Word(x) if x == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.peek().tok == Tok::Punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<(), ConfigError> {
        let t = self.next();
        if t.tok == Tok::Punct(c) {
            Ok(())
        } else {
            Err(self.unexpected(&t, &format!("'{c}'")))
        }
    }

    /// A word or quoted string.
    fn expect_string(&mut self, what: &str) -> Result<String, ConfigError> {
        let t = self.next();
        match t.tok {
            Tok::Word(w) | Tok::Str(w) => Ok(w),
            _ => Err(self.unexpected(&t, what)),
        }
    }

    fn expect_int(&mut self, what: &str) -> Result<(String, u32), ConfigError> {
        let t = self.next();
        match &t.tok {
            Tok::Word(w) if is_int(w) => Ok((w.clone(), t.line)),
            _ => Err(self.unexpected(&t, what)),
        }
    }

    fn expect_u32(&mut self, what: &str) -> Result<u32, ConfigError> {
        let (w, line) = self.expect_int(what)?;
        w.parse()
            .map_err(|_| self.err_at(line, format!("{w}: number too large")))
    }

    fn range_check(
        &self,
        line: u32,
        name: &str,
        value: &str,
        range: &Range,
    ) -> Result<(), ConfigError> {
        let unit = if range.scale == '1' {
            String::new()
        } else {
            range.scale.to_string()
        };
        match check_range(value, range) {
            Ok(()) => Ok(()),
            Err(Some(v)) => Err(self.err_at(
                line,
                format!(
                    "{name} {value} => {v}{unit} out of range [{}..{}]{unit}.",
                    range.min, range.max
                ),
            )),
            Err(None) => Err(self.err_at(line, format!("{name} {value}: not a valid number"))),
        }
    }

    /// Records `key` as used here; error if it was used before.
    fn uniq(
        &self,
        loader: &mut Loader,
        what: &str,
        key: String,
        line: u32,
    ) -> Result<(), ConfigError> {
        if self.mode == Mode::Show {
            return Ok(());
        }
        let here = format!("{}:{}", self.file.display, line);
        if let Some(first) = loader.uniq.get(&key) {
            return Err(self.err_at(
                line,
                format!("conflicting use of {what} '{key}' ...\n{first}: {what} '{key}' first used here."),
            ));
        }
        loader.uniq.insert(key, here);
        Ok(())
    }

    fn parse_top(&mut self, loader: &mut Loader) -> Result<(), ConfigError> {
        loop {
            let t = self.next();
            match &t.tok {
                Tok::Eof => return Ok(()),
                Tok::Word(w) => match w.as_str() {
                    "global" => self.parse_global(loader, t.line)?,
                    "common" => {
                        self.expect_punct('{')?;
                        if loader.config.common.is_some() {
                            return Err(self.err_at(t.line, "the common section is defined twice"));
                        }
                        let common = self.parse_resource(loader, "common", true)?;
                        loader.config.common = Some(common);
                    }
                    "resource" => {
                        let name_tok = self.next();
                        let name = match &name_tok.tok {
                            Tok::Word(n) | Tok::Str(n) => n.clone(),
                            _ => return Err(self.unexpected(&name_tok, "a resource name")),
                        };
                        if name.is_empty() || name.chars().any(|c| c.is_control()) {
                            return Err(self.err_at(name_tok.line, "invalid resource name"));
                        }
                        self.expect_punct('{')?;
                        self.uniq(loader, "resource section", name.clone(), name_tok.line)?;
                        let res = self.parse_resource(loader, &name, false)?;
                        loader.config.resources.push(res);
                    }
                    "skip" => self.parse_skip(t.line)?,
                    "include" => {
                        let pattern = self.expect_string("a file name pattern")?;
                        self.expect_punct(';')?;
                        self.include(loader, &pattern, t.line)?;
                    }
                    _ => {
                        return Err(
                            self.unexpected(&t, "global | common | resource | skip | include")
                        )
                    }
                },
                _ => return Err(self.unexpected(&t, "global | common | resource | skip | include")),
            }
        }
    }

    fn include(
        &mut self,
        loader: &mut Loader,
        pattern: &str,
        line: u32,
    ) -> Result<(), ConfigError> {
        let dir = Path::new(&self.file.canonical)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let matches = super::glob::glob(&dir, pattern);
        if matches.is_empty() && !pattern.contains(['*', '?', '[']) {
            return Err(self.err_at(line, format!("Failed to open include file '{pattern}'.")));
        }
        if loader.depth >= 10 {
            return Err(self.err_at(line, "includes nested too deeply"));
        }
        loader.depth += 1;
        for (path, display) in matches {
            let name = FileName {
                display,
                canonical: canonical_path(&path),
            };
            loader.parse_file(&path, name)?;
        }
        loader.depth -= 1;
        Ok(())
    }

    fn parse_skip(&mut self, line: u32) -> Result<(), ConfigError> {
        let t = self.next();
        match t.tok {
            Tok::Punct('{') => {}
            Tok::Word(_) | Tok::Str(_) => self.expect_punct('{')?,
            _ => return Err(self.unexpected(&t, "[ some_text ] {")),
        }
        let mut level = 1;
        while level > 0 {
            match self.next().tok {
                Tok::Punct('{') => level += 1,
                Tok::Punct('}') => level -= 1,
                Tok::Eof => {
                    return Err(self.err_at(line, "reached eof while parsing this skip block."))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn parse_global(&mut self, loader: &mut Loader, line: u32) -> Result<(), ConfigError> {
        if loader.global_seen {
            return Err(self.err_at(line, "the global section is defined twice"));
        }
        loader.global_seen = true;
        if !loader.config.resources.is_empty() {
            eprintln!(
                "{}:{}: You should put the global {{}} section\n\tin front of any resource {{}} section",
                self.file.display, line
            );
        }
        self.expect_punct('{')?;
        loop {
            let t = self.next();
            let g = &mut loader.config.global;
            let w = match &t.tok {
                Tok::Punct('}') => return Ok(()),
                Tok::Word(w) => w.clone(),
                _ => return Err(self.unexpected(&t, "a global option")),
            };
            match w.as_str() {
                "udev-always-use-vnr" => g.udev_always_use_vnr = true,
                "disable-ip-verification" => g.disable_ip_verification = true,
                "usage-count" => {
                    let v = self.next();
                    let g = &mut loader.config.global;
                    g.usage_count = match &v.tok {
                        Tok::Word(x) if x == "yes" => UsageCount::Yes,
                        Tok::Word(x) if x == "no" => UsageCount::No,
                        Tok::Word(x) if x == "ask" => UsageCount::Ask,
                        _ => return Err(self.unexpected(&v, "yes | no | ask")),
                    };
                }
                "minor-count" | "dialog-refresh" | "cmd-timeout-short" | "cmd-timeout-medium"
                | "cmd-timeout-long" => {
                    let (v, vline) = self.expect_int("a number")?;
                    let range = match w.as_str() {
                        "minor-count" => MINOR_COUNT_RANGE,
                        "dialog-refresh" => DIALOG_REFRESH_RANGE,
                        _ => CMD_TIMEOUT_RANGE,
                    };
                    self.range_check(vline, &w, &v, &range)?;
                    let n: i64 = v.parse().unwrap_or(0);
                    let g = &mut loader.config.global;
                    match w.as_str() {
                        "minor-count" => g.minor_count = u32::try_from(n).unwrap_or(0),
                        "dialog-refresh" => g.dialog_refresh = n,
                        "cmd-timeout-short" => g.cmd_timeout_short = n,
                        "cmd-timeout-medium" => g.cmd_timeout_medium = n,
                        _ => g.cmd_timeout_long = n,
                    }
                }
                _ => {
                    return Err(self.unexpected(
                        &t,
                        "usage-count | minor-count | dialog-refresh | disable-ip-verification | udev-always-use-vnr | cmd-timeout-{short,medium,long}",
                    ))
                }
            }
            self.expect_punct(';')?;
        }
    }

    /// Parses a resource body after its `{` (also `common` and `drbdsetup
    /// show` output).
    fn parse_resource(
        &mut self,
        loader: &mut Loader,
        name: &str,
        is_common: bool,
    ) -> Result<Resource, ConfigError> {
        let mut res = Resource {
            name: name.to_owned(),
            config_file: self.file.canonical.clone(),
            display_file: self.file.display.clone(),
            // the line of the opening brace, as drbd-utils reports it
            start_line: self
                .toks
                .get(self.pos.saturating_sub(1))
                .map_or(0, |t| t.line),
            ..Default::default()
        };
        let mut seen_sections: Vec<&'static str> = Vec::new();
        let mut once = |p: &Parser, what: &'static str, line: u32| -> Result<(), ConfigError> {
            if seen_sections.contains(&what) {
                return Err(p.err_at(
                    line,
                    format!("in resource {name}: the {what} is given twice"),
                ));
            }
            seen_sections.push(what);
            Ok(())
        };
        loop {
            let t = self.next();
            let w = match &t.tok {
                Tok::Punct('}') | Tok::Eof => break,
                Tok::Word(w) => w.clone(),
                _ => return Err(self.unexpected(&t, "a resource keyword")),
            };
            match w.as_str() {
                "protocol" => {
                    once(self, "protocol statement", t.line)?;
                    let v = self.expect_string("A | B | C")?;
                    let v = self.protocol(&v, t.line)?;
                    res.net.push(Opt::new("protocol", &v));
                    self.expect_punct(';')?;
                }
                "on" => {
                    let mut names = Vec::new();
                    loop {
                        let n = self.next();
                        match n.tok {
                            Tok::Word(h) | Tok::Str(h) => names.push(h),
                            Tok::Punct('{') if !names.is_empty() => break,
                            _ => return Err(self.unexpected(&n, "a host name or '{'")),
                        }
                    }
                    if is_common {
                        return Err(self.err_at(
                            t.line,
                            "in the common section, there are no host sections allowed.",
                        ));
                    }
                    self.parse_host(loader, &mut res, HostKind::On, names, t.line)?;
                }
                "_this_host" | "_remote_host" if self.mode == Mode::Show => {
                    self.expect_punct('{')?;
                    let kind = if w == "_this_host" {
                        HostKind::ThisHost
                    } else {
                        HostKind::RemoteHost
                    };
                    self.parse_host(loader, &mut res, kind, vec![w.clone()], t.line)?;
                }
                "floating" | "stacked-on-top-of" | "ignore-on" | "proxy" => {
                    return Err(self.err_at(
                        t.line,
                        format!("'{w}' is not supported by this drbdadm"),
                    ))
                }
                "disk" => {
                    let v = self.next();
                    match v.tok {
                        Tok::Word(d) | Tok::Str(d) => {
                            self.volume0(&mut res.volumes, t.line)?.disk = Some(d);
                            self.expect_punct(';')?;
                        }
                        Tok::Punct('{') => {
                            once(self, "disk section", t.line)?;
                            let opts = self.parse_options(Section::Disk, &mut res)?;
                            res.disk.extend(opts);
                        }
                        _ => return Err(self.unexpected(&v, "a disk name or '{'")),
                    }
                }
                "net" | "startup" | "handlers" | "options" | "syncer" => {
                    self.expect_punct('{')?;
                    let sect = match w.as_str() {
                        "net" => Section::Net,
                        "startup" => Section::Startup,
                        "handlers" => Section::Handlers,
                        "options" => Section::Res,
                        _ => {
                            once(self, "syncer section", t.line)?;
                            self.parse_syncer(&mut res)?;
                            continue;
                        }
                    };
                    let label = match sect {
                        Section::Net => "net section",
                        Section::Startup => "startup section",
                        Section::Handlers => "handlers section",
                        _ => "options section",
                    };
                    once(self, label, t.line)?;
                    let opts = self.parse_options(sect, &mut res)?;
                    match sect {
                        Section::Net => res.net.extend(opts),
                        Section::Startup => res.startup = opts,
                        Section::Handlers => res.handlers = opts,
                        _ => res.res_options.extend(opts),
                    }
                }
                "device" | "meta-disk" | "flexible-meta-disk" => {
                    let vol = self.volume0(&mut res.volumes, t.line)?;
                    let mut vol = std::mem::take(vol);
                    let r = self.parse_volume_stmt(loader, &mut vol, &[], &w);
                    if let Some(v) = res.volumes.first_mut() {
                        *v = vol;
                    }
                    r?;
                }
                "volume" => {
                    let vnr = self.expect_u32("a volume number")?;
                    let vol = self.parse_volume(loader, vnr, &[])?;
                    insert_sorted(&mut res.volumes, vol);
                }
                _ => {
                    return Err(self.unexpected(
                        &t,
                        "protocol | on | disk | net | syncer | startup | handlers | options | device | meta-disk | volume",
                    ))
                }
            }
        }
        if self.mode == Mode::Config && !is_common {
            self.check_volumes_hosts(&res)?;
        }
        Ok(res)
    }

    fn protocol(&self, v: &str, line: u32) -> Result<String, ConfigError> {
        let up = v.to_ascii_uppercase();
        if matches!(up.as_str(), "A" | "B" | "C") {
            Ok(up)
        } else {
            Err(self.err_at(
                line,
                format!("unknown protocol '{v}', should be one of A,B,C"),
            ))
        }
    }

    /// The implicit volume 0 of a host or resource section.
    fn volume0<'v>(
        &self,
        vols: &'v mut Vec<Volume>,
        line: u32,
    ) -> Result<&'v mut Volume, ConfigError> {
        if vols.is_empty() {
            vols.push(Volume {
                implicit: true,
                ..Volume::new(0)
            });
        } else if !(vols.len() == 1 && vols[0].vnr == 0 && vols[0].implicit) {
            return Err(self.err_at(line, "mixing explicit and implicit volumes is not allowed"));
        }
        match vols.first_mut() {
            Some(v) => Ok(v),
            None => Err(self.err_at(line, "internal error: no volume")),
        }
    }

    fn parse_volume(
        &mut self,
        loader: &mut Loader,
        vnr: u32,
        hosts: &[String],
    ) -> Result<Volume, ConfigError> {
        let mut vol = Volume::new(vnr);
        self.expect_punct('{')?;
        loop {
            let t = self.next();
            match &t.tok {
                Tok::Punct('}') => return Ok(vol),
                Tok::Word(w)
                    if matches!(
                        w.as_str(),
                        "device" | "disk" | "meta-disk" | "flexible-meta-disk"
                    ) =>
                {
                    let w = w.clone();
                    self.parse_volume_stmt(loader, &mut vol, hosts, &w)?;
                }
                _ => {
                    return Err(
                        self.unexpected(&t, "device | disk | meta-disk | flexible-meta-disk | }")
                    )
                }
            }
        }
    }

    fn parse_volume_stmt(
        &mut self,
        loader: &mut Loader,
        vol: &mut Volume,
        hosts: &[String],
        keyword: &str,
    ) -> Result<(), ConfigError> {
        match keyword {
            "disk" => {
                let t = self.next();
                match t.tok {
                    Tok::Word(d) | Tok::Str(d) => {
                        vol.disk = Some(d);
                        self.expect_punct(';')?;
                    }
                    Tok::Punct('{') => {
                        let mut dummy = Resource::default();
                        vol.disk_options = self.parse_options(Section::Disk, &mut dummy)?;
                    }
                    _ => return Err(self.unexpected(&t, "a disk name or '{'")),
                }
            }
            "device" => self.parse_device(loader, vol, hosts)?,
            "meta-disk" => {
                let md = self.expect_string("internal or a meta data device")?;
                if md == "internal" {
                    vol.meta_index = Some(MetaIndex::Internal);
                    vol.meta_disk = Some(md);
                    self.expect_punct(';')?;
                } else {
                    vol.meta_disk = Some(md);
                    let t = self.next();
                    match t.tok {
                        Tok::Punct('[') => {
                            let (idx, _) = self.expect_int("a meta data index")?;
                            vol.meta_index = Some(MetaIndex::Index(idx));
                            self.expect_punct(']')?;
                            self.expect_punct(';')?;
                        }
                        Tok::Punct(';') => vol.meta_index = Some(MetaIndex::Flexible),
                        _ => return Err(self.unexpected(&t, "'[' or ';'")),
                    }
                }
            }
            _ => {
                // flexible-meta-disk
                let md = self.expect_string("internal or a meta data device")?;
                vol.meta_index = Some(if md == "internal" {
                    MetaIndex::Internal
                } else {
                    MetaIndex::Flexible
                });
                vol.meta_disk = Some(md);
                self.expect_punct(';')?;
            }
        }
        Ok(())
    }

    fn parse_device(
        &mut self,
        loader: &mut Loader,
        vol: &mut Volume,
        hosts: &[String],
    ) -> Result<(), ConfigError> {
        let t = self.next();
        let line = t.line;
        let mut explicit_minor = false;
        match t.tok {
            Tok::Word(ref n) | Tok::Str(ref n) if n != "minor" => {
                let dev = if n.starts_with("drbd") {
                    format!("/dev/{n}")
                } else {
                    n.clone()
                };
                if !dev.starts_with("/dev/drbd") {
                    return Err(self.err_at(
                        line,
                        "device name must start with /dev/drbd\n\t(/dev/ is optional, but drbd is required)",
                    ));
                }
                vol.device = Some(dev.clone());
                let n2 = self.next();
                match n2.tok {
                    Tok::Punct(';') => match minor_of_device(&dev) {
                        Some(m) => vol.minor = Some(m),
                        None => {
                            return Err(self.err_at(
                                line,
                                "no minor given nor device name contains a minor number",
                            ))
                        }
                    },
                    Tok::Word(ref m) if m == "minor" => explicit_minor = true,
                    _ => return Err(self.unexpected(&n2, "minor | ;")),
                }
            }
            Tok::Word(_) => explicit_minor = true,
            _ => return Err(self.unexpected(&t, "a device name or 'minor'")),
        }
        if explicit_minor {
            let m = self.expect_u32("a minor number")?;
            self.expect_punct(';')?;
            vol.minor = Some(m);
            if let Some(dev) = &vol.device {
                let rest = &dev[9..];
                if is_int(rest) {
                    if rest.parse::<u32>().ok() != Some(m) {
                        return Err(self.err_at(
                            line,
                            format!(
                                "explicit minor number must match with device name\n\tTry \"device /dev/drbd{m} minor {m};\",\n\tor leave off either device name or explicit minor.\n\tArbitrary device names must start with /dev/drbd_\n\tmind the '_'! (/dev/ is optional, but drbd_ is required)"
                            ),
                        ));
                    }
                } else if rest.starts_with('_') {
                    eprintln!(
                        "{}:{}: arbitrary device names (/dev/drbd_...) are no longer generated from current udev rules.\n\tYou may need to manually mknod {} b 147 {}\n\tYou should no longer use them.",
                        self.file.display, line, dev, m
                    );
                } else {
                    return Err(self.err_at(
                        line,
                        "explicit device names should be of the form /dev/drbd<minor>",
                    ));
                }
            }
        }
        if let Some(m) = vol.minor {
            for h in hosts {
                self.uniq(
                    loader,
                    "device-minor",
                    format!("device-minor:{h}:{m}"),
                    line,
                )?;
            }
        }
        Ok(())
    }

    fn parse_address(
        &mut self,
        loader: &mut Loader,
        hosts: &[String],
    ) -> Result<Address, ConfigError> {
        let t = self.next();
        let line = t.line;
        let (af, addr) = match &t.tok {
            Tok::Word(w) if matches!(w.as_str(), "ipv4" | "ssocks" | "sdp" | "sci") => {
                let af = if w == "sci" { "ssocks" } else { w.as_str() }.to_owned();
                let a = self.next();
                match a.tok {
                    Tok::Word(ref x) if x.parse::<Ipv4Addr>().is_ok() => (af, x.clone()),
                    _ => return Err(self.unexpected(&a, "an IPv4 address")),
                }
            }
            Tok::Word(w) if w == "ipv6" => {
                self.expect_punct('[')?;
                let mut a = String::new();
                loop {
                    let x = self.next();
                    match x.tok {
                        Tok::Punct(']') => break,
                        Tok::Word(ref s) => a.push_str(s),
                        Tok::Punct(':') => a.push(':'),
                        Tok::Other('%') => a.push('%'),
                        _ => return Err(self.unexpected(&x, "an IPv6 address")),
                    }
                }
                let plain = a.split('%').next().unwrap_or("");
                if plain.parse::<Ipv6Addr>().is_err() {
                    return Err(self.err_at(line, format!("invalid IPv6 address '{a}'")));
                }
                ("ipv6".to_owned(), a)
            }
            Tok::Word(w) if w.parse::<Ipv4Addr>().is_ok() => ("ipv4".to_owned(), w.clone()),
            _ => return Err(self.unexpected(&t, "ssocks | sdp | ipv4 | ipv6 | <ipv4 address>")),
        };
        self.expect_punct(':')?;
        let (port, pline) = self.expect_int("a port number")?;
        self.range_check(pline, "port", &port, &PORT_RANGE)?;
        self.expect_punct(';')?;
        let loopback = addr.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
            || addr.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback());
        if loopback {
            for h in hosts {
                self.uniq(loader, "IP", format!("{h}:{addr}:{port}"), line)?;
            }
        } else {
            self.uniq(loader, "IP", format!("{addr}:{port}"), line)?;
        }
        Ok(Address { af, addr, port })
    }

    fn parse_host(
        &mut self,
        loader: &mut Loader,
        res: &mut Resource,
        kind: HostKind,
        names: Vec<String>,
        line: u32,
    ) -> Result<(), ConfigError> {
        let mut host = Host {
            kind,
            names,
            volumes: Vec::new(),
            address: None,
            address_line: line,
            res_options: Vec::new(),
            line,
        };
        if self.mode == Mode::Config {
            for other in &res.hosts {
                if let Some(n) = host.names.iter().find(|n| other.names.contains(n)) {
                    return Err(self.err_at(
                        line,
                        format!(
                            "in resource {}: host section 'on {n}' is given twice",
                            res.name
                        ),
                    ));
                }
            }
        }
        let mut seen: Vec<String> = Vec::new();
        loop {
            let t = self.next();
            let w = match &t.tok {
                Tok::Punct('}') => break,
                Tok::Word(w) => w.clone(),
                _ => return Err(self.unexpected(&t, HOST_KEYWORDS)),
            };
            let stmt = if w == "flexible-meta-disk" {
                "meta-disk"
            } else {
                w.as_str()
            };
            if matches!(stmt, "disk" | "device" | "meta-disk" | "address")
                && self.mode == Mode::Config
            {
                if seen.iter().any(|s| s == stmt) {
                    return Err(self.err_at(
                        t.line,
                        format!(
                            "in resource {}, on {} {{ ... }}: the {stmt} statement is given twice",
                            res.name,
                            host.names_str()
                        ),
                    ));
                }
                seen.push(stmt.to_owned());
            }
            match w.as_str() {
                "disk" | "device" | "meta-disk" | "flexible-meta-disk" => {
                    let mut vol = std::mem::take(self.volume0(&mut host.volumes, t.line)?);
                    let r = self.parse_volume_stmt(loader, &mut vol, &host.names, &w);
                    if let Some(v) = host.volumes.first_mut() {
                        *v = vol;
                    }
                    r?;
                }
                "address" => {
                    host.address_line = t.line;
                    host.address = Some(self.parse_address(loader, &host.names)?);
                }
                "alternate-link-address" | "proxy" => {
                    return Err(
                        self.err_at(t.line, format!("'{w}' is not supported by this drbdadm"))
                    )
                }
                "volume" => {
                    let vnr = self.expect_u32("a volume number")?;
                    let vol = self.parse_volume(loader, vnr, &host.names)?;
                    insert_sorted(&mut host.volumes, vol);
                }
                "options" => {
                    self.expect_punct('{')?;
                    let mut dummy = Resource::default();
                    host.res_options = self.parse_options(Section::Res, &mut dummy)?;
                }
                _ => return Err(self.unexpected(&t, HOST_KEYWORDS)),
            }
        }
        // inherit resource-level volumes
        for s in &res.volumes {
            let pos = host.volumes.iter().position(|v| v.vnr == s.vnr);
            let idx = match pos {
                Some(i) => i,
                None => {
                    let t = Volume {
                        implicit: s.implicit,
                        ..Volume::new(s.vnr)
                    };
                    insert_sorted(&mut host.volumes, t);
                    host.volumes
                        .iter()
                        .position(|v| v.vnr == s.vnr)
                        .unwrap_or(0)
                }
            };
            let Some(t) = host.volumes.get_mut(idx) else {
                continue;
            };
            if t.disk.is_none() && s.disk.is_some() {
                t.disk.clone_from(&s.disk);
            }
            if t.device.is_none() && s.device.is_some() {
                t.device.clone_from(&s.device);
            }
            if t.minor.is_none() {
                if let Some(m) = s.minor {
                    t.minor = Some(m);
                    for h in &host.names {
                        self.uniq(
                            loader,
                            "device-minor",
                            format!("device-minor:{h}:{m}"),
                            line,
                        )?;
                    }
                }
            }
            if t.meta_disk.is_none() && s.meta_disk.is_some() {
                t.meta_disk.clone_from(&s.meta_disk);
                t.meta_index.clone_from(&s.meta_index);
            }
        }
        if kind == HostKind::On && self.mode == Mode::Config {
            let at = |what: &str| {
                self.err_at(
                    line,
                    format!(
                        "in resource {}, on {} {{ ... }}: '{what}' keyword missing.",
                        res.name,
                        host.names_str()
                    ),
                )
            };
            if host.address.is_none() {
                return Err(at("address"));
            }
            for v in &host.volumes {
                if v.device.is_none() && v.minor.is_none() {
                    return Err(at("device"));
                }
                if v.disk.is_none() {
                    return Err(at("disk"));
                }
                if v.meta_disk.is_none() {
                    return Err(at("meta-disk"));
                }
            }
            if host.volumes.iter().any(|v| v.implicit) && host.volumes.iter().any(|v| v.vnr != 0) {
                return Err(self.err_at(
                    self.line(),
                    format!(
                        "in resource {}: you must not mix implicit and explicit volumes",
                        res.name
                    ),
                ));
            }
        }
        res.hosts.push(host);
        Ok(())
    }

    /// All host sections must define the same volumes.
    fn check_volumes_hosts(&self, res: &Resource) -> Result<(), ConfigError> {
        let line = self
            .toks
            .get(self.pos.saturating_sub(1))
            .map_or(0, |t| t.line);
        let Some(first) = res.hosts.first() else {
            return Ok(());
        };
        for other in &res.hosts[1..] {
            for a in &first.volumes {
                match other.volumes.iter().find(|b| b.vnr == a.vnr) {
                    None => {
                        return Err(self.err_at(
                            line,
                            format!(
                                "in resource {}, on {} {{ ... }}: volume {} not defined on {}",
                                res.name,
                                first.names_str(),
                                a.vnr,
                                other.names_str()
                            ),
                        ))
                    }
                    Some(b) if b.implicit != a.implicit => {
                        return Err(self.err_at(
                            line,
                            format!(
                                "in resource {}, on {} resp. {}: volume {} must not be implicit on one but not the other",
                                res.name,
                                first.names_str(),
                                other.names_str(),
                                a.vnr
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(b) = other
                .volumes
                .iter()
                .find(|b| !first.volumes.iter().any(|a| a.vnr == b.vnr))
            {
                return Err(self.err_at(
                    line,
                    format!(
                        "in resource {}, on {} {{ ... }}: volume {} missing (present on {})",
                        res.name,
                        first.names_str(),
                        b.vnr,
                        other.names_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The deprecated `syncer { }` section: its options go to the disk,
    /// net and resource options.
    fn parse_syncer(&mut self, res: &mut Resource) -> Result<(), ConfigError> {
        loop {
            let t = self.next();
            let w = match &t.tok {
                Tok::Punct('}') => return Ok(()),
                Tok::Word(w) => w.clone(),
                _ => return Err(self.unexpected(&t, "a syncer option keyword")),
            };
            let Some(kw) = keyword(&w).filter(|k| k.syncer) else {
                return Err(self.err_at(t.line, format!("unknown keyword '{w}' in syncer section")));
            };
            let Some(sect) = kw.section else {
                return Err(self.err_at(t.line, format!("unknown keyword '{w}' in syncer section")));
            };
            let opt = self.option_value(kw, t.line)?;
            match sect {
                Section::Net => res.net.push(opt),
                Section::Disk => res.disk.push(opt),
                _ => res.res_options.push(opt),
            }
        }
    }

    /// Parses what follows an option keyword (up to and including the ';').
    fn option_value(&mut self, kw: &options::Keyword, line: u32) -> Result<Opt, ConfigError> {
        match kw.style {
            Style::Flag => {
                let t = self.next();
                let v = match &t.tok {
                    Tok::Word(x) if x == "yes" || x == "no" => {
                        let v = x.clone();
                        self.expect_punct(';')?;
                        v
                    }
                    Tok::Punct(';') => "yes".to_owned(),
                    _ => return Err(self.unexpected(&t, "yes | no | ;")),
                };
                Ok(Opt::new(kw.canonical, &v))
            }
            Style::NoFlag => {
                self.expect_punct(';')?;
                Ok(Opt::new(&kw.canonical[3..], "no"))
            }
            _ => {
                let v = self.expect_string(&format!("a value for '{}'", kw.name))?;
                let v = if kw.name == "protocol" {
                    self.protocol(&v, line)?
                } else {
                    v
                };
                if let Some(range) = &kw.range {
                    self.range_check(line, kw.canonical, &v, range)?;
                }
                self.expect_punct(';')?;
                Ok(Opt::new(kw.canonical, &v))
            }
        }
    }

    /// Parses an option section body after its `{`. `res` receives the
    /// startup delegates (become-primary-on, stacked-timeouts).
    fn parse_options(
        &mut self,
        sect: Section,
        res: &mut Resource,
    ) -> Result<Vec<Opt>, ConfigError> {
        let mut opts = Vec::new();
        loop {
            let t = self.next();
            let w = match &t.tok {
                Tok::Punct('}') => return Ok(opts),
                Tok::Word(w) => w.clone(),
                _ => return Err(self.unexpected(&t, &format!("a {} option", sect.name()))),
            };
            let Some(kw) = keyword(&w) else {
                return Err(self.err_at(
                    t.line,
                    format!("unknown keyword '{w}' in {} section", sect.name()),
                ));
            };
            if kw.style == Style::Deprecated {
                self.expect_string("a value")?;
                self.expect_punct(';')?;
                continue;
            }
            if kw.section != Some(sect) {
                return Err(self.err_at(
                    t.line,
                    format!("unknown keyword '{w}' in {} section", sect.name()),
                ));
            }
            if kw.style == Style::Delegate {
                match w.as_str() {
                    "become-primary-on" => {
                        let mut names = Vec::new();
                        loop {
                            let n = self.next();
                            match n.tok {
                                Tok::Word(h) | Tok::Str(h) => names.push(h),
                                Tok::Punct(';') if !names.is_empty() => break,
                                _ => return Err(self.unexpected(&n, "a host name or ';'")),
                            }
                        }
                        res.become_primary_on = names;
                    }
                    "stacked-timeouts" => {
                        res.stacked_timeouts = true;
                        self.expect_punct(';')?;
                    }
                    _ if self.mode == Mode::Show => {
                        // discard-my-data: ignored when reading the kernel's view
                        let n = self.next();
                        match &n.tok {
                            Tok::Punct(';') => {}
                            Tok::Word(x) if x == "yes" || x == "no" => self.expect_punct(';')?,
                            _ => return Err(self.unexpected(&n, "yes | no | ;")),
                        }
                    }
                    _ => {
                        return Err(self.err_at(
                            t.line,
                            format!("'{w}' is not allowed in the configuration file"),
                        ))
                    }
                }
                continue;
            }
            opts.push(self.option_value(kw, t.line)?);
        }
    }
}

/// The minor of `/dev/drbdN`, or of an existing block device node of major
/// 147.
pub fn minor_of_device(dev: &str) -> Option<u32> {
    if let Some(rest) = dev.strip_prefix("/dev/drbd") {
        if is_int(rest) {
            return rest.parse().ok();
        }
    }
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(dev).ok()?;
    if !md.file_type().is_block_device() {
        return None;
    }
    let rdev = md.rdev();
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    if major == 147 {
        u32::try_from(minor).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut l = Loader::default();
        l.parse_text(
            text,
            FileName {
                display: "t.conf".into(),
                canonical: "/t.conf".into(),
            },
        )?;
        Ok(l.config)
    }

    const HOSTS: &str = "on a { device minor 0; disk /dev/x; meta-disk internal; address 10.0.0.1:7789; }\n\
                         on b { device minor 0; disk /dev/x; meta-disk internal; address 10.0.0.2:7789; }\n";

    #[test]
    fn parses_a_resource() {
        let c = parse(&format!(
            "resource r0 {{\n net {{ protocol c; allow-two-primaries; }}\n{HOSTS}}}"
        ))
        .unwrap();
        let r = &c.resources[0];
        assert_eq!(r.name, "r0");
        assert_eq!(
            r.net,
            vec![
                Opt::new("protocol", "C"),
                Opt::new("allow-two-primaries", "yes")
            ]
        );
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(
            r.hosts[1].address.as_ref().unwrap().to_arg(),
            "ipv4:10.0.0.2:7789"
        );
        assert_eq!(r.hosts[0].volumes[0].minor, Some(0));
        assert!(r.hosts[0].volumes[0].implicit);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(&format!("resource r0 {{\n net {{\n foo 1; }}\n{HOSTS}}}")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.conf:3: unknown keyword 'foo' in net section"
        );
    }

    #[test]
    fn show_output_is_read() {
        let show = "resource r0 {\n    options {\n    }\n    net {\n        cram-hmac-alg    \t\"sha1\";\n    }\n    _remote_host {\n        address\t\t\tipv4 10.0.0.2:7789;\n    }\n    _this_host {\n        address\t\t\tipv4 10.0.0.1:7789;\n        volume 0 {\n            device\t\t\tminor 0;\n            disk\t\t\t\"/dev/loop0\";\n            meta-disk\t\t\tinternal;\n            disk {\n                resync-rate     \t102400k; # bytes/second\n            }\n        }\n    }\n}\n";
        let r = parse_show(show, "r0").unwrap().unwrap();
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(r.hosts[1].kind, HostKind::ThisHost);
        assert_eq!(r.hosts[1].volumes[0].disk.as_deref(), Some("/dev/loop0"));
        assert_eq!(
            r.hosts[1].volumes[0].disk_options,
            vec![Opt::new("resync-rate", "102400k")]
        );
        assert!(parse_show("", "r0").unwrap().is_none());
    }
}
