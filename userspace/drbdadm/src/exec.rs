//! Running drbdsetup and drbdmeta, or printing their command lines
//! (`--dry-run`), the way drbdadm-84 does.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Exit code when a helper cannot be run.
pub const E_EXEC_ERROR: i32 = 20;

/// drbd-utils' `shell_escape`: a backslash before every character outside
/// `[%+\-./0-9:=@A-Z_a-z]`.
pub fn shell_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let clean = c.is_ascii_alphanumeric()
            || matches!(c, '%' | '+' | '-' | '.' | '/' | ':' | '=' | '@' | '_');
        if !clean {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The helper programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tools {
    pub drbdsetup: String,
    pub drbdmeta: String,
}

impl Tools {
    /// `explicit` (-s/-m) wins, then $DRBDSETUP/$DRBDMETA, then the program
    /// next to this executable, then the bare name (found in PATH).
    pub fn locate(explicit_setup: Option<String>, explicit_meta: Option<String>) -> Tools {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let find = |explicit: Option<String>, env: &str, name: &str| -> String {
            if let Some(e) = explicit {
                return e;
            }
            if let Some(v) = std::env::var_os(env).filter(|v| !v.is_empty()) {
                return v.to_string_lossy().into_owned();
            }
            if let Some(d) = &dir {
                let p: PathBuf = d.join(name);
                if is_executable(&p) {
                    return p.to_string_lossy().into_owned();
                }
            }
            name.to_owned()
        };
        Tools {
            drbdsetup: find(explicit_setup, "DRBDSETUP", "drbdsetup"),
            drbdmeta: find(explicit_meta, "DRBDMETA", "drbdmeta"),
        }
    }
}

/// What to do with the helper's stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stderr {
    Inherit,
    Suppress,
    /// Capture it (returned to the caller, who decides whether to show it).
    Capture,
}

/// Runs helpers, or prints them in dry-run mode.
#[derive(Clone, Debug, Default)]
pub struct Runner {
    pub dry_run: bool,
    pub verbose: bool,
    /// `--sh-varname`: print `NAME=<resource>` before each command.
    pub sh_varname: Option<String>,
}

/// A helper's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stderr: String,
}

impl Runner {
    fn announce(&self, argv: &[String], res_name: &str) {
        let mut out = std::io::stdout().lock();
        if let Some(var) = &self.sh_varname {
            let _ = writeln!(out, "{var}={}", shell_escape(res_name));
        }
        let line: Vec<String> = argv.iter().map(|a| shell_escape(a)).collect();
        // A closed stdout leaves nothing to report to.
        let _ = writeln!(out, "{}", line.join(" "));
        let _ = out.flush();
    }

    /// Runs `argv`; returns its exit code (0 in dry-run mode).
    pub fn run(&self, argv: &[String], res_name: &str) -> i32 {
        self.run_with(argv, res_name, Stderr::Inherit).code
    }

    pub fn run_with(&self, argv: &[String], res_name: &str, stderr: Stderr) -> Outcome {
        self.run_full(argv, res_name, stderr, &[])
    }

    /// Runs `argv` with extra environment variables.
    pub fn run_env(&self, argv: &[String], res_name: &str, env: &[(String, String)]) -> i32 {
        self.run_full(argv, res_name, Stderr::Inherit, env).code
    }

    fn run_full(
        &self,
        argv: &[String],
        res_name: &str,
        stderr: Stderr,
        env: &[(String, String)],
    ) -> Outcome {
        if self.dry_run || self.verbose {
            self.announce(argv, res_name);
        }
        if self.dry_run {
            return Outcome::default();
        }
        let Some((prog, args)) = argv.split_first() else {
            return Outcome {
                code: E_EXEC_ERROR,
                stderr: String::new(),
            };
        };
        let _ = std::io::stderr().flush();
        let mut cmd = Command::new(prog);
        cmd.args(args).env("DRBD_RESOURCE", res_name);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.stderr(match stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Suppress => Stdio::null(),
            Stderr::Capture => Stdio::piped(),
        });
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("drbdadm: can not exec {prog}: {e}");
                return Outcome {
                    code: E_EXEC_ERROR,
                    stderr: String::new(),
                };
            }
        };
        let mut captured = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut captured);
        }
        let code = match child.wait() {
            Ok(status) => status.code().unwrap_or(E_EXEC_ERROR),
            Err(_) => E_EXEC_ERROR,
        };
        if code >= 10 && stderr == Stderr::Inherit {
            eprintln!(
                "Command '{}' terminated with exit code {code}",
                argv.join(" ")
            );
        }
        Outcome {
            code,
            stderr: captured,
        }
    }

    /// Runs `argv` (even in dry-run mode: it only reads) and returns its
    /// stdout; stderr is discarded. None if it could not be run.
    pub fn query(&self, argv: &[String]) -> Option<String> {
        let (prog, args) = argv.split_first()?;
        let out = Command::new(prog)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_drbd_utils() {
        assert_eq!(shell_escape("my secret"), "my\\ secret");
        assert_eq!(shell_escape("ipv4:10.0.0.1:7789"), "ipv4:10.0.0.1:7789");
        assert_eq!(shell_escape("--x=a\"b"), "--x=a\\\"b");
        assert_eq!(shell_escape("ipv6:[::1]:7789"), "ipv6:\\[::1\\]:7789");
    }

    #[test]
    fn dry_run_does_not_execute() {
        let r = Runner {
            dry_run: true,
            ..Default::default()
        };
        assert_eq!(r.run(&["/nonexistent/x".into()], "r0"), 0);
    }

    #[test]
    fn reports_exit_codes() {
        let r = Runner::default();
        assert_eq!(r.run(&["sh".into(), "-c".into(), "exit 3".into()], "r0"), 3);
        assert_eq!(r.run(&["/nonexistent/x".into()], "r0"), E_EXEC_ERROR);
        let o = r.run_with(
            &["sh".into(), "-c".into(), "echo oops >&2; exit 11".into()],
            "r0",
            Stderr::Capture,
        );
        assert_eq!(
            o,
            Outcome {
                code: 11,
                stderr: "oops\n".into()
            }
        );
        assert_eq!(
            r.query(&["echo".into(), "hi".into()]).as_deref(),
            Some("hi\n")
        );
    }
}
