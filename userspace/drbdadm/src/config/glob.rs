//! `include` patterns: shell globs (`*`, `?`, `[...]`) resolved relative to
//! the including file's directory, sorted, hidden files only matched by a
//! pattern starting with a dot (like glob(3)).

use std::path::{Path, PathBuf};

/// Matches one path component against a glob pattern component.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    let Some((&first, rest)) = p.split_first() else {
        return n.is_empty();
    };
    match first {
        '*' => (0..=n.len()).any(|i| match_from(rest, &n[i..])),
        '?' => !n.is_empty() && match_from(rest, &n[1..]),
        '[' => {
            let Some((&c, nrest)) = n.split_first() else {
                return false;
            };
            match class(rest, c) {
                Some((true, after)) => match_from(after, nrest),
                Some((false, _)) => false,
                // no closing bracket: a literal '['
                None => c == '[' && match_from(rest, nrest),
            }
        }
        '\\' if !rest.is_empty() => {
            !n.is_empty() && n[0] == rest[0] && match_from(&rest[1..], &n[1..])
        }
        lit => !n.is_empty() && n[0] == lit && match_from(rest, &n[1..]),
    }
}

/// Evaluates a bracket expression (after the '['): whether `c` matches, and
/// the pattern after the closing ']'.
fn class(p: &[char], c: char) -> Option<(bool, &[char])> {
    let (negate, mut i) = match p.first() {
        Some('!') | Some('^') => (true, 1),
        _ => (false, 0),
    };
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((matched != negate, &p[i + 1..]));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expands `pattern` relative to `base`: returns (path to open, name as
/// drbdadm shows it, i.e. relative when the pattern is).
pub fn glob(base: &Path, pattern: &str) -> Vec<(PathBuf, String)> {
    let absolute = pattern.starts_with('/');
    let root = if absolute {
        PathBuf::from("/")
    } else {
        base.to_path_buf()
    };
    let mut found: Vec<(PathBuf, String)> = vec![(root, String::new())];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for (dir, shown) in &found {
            let join_shown = |name: &str| {
                if shown.is_empty() {
                    if absolute {
                        format!("/{name}")
                    } else {
                        name.to_owned()
                    }
                } else {
                    format!("{shown}/{name}")
                }
            };
            if has_magic(comp) {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|name| fnmatch(comp, name))
                    .collect();
                names.sort();
                for name in names {
                    let p = dir.join(&name);
                    if last || p.is_dir() {
                        next.push((p, join_shown(&name)));
                    }
                }
            } else {
                let p = dir.join(comp);
                if p.exists() {
                    next.push((p, join_shown(comp)));
                }
            }
        }
        found = next;
    }
    if comps.is_empty() {
        return Vec::new();
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_fnmatch() {
        assert!(fnmatch("*.res", "r0.res"));
        assert!(!fnmatch("*.res", "r0.conf"));
        assert!(!fnmatch("*.res", ".hidden.res"));
        assert!(fnmatch(".*.res", ".hidden.res"));
        assert!(fnmatch("r?.res", "r1.res"));
        assert!(fnmatch("r[0-2].res", "r1.res"));
        assert!(!fnmatch("r[!0-2].res", "r1.res"));
        assert!(fnmatch("global_common.conf", "global_common.conf"));
    }

    #[test]
    fn expands_relative_to_base() {
        let dir = std::env::temp_dir().join(format!("drbdadm-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        for f in ["b.res", "a.res", "c.txt"] {
            std::fs::write(dir.join("d").join(f), "").unwrap();
        }
        let got: Vec<String> = glob(&dir, "d/*.res").into_iter().map(|x| x.1).collect();
        assert_eq!(got, ["d/a.res", "d/b.res"]);
        assert!(glob(&dir, "d/none.res").is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
