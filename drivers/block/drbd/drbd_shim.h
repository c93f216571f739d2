/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C shim of rdrbd: only what Rust cannot reach in the 6.12 `kernel` crate
 * and `kernel::bindings` — static inline functions, macros (blk_alloc_disk
 * with its lockdep key, proc_create_single_data) and static tables
 * (block_device_operations, genl ops and family). Everything is forwarded to
 * the Rust side through the rdrbd_rs_* callbacks; the Rust glue declares
 * this same API in drivers/block/drbd/kernel_glue/shim.rs.
 */
#ifndef RDRBD_SHIM_H
#define RDRBD_SHIM_H

#include <linux/types.h>

struct bio;
struct block_device;
struct gendisk;
struct seq_file;
struct bio_set;
struct page;

/* Block device. */
struct gendisk *rdrbd_disk_alloc(int major, int minor, void *private_data);
int rdrbd_disk_add(struct gendisk *disk);
void rdrbd_disk_remove(struct gendisk *disk);
void rdrbd_disk_get(struct gendisk *disk);
int rdrbd_disk_stack_limits(struct gendisk *disk, struct block_device *backing);
int rdrbd_disk_reset_limits(struct gendisk *disk);
void rdrbd_disk_set_ro(struct gendisk *disk, bool read_only);
u64 rdrbd_random_u64(void);
void *rdrbd_bio_disk_private(struct bio *bio);
struct file *rdrbd_bdev_open(const char *path, void *holder);
struct bio *rdrbd_bio_clone(struct bio *upper, struct block_device *lower);
int rdrbd_clone_bioset_init(void);
u64 *rdrbd_clone_tag(struct bio *clone);
u32 *rdrbd_clone_age_slot(struct bio *clone);
u32 *rdrbd_clone_outcome(struct bio *clone);
u32 *rdrbd_clone_interval(struct bio *clone);
void rdrbd_clone_bioset_exit(void);
struct llist_head;
struct llist_node;
bool rdrbd_failed_push(struct llist_head *list, struct bio *clone);
bool rdrbd_llist_empty(struct llist_head *list);
struct llist_node *rdrbd_llist_take_all(struct llist_head *list);
struct bio *rdrbd_failed_next(struct llist_node **cursor);
int rdrbd_bio_copy_in(struct bio *bio, const void *data, unsigned int len);
unsigned long long rdrbd_bdev_nr_sectors(struct block_device *bdev);
unsigned int rdrbd_bdev_max_discard_sectors(struct block_device *bdev);
unsigned int rdrbd_bdev_discard_granularity(struct block_device *bdev);
unsigned int rdrbd_bdev_discard_alignment(struct block_device *bdev);
unsigned int rdrbd_bio_op(struct bio *bio);
unsigned int rdrbd_bio_size(struct bio *bio);
int rdrbd_md_io(struct block_device *bdev, struct page *page, u64 sector,
		bool write, bool durable);

/* Fault injection parameters (include/src/faults.rs). */
void rdrbd_fault_params(u32 *enable, u32 *rate, u32 *devs);
void rdrbd_fault_counted(void);
bool rdrbd_ratelimit(void);

/* TCP sockets in the initial network namespace. */
struct socket;
int rdrbd_sock_create(int family, struct socket **res);
void rdrbd_sock_set_timeouts(struct socket *sock, long rcv_jiffies, long snd_jiffies);
int rdrbd_sock_send_room(struct socket *sock);
void rdrbd_sock_quickack(struct socket *sock);
void rdrbd_sock_set_nodelay(struct socket *sock);
void rdrbd_sock_for_block_io(struct socket *sock);
void rdrbd_sock_for_swap(struct socket *sock);
void rdrbd_sock_release(struct socket *sock);
void rdrbd_sock_set_buffers(struct socket *sock, u32 snd, u32 rcv);
void rdrbd_sock_set_reuseaddr(struct socket *sock);
int rdrbd_sock_send_bio(struct socket *sock, struct bio *bio, size_t *done, bool zero_copy, bool more);
int rdrbd_sock_send_pages(struct socket *sock, struct page **pages, unsigned int len, size_t *done, bool more);
void rdrbd_bio_inc_remaining(struct bio *bio);
void rdrbd_bio_get(struct bio *bio);
unsigned int rdrbd_bio_flags(struct bio *bio);
int rdrbd_pages_io(struct block_device *bdev, struct page **pages,
		   unsigned int nr, u64 sector, unsigned int len,
		   bool write, bool fua, bool flush);

