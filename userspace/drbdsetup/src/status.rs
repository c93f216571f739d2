//! Status of resources and devices from GET_STATUS replies, printed in a
//! drbd-9-like text layout or as JSON.

use std::fmt::Write as _;

use drbd_include::genl::{Reply, State, MINOR_ALL};
use serde::Serialize;

/// Text for a state field the kernel sent a value for that 8.4 lacks.
const UNKNOWN: &str = "Unknown";

/// One device (minor), as `status --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// Resource name.
    pub resource: String,
    /// Device minor.
    pub minor: u32,
    /// Volume number within the resource.
    pub volume: Option<u32>,
    /// Own role: Primary, Secondary, Unknown.
    pub role: String,
    /// Connection state, e.g. StandAlone.
    pub connection: String,
    /// Own disk state, e.g. Diskless, UpToDate.
    pub disk: String,
    /// Size of the device in 512-byte sectors.
    pub capacity_sectors: u64,
    /// Backing device path, when attached.
    pub backing_dev: Option<String>,
}

/// A resource and its devices, in minor order as the kernel sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceStatus {
    /// Resource name.
    pub name: String,
    /// Its devices; empty for a resource without volumes.
    pub devices: Vec<DeviceStatus>,
}

/// One GET_STATUS reply: the resource it is about, and the device unless
/// the reply describes a resource without volumes (minor 0xFFFFFFFF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Resource name.
    pub resource: String,
    /// The device, if the reply is about one.
    pub device: Option<DeviceStatus>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads the resource and device a GET_STATUS reply describes.
pub fn entry_of(reply: &Reply<'_>) -> Entry {
    let ctx = reply.cfg_context.unwrap_or_default();
    let resource = ctx.resource_name.map(text).unwrap_or_default();
    let minor = reply.header.minor;
    if minor == MINOR_ALL {
        return Entry {
            resource,
            device: None,
        };
    }
    let state_info = reply.state_info.unwrap_or_default();
    let state = reply
        .state_info
        .and_then(|info| State::from_u32(info.current_state));
    let name = |f: fn(&State) -> &'static str| state.as_ref().map_or(UNKNOWN, f).to_owned();
    let device = DeviceStatus {
        resource: resource.clone(),
        minor,
        volume: ctx.volume,
        role: name(|s| s.role.name()),
        connection: name(|s| s.conn.name()),
        disk: name(|s| s.disk.name()),
        capacity_sectors: state_info.capacity,
        backing_dev: reply.disk_conf.map(|conf| text(conf.backing_dev)),
    };
    Entry {
        resource,
        device: Some(device),
    }
}

/// Groups entries by resource, keeping the order of first appearance.
pub fn group(entries: Vec<Entry>) -> Vec<ResourceStatus> {
    let mut resources: Vec<ResourceStatus> = Vec::new();
    for entry in entries {
        let index = match resources.iter().position(|r| r.name == entry.resource) {
            Some(index) => index,
            None => {
                resources.push(ResourceStatus {
                    name: entry.resource,
                    devices: Vec::new(),
                });
                resources.len().saturating_sub(1)
            }
        };
        if let (Some(resource), Some(device)) = (resources.get_mut(index), entry.device) {
            resource.devices.push(device);
        }
    }
    resources
}

/// The role of a resource: Primary if any volume is, else Secondary if any
/// is, else Unknown (DRBD 8.4's `conn_highest_role`).
pub fn resource_role(resource: &ResourceStatus) -> &'static str {
    let has = |role: &str| resource.devices.iter().any(|d| d.role == role);
    if has("Primary") {
        "Primary"
    } else if has("Secondary") {
        "Secondary"
    } else {
        UNKNOWN
    }
}

