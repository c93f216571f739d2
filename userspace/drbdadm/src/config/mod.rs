//! drbd.conf: lexer, parser, model, and the post-processing drbd-utils
//! applies after parsing (choosing this node's host section and the peer,
//! inheritance common -> resource -> volume, resync-after and
//! discard-node-* conversion, validation).

pub mod glob;
pub mod lexer;
pub mod model;
pub mod options;
pub mod parser;

use std::io::IsTerminal;

use model::{expand_opts, find_opt, Config, HostKind, Resource};

/// A configuration error, located in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {msg}")]
pub struct ConfigError {
    pub file: String,
    pub line: u32,
    pub msg: String,
}

impl ConfigError {
    fn in_resource(res: &Resource, msg: String) -> Self {
        ConfigError {
            file: res.config_file.clone(),
            line: res.start_line,
            msg: format!("in resource {}:\n\t{msg}", res.name),
        }
    }
}

/// Finds this node's host section in every resource; resources without one
/// are ignored on this node.
pub fn set_me(config: &mut Config, nodename: &str) -> Result<(), ConfigError> {
    for res in &mut config.resources {
        res.me = None;
        for (i, h) in res.hosts.iter().enumerate() {
            let matched = h.kind != HostKind::RemoteHost
                && (h.names.iter().any(|n| n == nodename)
                    || h.names.first().is_some_and(|n| n == "_this_host"));
            if !matched {
                continue;
            }
            if let Some(prev) = res.me.and_then(|p| res.hosts.get(p)) {
                return Err(ConfigError {
                    file: res.config_file.clone(),
                    line: h.line,
                    msg: format!(
                        "in resource {}, on {} {{ ... }} ... on {} {{ ... }}:\n\tThere are multiple host sections for this node.",
                        res.name,
                        prev.names_str(),
                        h.names_str()
                    ),
                });
            }
            res.me = Some(i);
        }
        res.ignore = res.me.is_none();
    }
    Ok(())
}