/* Writes done for the peer, completed to the Rust side's done list. */
struct rdrbd_peer_write;
struct rdrbd_peer_write *rdrbd_peer_write_alloc(struct block_device *bdev, unsigned int len,
						u64 sector, bool fua, bool flush);
int rdrbd_peer_write_fill(struct rdrbd_peer_write *pw, const u8 *data, unsigned int len);
int rdrbd_peer_write_recv(struct rdrbd_peer_write *pw, struct socket *sock, size_t *done);
void **rdrbd_peer_write_queue(struct rdrbd_peer_write *pw);
void **rdrbd_peer_write_gate(struct rdrbd_peer_write *pw);
u64 *rdrbd_peer_write_owner(struct rdrbd_peer_write *pw);
u32 *rdrbd_peer_write_age_slot(struct rdrbd_peer_write *pw);
int rdrbd_peer_write_status(struct rdrbd_peer_write *pw);
void rdrbd_peer_write_submit(struct rdrbd_peer_write *pw);
void rdrbd_peer_write_free(struct rdrbd_peer_write *pw);
void rdrbd_peer_write_push(struct llist_head *list, struct rdrbd_peer_write *pw);
struct rdrbd_peer_write *rdrbd_peer_write_next(struct llist_node **cursor);

/* Generic netlink family "drbd". */
int rdrbd_genl_register(void *ctx);
void rdrbd_genl_unregister(void);
int rdrbd_genl_multicast(u8 cmd, u32 seq, const u8 *msg, size_t len);
bool rdrbd_capable_sys_admin(void);

/* /proc/drbd. */
int rdrbd_proc_create(void *ctx);
void rdrbd_proc_remove(void);

/* Implemented in Rust (kernel_glue). */
long rdrbd_rs_genl_doit(void *ctx, u8 cmd, const u8 *req, size_t req_len,
			u8 *reply, size_t reply_cap);
long rdrbd_rs_genl_dump(void *ctx, u8 cmd, const u8 *req, size_t req_len,
			long *cursor, u8 *reply_cmd, u8 *reply, size_t reply_cap);
void rdrbd_rs_submit_bio(void *private_data, struct bio *bio);
int rdrbd_rs_open(void *private_data, bool write);
void rdrbd_rs_release(void *private_data);
void rdrbd_rs_free_disk(void *private_data);
int rdrbd_rs_proc_show(void *ctx, struct seq_file *seq);
void rdrbd_rs_peer_write_done(struct rdrbd_peer_write *pw);

struct crypto_shash;
struct crypto_shash *rdrbd_hmac_alloc(const char *alg);
struct crypto_shash *rdrbd_digest_alloc(const char *alg);
void rdrbd_hmac_free(struct crypto_shash *tfm);
int rdrbd_hmac_setkey(struct crypto_shash *tfm, const u8 *key, unsigned int len);
unsigned int rdrbd_hmac_digestsize(struct crypto_shash *tfm);
int rdrbd_hmac_digest(struct crypto_shash *tfm, const u8 *data, unsigned int len, u8 *out);
int rdrbd_digest_bio(struct crypto_shash *tfm, struct bio *bio, u8 *out);
int rdrbd_digest_pages(struct crypto_shash *tfm, struct page **pages, unsigned int len, u8 *out);
int rdrbd_peer_write_digest(struct rdrbd_peer_write *pw, struct crypto_shash *tfm, u8 *out);

/* Usermode helper (the usermode_helper module parameter). */
void rdrbd_usermode_helper_path(char *buf, unsigned int len);
int rdrbd_call_usermode_helper(char *path, char **argv, char **envp);

#endif
