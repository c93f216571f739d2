//! Generic netlink request parsing as the kernel module does it.
#![no_main]

use drbd_include::genl::parse_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = parse_request(data) {
        let _ = (req.minor(), req.set_defaults(), req.cfg_context_raw());
        let _ = req.cfg_context();
        let _ = req.disk_conf();
        let _ = req.resource_opts(drbd_include::genl::ResourceOpts::default());
        let _ = req.detach_parms();
        let _ = req.set_role_parms();
        let _ = req.disconnect_parms();
    }
});