/// The text layout: per resource `<name> role:<Role>`, then one line per
/// device `  volume:<v> minor:<m> disk:<Disk>[ backing:<path>]`, then an
/// empty line. Nothing at all for no resources.
pub fn render_text(resources: &[ResourceStatus]) -> String {
    let mut out = String::new();
    for resource in resources {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{} role:{}", resource.name, resource_role(resource));
        for device in &resource.devices {
            let volume = device
                .volume
                .map_or_else(|| "-".to_owned(), |v| v.to_string());
            let _ = write!(
                out,
                "  volume:{volume} minor:{} disk:{}",
                device.minor, device.disk
            );
            if let Some(backing) = &device.backing_dev {
                let _ = write!(out, " backing:{backing}");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// A JSON array with one object per device, followed by a newline.
pub fn render_json(resources: &[ResourceStatus]) -> Result<String, serde_json::Error> {
    let devices: Vec<&DeviceStatus> = resources.iter().flat_map(|r| &r.devices).collect();
    let mut json = serde_json::to_string_pretty(&devices)?;
    json.push('\n');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{resource_only, state, status_reply};
    use drbd_include::genl::{parse_reply, DiskState, ReplyBuilder, Role, StateInfo};

    fn collect(messages: &[Vec<u8>]) -> Vec<ResourceStatus> {
        group(
            messages
                .iter()
                .map(|m| entry_of(&parse_reply(m).unwrap()))
                .collect(),
        )
    }

    fn sample() -> Vec<ResourceStatus> {
        collect(&[
            status_reply(
                "r0",
                0,
                0,
                state(Role::Secondary, DiskState::UpToDate),
                Some("/dev/vdb"),
            ),
            status_reply(
                "r0",
                1,
                1,
                state(Role::Secondary, DiskState::Diskless),
                None,
            ),
            status_reply(
                "r1",
                5,
                0,
                state(Role::Primary, DiskState::Inconsistent),
                Some("/dev/vdc"),
            ),
            resource_only("r2"),
        ])
    }

    #[test]
    fn text_layout() {
        let expected = "\
r0 role:Secondary
  volume:0 minor:0 disk:UpToDate backing:/dev/vdb
  volume:1 minor:1 disk:Diskless

r1 role:Primary
  volume:0 minor:5 disk:Inconsistent backing:/dev/vdc

r2 role:Unknown

";
        assert_eq!(render_text(&sample()), expected);
        assert_eq!(render_text(&[]), "");
    }

    #[test]
    fn json_layout() {
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&sample()).unwrap()).unwrap();
        let expected = serde_json::json!([
            {"resource": "r0", "minor": 0, "volume": 0, "role": "Secondary",
             "connection": "StandAlone", "disk": "UpToDate",
             "capacity_sectors": 204800, "backing_dev": "/dev/vdb"},
            {"resource": "r0", "minor": 1, "volume": 1, "role": "Secondary",
             "connection": "StandAlone", "disk": "Diskless",
             "capacity_sectors": 0, "backing_dev": null},
            {"resource": "r1", "minor": 5, "volume": 0, "role": "Primary",
             "connection": "StandAlone", "disk": "Inconsistent",
             "capacity_sectors": 204800, "backing_dev": "/dev/vdc"},
        ]);
        assert_eq!(json, expected);
        assert_eq!(render_json(&[]).unwrap(), "[]\n");
    }

    #[test]
    fn odd_replies() {
        // A state word 8.4 cannot have, and no STATE_INFO at all.
        let mut buf = [0u8; 512];
        let mut reply = ReplyBuilder::new(&mut buf, 3).unwrap();
        reply
            .put_state_info(&StateInfo {
                current_state: u32::MAX,
                ..StateInfo::default()
            })
            .unwrap();
        let entry = entry_of(&parse_reply(reply.bytes()).unwrap());
        let device = entry.device.unwrap();
        assert_eq!(
            (device.role.as_str(), device.disk.as_str()),
            ("Unknown", "Unknown")
        );
        assert_eq!((entry.resource.as_str(), device.volume), ("", None));

        let bare = ReplyBuilder::new(&mut buf, 4).unwrap().bytes().to_vec();
        let device = entry_of(&parse_reply(&bare).unwrap()).device.unwrap();
        assert_eq!((device.minor, device.connection.as_str()), (4, "Unknown"));
        let text = render_text(&group(vec![Entry {
            resource: "x".into(),
            device: Some(device),
        }]));
        assert_eq!(text, "x role:Unknown\n  volume:- minor:4 disk:Unknown\n\n");
    }
}
