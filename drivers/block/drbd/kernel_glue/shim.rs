//! Declarations of the C shim (`drbd_shim.h`) and of the Rust callbacks the
//! shim calls back into (`rdrbd_rs_*`, defined next to the wrapper that
//! owns each concern).

use kernel::bindings::{bio, block_device, file, gendisk, llist_head, llist_node, page, socket};
use kernel::ffi::{c_char, c_int, c_long, c_uint, c_ulonglong, c_void};

/// `struct rdrbd_peer_write` of the shim: only ever behind a pointer.
#[repr(C)]
pub(crate) struct rdrbd_peer_write {
    _opaque: [u8; 0],
}

/// `struct crypto_shash`, which the bindings do not include: only ever
/// behind a pointer the shim returns (an opaque type, as bindgen makes them).
#[repr(C)]
pub(crate) struct crypto_shash {
    _opaque: [u8; 0],
}

// Kernel structs reached only through pointers here contain zero-sized
// members that rustc flags as not FFI-safe; pointers to them are.
#[allow(improper_ctypes)]
extern "C" {
    pub(super) fn rdrbd_disk_alloc(major: c_int, minor: c_int, private_data: *mut c_void)
        -> *mut gendisk;
    pub(super) fn rdrbd_disk_add(disk: *mut gendisk) -> c_int;
    pub(super) fn rdrbd_disk_get(disk: *mut gendisk);
    pub(super) fn rdrbd_disk_remove(disk: *mut gendisk);
    pub(super) fn rdrbd_disk_stack_limits(disk: *mut gendisk, lower: *mut block_device) -> c_int;
    pub(super) fn rdrbd_disk_reset_limits(disk: *mut gendisk) -> c_int;
    pub(super) fn rdrbd_disk_set_ro(disk: *mut gendisk, read_only: bool);
    pub(super) fn rdrbd_random_u64() -> u64;
    pub(super) fn rdrbd_bio_disk_private(bio: *mut bio) -> *mut c_void;
    pub(super) fn rdrbd_bdev_open(path: *const c_char, holder: *mut c_void) -> *mut file;
    pub(super) fn rdrbd_bio_clone(upper: *mut bio, lower: *mut block_device) -> *mut bio;
    pub(super) fn rdrbd_clone_bioset_init() -> c_int;
    pub(super) fn rdrbd_clone_tag(clone: *mut bio) -> *mut u64;
    pub(super) fn rdrbd_clone_age_slot(clone: *mut bio) -> *mut u32;
    pub(super) fn rdrbd_clone_outcome(clone: *mut bio) -> *mut u32;
    pub(super) fn rdrbd_clone_interval(clone: *mut bio) -> *mut u32;
    pub(super) fn rdrbd_clone_bioset_exit();
    pub(super) fn rdrbd_failed_push(list: *mut llist_head, clone: *mut bio) -> bool;
    pub(super) fn rdrbd_llist_empty(list: *mut llist_head) -> bool;
    pub(super) fn rdrbd_llist_take_all(list: *mut llist_head) -> *mut llist_node;
    pub(super) fn rdrbd_failed_next(cursor: *mut *mut llist_node) -> *mut bio;
    pub(super) fn rdrbd_bio_copy_in(bio: *mut bio, data: *const c_void, len: c_uint) -> c_int;
    pub(super) fn rdrbd_bdev_nr_sectors(bdev: *mut block_device) -> c_ulonglong;
    pub(super) fn rdrbd_bdev_max_discard_sectors(bdev: *mut block_device) -> c_uint;
    pub(super) fn rdrbd_bdev_discard_granularity(bdev: *mut block_device) -> c_uint;
    pub(super) fn rdrbd_bdev_discard_alignment(bdev: *mut block_device) -> c_uint;
    pub(super) fn rdrbd_bio_op(bio: *mut bio) -> c_uint;
    pub(super) fn rdrbd_bio_size(bio: *mut bio) -> c_uint;
    pub(super) fn rdrbd_md_io(bdev: *mut block_device, page: *mut page, sector: u64, write: bool,
        durable: bool) -> c_int;

    pub(super) fn rdrbd_sock_create(family: c_int, res: *mut *mut socket) -> c_int;
    pub(super) fn rdrbd_sock_set_timeouts(sock: *mut socket, rcv_jiffies: c_long, snd_jiffies: c_long);
    pub(super) fn rdrbd_sock_send_room(sock: *mut socket) -> c_int;
    pub(super) fn rdrbd_sock_quickack(sock: *mut socket);
    pub(super) fn rdrbd_sock_set_nodelay(sock: *mut socket);
    pub(super) fn rdrbd_sock_for_block_io(sock: *mut socket);
    pub(super) fn rdrbd_sock_for_swap(sock: *mut socket);
    pub(super) fn rdrbd_sock_release(sock: *mut socket);
    pub(super) fn rdrbd_sock_set_buffers(sock: *mut socket, snd: u32, rcv: u32);
    pub(super) fn rdrbd_sock_set_reuseaddr(sock: *mut socket);
    pub(super) fn rdrbd_sock_send_bio(sock: *mut socket, bio: *mut bio, done: *mut usize, zero_copy: bool, more: bool) -> c_int;
    pub(super) fn rdrbd_sock_send_pages(sock: *mut socket, pages: *mut *mut page, len: c_uint, done: *mut usize, more: bool) -> c_int;
    pub(super) fn rdrbd_bio_inc_remaining(bio: *mut bio);
    pub(super) fn rdrbd_bio_get(bio: *mut bio);
    pub(super) fn rdrbd_bio_flags(bio: *mut bio) -> c_uint;
    pub(super) fn rdrbd_pages_io(bdev: *mut block_device, pages: *mut *mut page, nr: c_uint,
        sector: u64, len: c_uint, write: bool, fua: bool, flush: bool) -> c_int;

    pub(super) fn rdrbd_peer_write_alloc(bdev: *mut block_device, len: c_uint, sector: u64, fua: bool,
        flush: bool) -> *mut rdrbd_peer_write;
    pub(super) fn rdrbd_peer_write_fill(pw: *mut rdrbd_peer_write, data: *const u8, len: c_uint) -> c_int;
    pub(super) fn rdrbd_peer_write_recv(pw: *mut rdrbd_peer_write, sock: *mut socket, done: *mut usize) -> c_int;
    pub(super) fn rdrbd_peer_write_queue(pw: *mut rdrbd_peer_write) -> *mut *mut c_void;
    pub(super) fn rdrbd_peer_write_gate(pw: *mut rdrbd_peer_write) -> *mut *mut c_void;
    pub(super) fn rdrbd_peer_write_owner(pw: *mut rdrbd_peer_write) -> *mut u64;
    pub(super) fn rdrbd_peer_write_age_slot(pw: *mut rdrbd_peer_write) -> *mut u32;
    pub(super) fn rdrbd_peer_write_status(pw: *mut rdrbd_peer_write) -> c_int;
    pub(super) fn rdrbd_peer_write_submit(pw: *mut rdrbd_peer_write);
    pub(super) fn rdrbd_peer_write_free(pw: *mut rdrbd_peer_write);
    pub(super) fn rdrbd_peer_write_push(list: *mut llist_head, pw: *mut rdrbd_peer_write);
    pub(super) fn rdrbd_peer_write_next(cursor: *mut *mut llist_node) -> *mut rdrbd_peer_write;

    pub(super) fn rdrbd_genl_register(ctx: *mut c_void) -> c_int;
    pub(super) fn rdrbd_genl_unregister();
    pub(super) fn rdrbd_genl_multicast(cmd: u8, seq: u32, msg: *const u8, len: usize) -> c_int;
    pub(super) fn rdrbd_capable_sys_admin() -> bool;

    pub(super) fn rdrbd_proc_create(ctx: *mut c_void) -> c_int;
    pub(super) fn rdrbd_proc_remove();

    pub(super) fn rdrbd_hmac_alloc(alg: *const c_char) -> *mut crypto_shash;
    pub(super) fn rdrbd_digest_alloc(alg: *const c_char) -> *mut crypto_shash;
    pub(super) fn rdrbd_hmac_free(tfm: *mut crypto_shash);
    pub(super) fn rdrbd_hmac_setkey(tfm: *mut crypto_shash, key: *const u8, len: c_uint) -> c_int;
    pub(super) fn rdrbd_hmac_digestsize(tfm: *mut crypto_shash) -> c_uint;
    pub(super) fn rdrbd_hmac_digest(tfm: *mut crypto_shash, data: *const u8, len: c_uint, out: *mut u8) -> c_int;
    pub(super) fn rdrbd_digest_bio(tfm: *mut crypto_shash, bio: *mut bio, out: *mut u8) -> c_int;
    pub(super) fn rdrbd_digest_pages(tfm: *mut crypto_shash, pages: *mut *mut page, len: c_uint, out: *mut u8) -> c_int;
    pub(super) fn rdrbd_peer_write_digest(pw: *mut rdrbd_peer_write, tfm: *mut crypto_shash, out: *mut u8) -> c_int;

    pub(super) fn rdrbd_fault_params(enable: *mut u32, rate: *mut u32, devs: *mut u32);
    pub(super) fn rdrbd_fault_counted();
    pub(super) fn rdrbd_ratelimit() -> bool;

    pub(super) fn rdrbd_usermode_helper_path(buf: *mut c_char, len: c_uint);
    pub(super) fn rdrbd_call_usermode_helper(path: *mut c_char, argv: *mut *mut c_char, envp: *mut *mut c_char) -> c_int;
}