/// Chooses the peer's host section (`--peer` picks one of several).
pub fn set_peer(
    res: &mut Resource,
    required: bool,
    connect_to: Option<&str>,
) -> Result<(), ConfigError> {
    let Some(me) = res.me else {
        return Ok(());
    };
    if res.peer.is_some() {
        return Ok(());
    }
    match res.hosts.len() {
        0 | 1 => {
            if required {
                return Err(ConfigError::in_resource(
                    res,
                    "Missing section 'on <PEER> { ... }'.".into(),
                ));
            }
        }
        2 => res.peer = Some(1 - me.min(1)),
        _ => {
            let Some(want) = connect_to else {
                if required {
                    return Err(ConfigError::in_resource(
                        res,
                        "There are multiple host sections for the peer node.\n\tUse the --peer option to select which peer section to use.".into(),
                    ));
                }
                return Ok(());
            };
            let matches: Vec<usize> = res
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.names.iter().any(|n| n == want))
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [i] if *i == me => {
                    return Err(ConfigError {
                        file: res.config_file.clone(),
                        line: res.start_line,
                        msg: format!(
                        "in resource {}\n\tInvoked with --peer '{want}', but that matches myself!",
                        res.name
                    ),
                    })
                }
                [i] => res.peer = Some(*i),
                [] if required => {
                    return Err(ConfigError::in_resource(
                        res,
                        format!("No host ('on' or 'floating') section matches --peer '{want}'"),
                    ))
                }
                [] => {}
                _ => {
                    return Err(ConfigError::in_resource(
                        res,
                        format!("Invoked with --peer '{want}', but that matches multiple times!"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// drbd-utils' `expand_common`: device names default to /dev/drbdN, the
/// common section's options go to every resource, resource disk options to
/// every volume, resource-level volume disk options to the host volumes.
pub fn expand_common(config: &mut Config) {
    for res in &mut config.resources {
        for h in &mut res.hosts {
            for v in &mut h.volumes {
                if v.device.is_none() {
                    v.device = Some(format!("/dev/drbd{}", v.minor()));
                }
            }
        }
    }
    if let Some(common) = &config.common {
        for res in &mut config.resources {
            expand_opts(&common.net, &mut res.net);
            expand_opts(&common.disk, &mut res.disk);
            expand_opts(&common.startup, &mut res.startup);
            expand_opts(&common.handlers, &mut res.handlers);
            expand_opts(&common.res_options, &mut res.res_options);
            if common.stacked_timeouts {
                res.stacked_timeouts = true;
            }
            if res.become_primary_on.is_empty() {
                res.become_primary_on.clone_from(&common.become_primary_on);
            }
        }
    }
    for res in &mut config.resources {
        let res_disk = res.disk.clone();
        for h in &mut res.hosts {
            for v in &mut h.volumes {
                expand_opts(&res_disk, &mut v.disk_options);
            }
        }
    }
    for res in &mut config.resources {
        let res_vols = res.volumes.clone();
        for rv in &res_vols {
            for h in &mut res.hosts {
                if let Some(hv) = h.volumes.iter_mut().find(|v| v.vnr == rv.vnr) {
                    expand_opts(&rv.disk_options, &mut hv.disk_options);
                }
            }
        }
    }
}

fn no_tty() -> bool {
    !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal()
}

fn res_name_of(value: &str) -> &str {
    value.split('/').next().unwrap_or(value)
}

/// drbd-utils' `validate_resource` for every resource, then (unless
/// dumping) the resync-after and discard-node-* conversions.
pub fn validate(
    config: &mut Config,
    nodename: &str,
    convert: bool,
    connect_to: Option<&str>,
) -> Result<(), ConfigError> {
    let known: Vec<(String, bool)> = config
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.ignore))
        .collect();
    for i in 0..config.resources.len() {
        let res = &mut config.resources[i];
        // resync-after must name a known resource
        let mut bad = None;
        res.disk.retain(|o| {
            if o.name != "resync-after" || bad.is_some() {
                return true;
            }
            let target = res_name_of(o.value().unwrap_or(""));
            match known.iter().find(|(n, _)| n == target) {
                Some((_, false)) => true,
                found => {
                    let msg = format!(
                        "resource '{}' mentioned in 'resync-after' option is not known{}.",
                        o.value().unwrap_or(""),
                        if found.is_some() { " on this host" } else { "" }
                    );
                    if no_tty() {
                        eprintln!("{}", msg);
                        false
                    } else {
                        bad = Some(msg);
                        true
                    }
                }
            }
        });
        if let Some(msg) = bad {
            return Err(ConfigError::in_resource(res, msg));
        }
        if res.ignore {
            continue;
        }
        // drbd-utils reports a --peer that does not fit, and goes on
        if let Err(e) = set_peer(res, false, connect_to) {
            eprintln!("{e}");
        }
        if let Some(v) = find_opt(&res.net, "after-sb-0pri").and_then(|o| o.value()) {
            if let Some(node) = v.strip_prefix("discard-node-") {
                let known_node =
                    |h: Option<&model::Host>| h.is_some_and(|h| h.names.iter().any(|n| n == node));
                if res.peer().is_some() && !known_node(res.peer()) && !known_node(res.me()) {
                    let msg = format!(
                        "the nodename in the '{v}' option is not known.\n\tvalid nodenames are: '{} {}'.",
                        res.me().map(|h| h.names_str()).unwrap_or_default(),
                        res.peer().map(|h| h.names_str()).unwrap_or_default()
                    );
                    return Err(ConfigError::in_resource(res, msg));
                }
            }
        }
        if res.become_primary_on.iter().any(|n| n == "both")
            && find_opt(&res.net, "allow-two-primaries").is_none()
        {
            return Err(ConfigError {
                file: res.config_file.clone(),
                line: res.start_line,
                msg: format!(
                    "in resource {}:\nbecome-primary-on is set to both, but allow-two-primaries is not set.",
                    res.name
                ),
            });
        }
        if res.peer.is_some() {
            for n in &res.become_primary_on {
                let named = res.hosts.iter().any(|h| h.names.contains(n));
                if !named && n != "both" {
                    return Err(ConfigError::in_resource(
                        res,
                        format!("become-primary-on contains '{n}', which is not named with the 'on' sections."),
                    ));
                }
            }
        }
        if convert {
            convert_after_option(config, i)?;
            convert_discard_opt(&mut config.resources[i], nodename);
        }
    }
    Ok(())
}

/// resync-after names a resource (or resource/volume); drbdsetup wants
/// that volume's minor.
fn convert_after_option(config: &mut Config, idx: usize) -> Result<(), ConfigError> {
    // (name, ignored, [(volume number, minor)])
    type Known = (String, bool, Vec<(u32, u32)>);
    let snapshot: Vec<Known> = config
        .resources
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.ignore,
                r.my_volumes().iter().map(|v| (v.vnr, v.minor())).collect(),
            )
        })
        .collect();
    let res = &mut config.resources[idx];
    let (file, line, name) = (res.config_file.clone(), res.start_line, res.name.clone());
    let tty = !no_tty();
    for h in &mut res.hosts {
        for v in &mut h.volumes {
            let mut err = None;
            v.disk_options.retain_mut(|o| {
                if o.name != "resync-after" || err.is_some() {
                    return true;
                }
                let value = o.value().unwrap_or("").to_owned();
                let (target, vnr) = match value.split_once('/') {
                    Some((r, n)) => (r, n.parse::<u32>().ok()),
                    None => (value.as_str(), None),
                };
                let found = snapshot.iter().find(|(n, _, _)| n == target);
                let minor = match (found, vnr) {
                    (Some((_, false, vols)), Some(n)) => vols.iter().find(|(vn, _)| *vn == n).map(|(_, m)| *m),
                    (Some((_, false, vols)), None) if vols.len() > 1 => {
                        err = Some(format!(
                            "resync-after contains '{value}', which is ambiguous, since it contains {} volumes",
                            vols.len()
                        ));
                        return true;
                    }
                    (Some((_, false, vols)), None) => vols.first().map(|(_, m)| *m),
                    _ => None,
                };
                match minor {
                    Some(m) => {
                        o.value = Some(m.to_string());
                        true
                    }
                    None => {
                        let msg = format!(
                            "resource '{value}' mentioned in 'resync-after' option is not known{}.",
                            if found.is_some() { " on this host" } else { "" }
                        );
                        if tty {
                            err = Some(msg);
                            true
                        } else {
                            eprintln!("{file}:{line}: in resource {name}:\n\t{msg}");
                            false
                        }
                    }
                }
            });
            if let Some(msg) = err {
                return Err(ConfigError {
                    file,
                    line,
                    msg: format!("in resource {name}:\n\t{msg}"),
                });
            }
        }
    }
    Ok(())
}

/// after-sb-0pri discard-node-NAME becomes discard-local on NAME and
/// discard-remote elsewhere.
fn convert_discard_opt(res: &mut Resource, nodename: &str) {
    if let Some(o) = res.net.iter_mut().find(|o| o.name == "after-sb-0pri") {
        if let Some(node) = o.value().and_then(|v| v.strip_prefix("discard-node-")) {
            let v = if node == nodename {
                "discard-local"
            } else {
                "discard-remote"
            };
            o.value = Some(v.to_owned());
        }
    }
}
