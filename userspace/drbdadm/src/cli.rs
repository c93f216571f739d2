//! drbdadm's command line, parsed the way getopt_long does for drbdadm-84:
//! options may appear anywhere (before or after the command and resource
//! names), long options may be abbreviated, short ones bundled, and the
//! drbdsetup options of every command (`--force`, `--clear-bitmap`,
//! `--discard-my-data`, ...) are accepted and passed on to drbdsetup.
//! Words after `--` that are not the command are passed to the backend
//! verbatim (`drbdadm -- --overwrite-data-of-peer primary r0`).
//!
//! clap is not used: its derive model cannot express per-command option
//! sets whose order must be kept, nor getopt's permutation with `--`.

use crate::config::options;

/// A drbdsetup/drbdmeta option given on drbdadm's command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupOption {
    /// Given after `--` or with -W: passed on without checking.
    pub explicit: bool,
    pub option: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cli {
    pub dry_run: u32,
    pub verbose: u32,
    pub stacked: bool,
    pub config_file: Option<String>,
    pub config_test: Option<String>,
    pub drbdsetup: Option<String>,
    pub drbdmeta: Option<String>,
    pub sh_varname: Option<String>,
    pub peer: Option<String>,
    pub version: bool,
    pub help: bool,
    pub setup_options: Vec<SetupOption>,
    pub command: Option<String>,
    /// Resource names (or `all`, `res/vnr`, `minor-N`).
    pub args: Vec<String>,
}

/// Whether an option takes an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

struct LongOpt {
    name: &'static str,
    arg: Arg,
    /// The short option letter, or '\0' for a drbdsetup option.
    short: char,
}

const GENERAL: &[LongOpt] = &[
    LongOpt {
        name: "stacked",
        arg: Arg::None,
        short: 'S',
    },
    LongOpt {
        name: "dry-run",
        arg: Arg::None,
        short: 'd',
    },
    LongOpt {
        name: "verbose",
        arg: Arg::None,
        short: 'v',
    },
    LongOpt {
        name: "config-file",
        arg: Arg::Required,
        short: 'c',
    },
    LongOpt {
        name: "config-to-test",
        arg: Arg::Required,
        short: 't',
    },
    LongOpt {
        name: "drbdsetup",
        arg: Arg::Required,
        short: 's',
    },
    LongOpt {
        name: "drbdmeta",
        arg: Arg::Required,
        short: 'm',
    },
    LongOpt {
        name: "drbd-proxy-ctl",
        arg: Arg::Required,
        short: 'p',
    },
    LongOpt {
        name: "sh-varname",
        arg: Arg::Required,
        short: 'n',
    },
    LongOpt {
        name: "peer",
        arg: Arg::Required,
        short: 'P',
    },
    LongOpt {
        name: "version",
        arg: Arg::None,
        short: 'V',
    },
    LongOpt {
        name: "setup-option",
        arg: Arg::Required,
        short: 'W',
    },
    LongOpt {
        name: "help",
        arg: Arg::None,
        short: 'h',
    },
];

fn all_long_options() -> Vec<LongOpt> {
    let mut v: Vec<LongOpt> = GENERAL
        .iter()
        .map(|o| LongOpt {
            name: o.name,
            arg: o.arg,
            short: o.short,
        })
        .collect();
    for name in options::all_command_option_names() {
        let arg = if options::option_argument_optional(name) {
            Arg::Optional
        } else {
            Arg::Required
        };
        v.push(LongOpt {
            name,
            arg,
            short: '\0',
        });
    }
    v
}

/// A usage error; `help_for` names the command for "try 'drbdadm help X'".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    pub msg: String,
    pub help_for: Option<String>,
    pub show_try: bool,
}

