//! `drbdadm dump`: the parsed configuration, normalised, in drbdadm-84's
//! layout (column widths, quoting and section order included).

use std::fmt::Write as _;

use crate::config::model::{
    Address, Config, Global, Host, MetaIndex, Opt, Resource, UsageCount, Volume,
    CMD_TIMEOUT_LONG_DEF, CMD_TIMEOUT_MEDIUM_DEF, CMD_TIMEOUT_SHORT_DEF,
};

/// drbd-utils' `esc`: quote a token that the config lexer would not read
/// back as one word.
pub fn esc(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".to_owned();
    }
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'));
    if plain && s.len() <= 80 {
        return s.to_owned();
    }
    let mut out = String::from('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

struct Out {
    text: String,
    indent: usize,
}

impl Out {
    fn pad(&self) -> String {
        " ".repeat(4 * self.indent)
    }

    /// printI
    fn line(&mut self, s: &str) {
        let pad = self.pad();
        let _ = writeln!(self.text, "{pad}{s}");
    }

    /// printA: the name left-aligned to column 24, the value right-aligned
    /// in at least 3 characters.
    fn attr(&mut self, name: &str, value: &str) {
        let pad = self.pad();
        let width = 24usize.saturating_sub(4 * self.indent);
        let _ = writeln!(self.text, "{pad}{name:<width$} {value:>3};");
    }

    fn options(&mut self, name: &str, opts: &[Opt]) {
        if opts.is_empty() {
            return;
        }
        self.line(&format!("{name} {{"));
        self.indent += 1;
        for o in opts {
            match o.value() {
                Some(v) if o.escaped => self.attr(&o.name, v),
                Some(v) => self.attr(&o.name, &esc(v)),
                None => self.line(&format!("{};", o.name)),
            }
        }
        self.indent -= 1;
        self.line("}");
    }

    fn address(&mut self, name: &str, a: &Address) {
        if a.af == "ipv6" {
            self.line(&format!("{name:<16} {} [{}]:{};", a.af, a.addr, a.port));
        } else {
            self.line(&format!("{name:<16} {} {}:{};", a.af, a.addr, a.port));
        }
    }

    fn volume(&mut self, v: &Volume) {
        if !v.implicit {
            self.line(&format!("volume {} {{", v.vnr));
            self.indent += 1;
        }
        let remote_only = v.minor.is_none()
            && v.device.is_none()
            && v.disk.is_none()
            && v.meta_disk.is_none()
            && v.meta_index.is_none();
        if !remote_only {
            self.options("disk", &v.disk_options);
            let width = 19usize.saturating_sub(4 * self.indent);
            let dev = v
                .device
                .as_deref()
                .map(|d| format!("{} ", esc(d)))
                .unwrap_or_default();
            let minor = v.minor.map_or(-1i64, i64::from);
            self.line(&format!("device{:width$}{dev}minor {minor};", ""));
            self.attr("disk", &esc(v.disk()));
            match &v.meta_index {
                Some(MetaIndex::Flexible) => {
                    self.line(&format!("{:<16} {};", "meta-disk", esc(v.meta_disk())))
                }
                Some(MetaIndex::Internal) => self.attr("meta-disk", "internal"),
                Some(MetaIndex::Index(i)) => self.line(&format!(
                    "{:<16} {} [{i}];",
                    "meta-disk",
                    esc(v.meta_disk())
                )),
                None => {}
            }
        }
        if !v.implicit {
            self.indent -= 1;
            self.line("}");
        }
    }

    fn host(&mut self, h: &Host) {
        self.line(&format!("on {} {{", h.names_str()));
        self.indent += 1;
        self.options("options", &h.res_options);
        for v in &h.volumes {
            self.volume(v);
        }
        if let Some(a) = &h.address {
            self.address("address", a);
        }
        self.indent -= 1;
        self.line("}");
    }

    fn sections(&mut self, res: &Resource) {
        let startup = fake_startup_options(res);
        self.options("options", &res.res_options);
        self.options("net", &res.net);
        self.options("disk", &res.disk);
        self.options("startup", &startup);
        self.options("handlers", &res.handlers);
    }
}

/// The startup options as dump shows them: stacked-timeouts and
/// become-primary-on are appended.
fn fake_startup_options(res: &Resource) -> Vec<Opt> {
    let mut s = res.startup.clone();
    if res.stacked_timeouts {
        s.push(Opt {
            name: "stacked-timeouts".into(),
            value: None,
            escaped: false,
        });
    }
    if !res.become_primary_on.is_empty() {
        s.push(Opt {
            name: "become-primary-on".into(),
            value: Some(res.become_primary_on.join(" ")),
            escaped: true,
        });
    }
    s
}

fn global(out: &mut Out, g: &Global, verbose: bool) {
    if g.minor_count == 0
        && !g.disable_ip_verification
        && g.dialog_refresh == 1
        && g.usage_count == UsageCount::Ask
        && !verbose
    {
        return;
    }
    out.line("global {");
    out.indent += 1;
    if g.disable_ip_verification {
        out.line("disable-ip-verification;");
    }
    if g.minor_count != 0 {
        out.line(&format!("minor-count {};", g.minor_count));
    }
    if g.dialog_refresh != 1 {
        out.line(&format!("dialog-refresh {};", g.dialog_refresh));
    }
    if g.usage_count != UsageCount::Ask {
        out.line(&format!("usage-count {};", g.usage_count.as_str()));
    }
    if g.cmd_timeout_short != CMD_TIMEOUT_SHORT_DEF {
        out.line(&format!("cmd-timeout-short {};", g.cmd_timeout_short));
    }
    if g.cmd_timeout_medium != CMD_TIMEOUT_MEDIUM_DEF {
        out.line(&format!("cmd-timeout-medium {};", g.cmd_timeout_medium));
    }
    if g.cmd_timeout_long != CMD_TIMEOUT_LONG_DEF {
        out.line(&format!("cmd-timeout-long {};", g.cmd_timeout_long));
    }
    out.indent -= 1;
    out.line("}");
    out.text.push('\n');
}

/// The header of `dump all`: the file name, global and common sections.
pub fn header(config: &Config, verbose: bool) -> String {
    let mut out = Out {
        text: format!("# {}\n", config.config_file),
        indent: 0,
    };
    global(&mut out, &config.global, verbose);
    if let Some(common) = &config.common {
        out.line("common {");
        out.indent += 1;
        out.sections(common);
        out.indent -= 1;
        out.text.push_str("}\n\n");
    }
    out.text
}

/// One resource.
pub fn resource(res: &Resource, nodename: &str) -> String {
    let mut out = Out {
        text: String::new(),
        indent: 0,
    };
    out.line(&format!(
        "# resource {} on {nodename}: {}, not stacked",
        esc(&res.name),
        if res.ignore { "ignored" } else { "not ignored" }
    ));
    out.line(&format!(
        "# defined at {}:{}",
        res.config_file, res.start_line
    ));
    out.line(&format!("resource {} {{", esc(&res.name)));
    out.indent += 1;
    for h in &res.hosts {
        out.host(h);
    }
    out.sections(res);
    out.indent -= 1;
    out.text.push_str("}\n\n");
    out.text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_quotes_what_the_lexer_splits() {
        assert_eq!(esc("sha1"), "sha1");
        assert_eq!(esc("/usr/lib/drbd/x.sh"), "/usr/lib/drbd/x.sh");
        assert_eq!(esc("my secret"), "\"my secret\"");
        assert_eq!(esc("a\"b"), "\"a\\\"b\"");
        assert_eq!(esc(""), "\"\"");
    }

    #[test]
    fn attributes_align_like_drbdadm() {
        let mut o = Out {
            text: String::new(),
            indent: 2,
        };
        o.attr("protocol", "C");
        o.attr("allow-two-primaries", "yes");
        o.indent = 3;
        o.attr("resync-rate", "100M");
        assert_eq!(
            o.text,
            "        protocol           C;\n        allow-two-primaries yes;\n            resync-rate  100M;\n"
        );
    }
}