impl Cli {
    /// Parses `args` (without the program name). `is_command` tells which
    /// words are drbdadm commands.
    pub fn parse(args: &[String], is_command: impl Fn(&str) -> bool) -> Result<Cli, UsageError> {
        let longs = all_long_options();
        let mut cli = Cli::default();
        let mut words: Vec<String> = Vec::new();
        let mut after_dashdash: Vec<String> = Vec::new();
        let mut i = 0;
        let err = |msg: String| UsageError {
            msg,
            help_for: None,
            show_try: true,
        };
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if a == "--" {
                after_dashdash.extend(args[i..].iter().cloned());
                break;
            }
            if let Some(body) = a.strip_prefix("--") {
                let (name, inline) = match body.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (body, None),
                };
                let exact = longs.iter().position(|o| o.name == name);
                let idx = match exact {
                    Some(i) => i,
                    None => {
                        let cands: Vec<usize> = (0..longs.len())
                            .filter(|&i| longs[i].name.starts_with(name))
                            .collect();
                        match cands.as_slice() {
                            [one] => *one,
                            [] => return Err(err(format!("unrecognized option '--{name}'"))),
                            _ => return Err(err(format!("option '--{name}' is ambiguous"))),
                        }
                    }
                };
                let opt = &longs[idx];
                let value = match (opt.arg, inline) {
                    (Arg::None, Some(_)) => {
                        return Err(err(format!(
                            "option '--{}' doesn't allow an argument",
                            opt.name
                        )))
                    }
                    (Arg::Required, None) => {
                        if i < args.len() {
                            i += 1;
                            Some(args[i - 1].clone())
                        } else {
                            return Err(err(format!(
                                "option '--{}' requires an argument",
                                opt.name
                            )));
                        }
                    }
                    (_, v) => v,
                };
                cli.apply(opt, value);
                continue;
            }
            if a.len() > 1 && a.starts_with('-') {
                let chars: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < chars.len() {
                    let c = chars[j];
                    j += 1;
                    let Some(opt) = longs.iter().find(|o| o.short == c && c != '\0') else {
                        return Err(err(format!("invalid option -- '{c}'")));
                    };
                    let value = if opt.arg == Arg::Required {
                        if j < chars.len() {
                            let v: String = chars[j..].iter().collect();
                            j = chars.len();
                            Some(v)
                        } else if i < args.len() {
                            i += 1;
                            Some(args[i - 1].clone())
                        } else {
                            return Err(err(format!("option requires an argument -- '{c}'")));
                        }
                    } else {
                        None
                    };
                    cli.apply(opt, value);
                }
                continue;
            }
            words.push(a.clone());
        }
        words.extend(after_dashdash);
        for w in words {
            if cli.command.is_some() {
                cli.args.push(w);
            } else if w == "help" {
                cli.help = true;
            } else if is_command(&w) {
                cli.command = Some(w);
            } else {
                // discouraged, but drbdadm-84 passes such words to drbdsetup
                cli.setup_options.push(SetupOption {
                    explicit: true,
                    option: w,
                });
            }
        }
        Ok(cli)
    }

    fn apply(&mut self, opt: &LongOpt, value: Option<String>) {
        match opt.short {
            'S' => self.stacked = true,
            'd' => self.dry_run += 1,
            'v' => self.verbose += 1,
            'c' => self.config_file = value,
            't' => self.config_test = value,
            's' => self.drbdsetup = value,
            'm' => self.drbdmeta = value,
            'p' => {}
            'n' => {
                let ok = value
                    .as_deref()
                    .is_some_and(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                if ok {
                    self.sh_varname = value;
                } else {
                    eprintln!(
                        "ignored --sh-varname={}: contains suspect characters, allowed set is [a-zA-Z0-9_]",
                        value.unwrap_or_default()
                    );
                }
            }
            'P' => self.peer = value,
            'V' => self.version = true,
            'W' => self.setup_options.push(SetupOption {
                explicit: true,
                option: value.unwrap_or_default(),
            }),
            'h' => self.help = true,
            _ => self.setup_options.push(SetupOption {
                explicit: false,
                option: match value {
                    Some(v) => format!("--{}={v}", opt.name),
                    None => format!("--{}", opt.name),
                },
            }),
        }
    }

    /// Only the current command's drbdsetup options may be given (anything
    /// goes for create-md).
    pub fn check_setup_options(&self, cmd: &str) -> Result<(), UsageError> {
        let allowed = options::command_options(cmd);
        for o in self.setup_options.iter().filter(|o| !o.explicit) {
            let name = o.option.trim_start_matches("--");
            let name = name.split('=').next().unwrap_or(name);
            if !allowed.contains(&name) && cmd != "create-md" {
                return Err(UsageError {
                    msg: format!("unrecognized option '--{name}'"),
                    help_for: Some(cmd.to_owned()),
                    show_try: true,
                });
            }
        }
        Ok(())
    }

    pub fn setup_option_strings(&self) -> Vec<String> {
        self.setup_options
            .iter()
            .map(|o| o.option.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Cli, UsageError> {
        let args: Vec<String> = s.split_whitespace().map(String::from).collect();
        Cli::parse(&args, |w| matches!(w, "up" | "primary" | "adjust" | "dump"))
    }

    #[test]
    fn options_anywhere() {
        let c = parse("-c /x.conf primary --force r0 -d").unwrap();
        assert_eq!(c.config_file.as_deref(), Some("/x.conf"));
        assert_eq!(c.command.as_deref(), Some("primary"));
        assert_eq!(c.args, ["r0"]);
        assert_eq!(c.dry_run, 1);
        assert_eq!(c.setup_option_strings(), ["--force"]);
        assert!(c.check_setup_options("primary").is_ok());
        assert!(c.check_setup_options("up").is_err());
    }

    #[test]
    fn bundles_abbreviations_and_backend_options() {
        let c = parse("-dvc/x.conf --dry -- --overwrite-data-of-peer primary r0").unwrap();
        assert_eq!(c.dry_run, 2);
        assert_eq!(c.verbose, 1);
        assert_eq!(c.config_file.as_deref(), Some("/x.conf"));
        assert_eq!(
            c.setup_options,
            [SetupOption {
                explicit: true,
                option: "--overwrite-data-of-peer".into()
            }]
        );
        assert_eq!(c.command.as_deref(), Some("primary"));
    }

    #[test]
    fn optional_and_required_arguments() {
        let c = parse("adjust --al-extents=3389 --discard-my-data --peer beta r0").unwrap();
        assert_eq!(
            c.setup_option_strings(),
            ["--al-extents=3389", "--discard-my-data"]
        );
        assert_eq!(c.peer.as_deref(), Some("beta"));
        assert!(parse("up --frob r0")
            .unwrap_err()
            .msg
            .contains("unrecognized option '--frob'"));
        assert!(parse("up -x").is_err());
        assert!(parse("up -c").is_err());
    }
}
