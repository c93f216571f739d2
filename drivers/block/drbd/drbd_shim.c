// SPDX-License-Identifier: GPL-2.0
/*
 * C shim of rdrbd; see drbd_shim.h for what belongs here and why.
 */
#include <linux/bio.h>
#include <linux/llist.h>
#include <linux/blkdev.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <linux/tcp.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/mutex.h>
#include <linux/capability.h>
#include <crypto/hash.h>
#include <linux/umh.h>
#include <linux/moduleparam.h>

#include "drbd_shim.h"

/* ---- block device ---------------------------------------------------- */

static void rdrbd_submit_bio(struct bio *bio)
{
	/* A bio-based driver splits bios to its own limits itself. */
	bio = bio_split_to_limits(bio);
	if (!bio)
		return;
	rdrbd_rs_submit_bio(bio->bi_bdev->bd_disk->private_data, bio);
}

/* DRBD 8.4's drbd_open: the Rust side decides (role, open count). */
static int rdrbd_open(struct gendisk *disk, blk_mode_t mode)
{
	return rdrbd_rs_open(disk->private_data, !!(mode & BLK_OPEN_WRITE));
}

static void rdrbd_release(struct gendisk *disk)
{
	rdrbd_rs_release(disk->private_data);
}

/* The last reference on the gendisk is gone (after its last release):
 * the Rust side frees the private data, and its reference on the owner. */
static void rdrbd_free_disk(struct gendisk *disk)
{
	rdrbd_rs_free_disk(disk->private_data);
}

/* .owner pins the module while any /dev/drbdN is open, so rmmod refuses. */
static const struct block_device_operations rdrbd_fops = {
	.owner = THIS_MODULE,
	.submit_bio = rdrbd_submit_bio,
	.open = rdrbd_open,
	.release = rdrbd_release,
	.free_disk = rdrbd_free_disk,
};

/* Stable writes: the pages of a write in flight go to the backing disk and
 * to the peer separately, so nobody may change them until it completes
 * (else the replicas differ without a bitmap bit; swap on drbd0 under
 * memory pressure did). The C driver sets it too. */
#define RDRBD_FEATURES (BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA | BLK_FEAT_STABLE_WRITES)

struct gendisk *rdrbd_disk_alloc(int major, int minor, void *private_data)
{
	struct queue_limits lim = {
		.features = RDRBD_FEATURES,
	};
	struct gendisk *disk = blk_alloc_disk(&lim, NUMA_NO_NODE);

	if (IS_ERR(disk))
		return disk;
	disk->major = major;
	disk->first_minor = minor;
	disk->minors = 1;
	disk->fops = &rdrbd_fops;
	disk->flags |= GENHD_FL_NO_PART;
	disk->private_data = private_data;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "drbd%d", minor);
	/* A new minor is Secondary: read-only, as in DRBD 8.4. */
	set_disk_ro(disk, true);
	return disk;
}

void rdrbd_disk_set_ro(struct gendisk *disk, bool read_only)
{
	set_disk_ro(disk, read_only);
}

u64 rdrbd_random_u64(void)
{
	return get_random_u64();
}

int rdrbd_disk_add(struct gendisk *disk)
{
	return add_disk(disk);
}

/* One more reference on the gendisk (disk_to_dev is a macro); put_disk
 * drops it. */
void rdrbd_disk_get(struct gendisk *disk)
{
	get_device(disk_to_dev(disk));
}

void rdrbd_disk_remove(struct gendisk *disk)
{
	del_gendisk(disk);
	put_disk(disk);
}

/* Inherit the backing device's limits (discard, segment sizes, ...) while
 * keeping the flush/FUA and stable-write features that DRBD always
 * advertises. */
int rdrbd_disk_stack_limits(struct gendisk *disk, struct block_device *backing)
{
	struct queue_limits lim = queue_limits_start_update(disk->queue);

	blk_set_stacking_limits(&lim);
	lim.features = RDRBD_FEATURES;
	blk_stack_limits(&lim, &bdev_get_queue(backing)->limits, 0);
	lim.features |= RDRBD_FEATURES;
	/* DRBD's limits: 1 MiB bios, discards of at most one 4 MiB activity
	 * log extent, so a write never spans more than two extents. */
	lim.max_hw_sectors = min(lim.max_hw_sectors, 1024U * 1024 / 512);
	lim.max_hw_discard_sectors = min(lim.max_hw_discard_sectors, 4096U * 1024 / 512);
	/* Write-zeroes and secure erase are not replicated: without them the
	 * block layer writes zeroed pages instead, which are. */
	lim.max_write_zeroes_sectors = 0;
	lim.max_secure_erase_sectors = 0;
	return queue_limits_commit_update(disk->queue, &lim);
}

int rdrbd_disk_reset_limits(struct gendisk *disk)
{
	struct queue_limits lim = queue_limits_start_update(disk->queue);

	lim.max_hw_discard_sectors = 0;
	lim.discard_granularity = 0;
	return queue_limits_commit_update(disk->queue, &lim);
}

void *rdrbd_bio_disk_private(struct bio *bio)
{
	return bio->bi_bdev->bd_disk->private_data;
}

unsigned long long rdrbd_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

/* The backing device's discard limits, in sectors (static inlines). */
unsigned int rdrbd_bdev_max_discard_sectors(struct block_device *bdev)
{
	return bdev_max_discard_sectors(bdev);
}

unsigned int rdrbd_bdev_discard_granularity(struct block_device *bdev)
{
	return bdev_discard_granularity(bdev) >> SECTOR_SHIFT;
}

unsigned int rdrbd_bdev_discard_alignment(struct block_device *bdev)
{
	return bdev_discard_alignment(bdev) >> SECTOR_SHIFT;
}

unsigned int rdrbd_bio_op(struct bio *bio)
{
	return bio_op(bio);
}

unsigned int rdrbd_bio_size(struct bio *bio)
{
	return bio->bi_iter.bi_size;
}

/* Synchronous 4 KiB metadata I/O (superblock, activity log, bitmap). A
 * durable write is preceded by a flush and is FUA, so it is on stable
 * storage, after everything written before it, when this returns. */
int rdrbd_md_io(struct block_device *bdev, struct page *page, u64 sector,
		bool write, bool durable)
{
	blk_opf_t opf = (write ? REQ_OP_WRITE : REQ_OP_READ) | REQ_SYNC | REQ_META;
	struct bio *bio;
	int err;

	if (write && durable)
		opf |= REQ_PREFLUSH | REQ_FUA;
	bio = bio_alloc(bdev, 1, opf, GFP_NOIO);
	__bio_add_page(bio, page, PAGE_SIZE, 0);
	bio->bi_iter.bi_sector = sector;
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

/* Clones of upper bios that go to the backing device, each preceded by
 * a tag the driver uses to finish its bookkeeping on completion, and by
 * the node that queues it for the device's worker when the backing
 * device failed it. */
struct rdrbd_clone {
	u64 tag;
	u32 age_slot;
	u32 outcome;
	u32 interval;
	struct llist_node failed;
	struct bio bio;
};
static struct bio_set rdrbd_clones;

int rdrbd_clone_bioset_init(void)
{
	return bioset_init(&rdrbd_clones, BIO_POOL_SIZE,
			   offsetof(struct rdrbd_clone, bio), 0);
}

u64 *rdrbd_clone_tag(struct bio *clone)
{
	return &container_of(clone, struct rdrbd_clone, bio)->tag;
}

u32 *rdrbd_clone_age_slot(struct bio *clone)
{
	return &container_of(clone, struct rdrbd_clone, bio)->age_slot;
}

u32 *rdrbd_clone_outcome(struct bio *clone)
{
	return &container_of(clone, struct rdrbd_clone, bio)->outcome;
}

u32 *rdrbd_clone_interval(struct bio *clone)
{
	return &container_of(clone, struct rdrbd_clone, bio)->interval;
}

/* Queues a failed clone (from any context, its completion included);
 * true when the list was empty before. */
bool rdrbd_failed_push(struct llist_head *list, struct bio *clone)
{
	return llist_add(&container_of(clone, struct rdrbd_clone, bio)->failed, list);
}

/* Whether a lock-free list (failed clones, completed peer writes) is empty. */
bool rdrbd_llist_empty(struct llist_head *list)
{
	return llist_empty(list);
}

/* Takes every node of a lock-free list, in the order they were added. */
struct llist_node *rdrbd_llist_take_all(struct llist_head *list)
{
	return llist_reverse_order(llist_del_all(list));
}

/* The clone at *cursor, moving *cursor to the next (NULL at the end). */
struct bio *rdrbd_failed_next(struct llist_node **cursor)
{
	struct rdrbd_clone *clone;

	if (!*cursor)
		return NULL;
	clone = container_of(*cursor, struct rdrbd_clone, failed);
	*cursor = (*cursor)->next;
	return &clone->bio;
}

/* Copies len bytes into the data pages of a read bio (a block the peer
 * sent for it); -EINVAL when the sizes differ. */
int rdrbd_bio_copy_in(struct bio *bio, const void *data, unsigned int len)
{
	struct bvec_iter iter;
	struct bio_vec bvec;
	unsigned int off = 0;

	if (len != bio->bi_iter.bi_size)
		return -EINVAL;
	bio_for_each_segment(bvec, bio, iter) {
		memcpy_to_bvec(&bvec, data + off);
		off += bvec.bv_len;
	}
	return 0;
}

void rdrbd_clone_bioset_exit(void)
{
	bioset_exit(&rdrbd_clones);
}

/* GFP_NOIO with a mempool-backed bio_set: never fails, never recurses into
 * block I/O (we are on the I/O submission path). */
struct bio *rdrbd_bio_clone(struct bio *upper, struct block_device *lower)
{
	return bio_alloc_clone(lower, upper, GFP_NOIO, &rdrbd_clones);
}

/* Read-write, exclusive: holder identifies the claiming minor, so a second
 * attach of the same backing device anywhere fails with -EBUSY. */
struct file *rdrbd_bdev_open(const char *path, void *holder)
{
	return bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE,
				      holder, NULL);
}

/* One more bio_endio is needed before the bio completes (a replicated
 * write completes when both the local write and the peer's ack are in). */
void rdrbd_bio_inc_remaining(struct bio *bio)
{
	bio_inc_remaining(bio);
}

void rdrbd_bio_get(struct bio *bio)
{
	bio_get(bio);
}

/* Bit 0: REQ_FUA, bit 1: REQ_PREFLUSH, bit 2: REQ_SYNC, bit 3: REQ_RAHEAD. */
unsigned int rdrbd_bio_flags(struct bio *bio)
{
	return (bio->bi_opf & REQ_FUA ? 1 : 0) |
	       (bio->bi_opf & REQ_PREFLUSH ? 2 : 0) |
	       (bio->bi_opf & REQ_SYNC ? 4 : 0) |
	       (bio->bi_opf & REQ_RAHEAD ? 8 : 0);
}

/* Synchronous read or write of len bytes from/to pages[] at sector (a
 * replicated write on the peer's behalf, or a resync read for it);
 * fua/flush as the primary's bio had them. */
int rdrbd_pages_io(struct block_device *bdev, struct page **pages,
		   unsigned int nr, u64 sector, unsigned int len,
		   bool write, bool fua, bool flush)
{
	blk_opf_t opf = (write ? REQ_OP_WRITE : REQ_OP_READ) | REQ_SYNC;
	struct bio *bio;
	unsigned int i;
	int err;

	if (fua)
		opf |= REQ_FUA;
	if (flush)
		opf |= REQ_PREFLUSH;
	bio = bio_alloc(bdev, nr ? nr : 1, opf, GFP_NOIO);
	for (i = 0; i < nr && len; i++) {
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE);

		__bio_add_page(bio, pages[i], n, 0);
		len -= n;
	}
	bio->bi_iter.bi_sector = sector;
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

/* ---- writes done for the peer ----------------------------------------- */

/* A write the receiver submits for the peer and does not wait for: its own
 * pages (freed with it), and what its completion needs to find its way
 * back to process context: the node for the owner's done list and two
 * opaque pointers of the Rust side (rdrbd_rs_peer_write_done). */
struct rdrbd_peer_write {
	struct llist_node done;
	void *queue;
	void *gate;
	u64 owner[6];
	u32 age_slot;
	int status;
	struct bio *bio;
};

static void rdrbd_peer_write_endio(struct bio *bio)
{
	struct rdrbd_peer_write *pw = bio->bi_private;

	pw->status = blk_status_to_errno(bio->bi_status);
	rdrbd_rs_peer_write_done(pw);
}

/* A write of len bytes at sector on bdev with pages of its own, not yet
 * submitted; NULL if memory is short. */
struct rdrbd_peer_write *rdrbd_peer_write_alloc(struct block_device *bdev, unsigned int len,
						u64 sector, bool fua, bool flush)
{
	unsigned int nr = DIV_ROUND_UP(len, PAGE_SIZE), i;
	blk_opf_t opf = REQ_OP_WRITE;
	struct rdrbd_peer_write *pw;

	if (!len || nr > BIO_MAX_VECS)
		return NULL;
	if (fua)
		opf |= REQ_FUA;
	if (flush)
		opf |= REQ_PREFLUSH;
	pw = kzalloc(sizeof(*pw), GFP_NOIO);
	if (!pw)
		return NULL;
	pw->bio = bio_alloc(bdev, nr, opf, GFP_NOIO);
	for (i = 0; i < nr; i++) {
		unsigned int n = min_t(unsigned int, len - i * PAGE_SIZE, PAGE_SIZE);
		struct page *page = alloc_page(GFP_NOIO);

		if (!page) {
			rdrbd_peer_write_free(pw);
			return NULL;
		}
		__bio_add_page(pw->bio, page, n, 0);
	}
	pw->bio->bi_iter.bi_sector = sector;
	pw->bio->bi_private = pw;
	pw->bio->bi_end_io = rdrbd_peer_write_endio;
	return pw;
}

/* Copies len bytes of data into the write's pages (len is its size). */
int rdrbd_peer_write_fill(struct rdrbd_peer_write *pw, const u8 *data, unsigned int len)
{
	struct bio_vec *bv;
	struct bvec_iter_all iter;

	if (len != pw->bio->bi_iter.bi_size)
		return -EINVAL;
	bio_for_each_segment_all(bv, pw->bio, iter) {
		memcpy_to_page(bv->bv_page, bv->bv_offset, data, bv->bv_len);
		data += bv->bv_len;
	}
	return 0;
}

/* Receives a write's data from the socket straight into its pages (8.4's
 * read_in_block reads into the peer request's pages too): `*done` bytes
 * are in already, the rest follows; a timeout (-EAGAIN) leaves `*done`
 * where it stopped. */
int rdrbd_peer_write_recv(struct rdrbd_peer_write *pw, struct socket *sock, size_t *done)
{
	struct msghdr msg = { .msg_flags = MSG_WAITALL | MSG_NOSIGNAL };
	unsigned int len = pw->bio->bi_iter.bi_size;
	int rv;

	if (*done > len)
		return -EINVAL;
	iov_iter_bvec(&msg.msg_iter, ITER_DEST, pw->bio->bi_io_vec, pw->bio->bi_vcnt, len);
	iov_iter_advance(&msg.msg_iter, *done);
	while (msg_data_left(&msg)) {
		rv = sock_recvmsg(sock, &msg, msg.msg_flags);
		if (rv < 0)
			return rv;
		if (rv == 0)
			return -ECONNRESET;
		*done += rv;
	}
	return 0;
}

/* The Rust side's pointers: the queue its completion goes to, the gate
 * whose in-flight count it holds, the owner's 48 bytes, the disk-timeout slot. */
void **rdrbd_peer_write_queue(struct rdrbd_peer_write *pw)
{
	return &pw->queue;
}

void **rdrbd_peer_write_gate(struct rdrbd_peer_write *pw)
{
	return &pw->gate;
}

u64 *rdrbd_peer_write_owner(struct rdrbd_peer_write *pw)
{
	return pw->owner;
}

u32 *rdrbd_peer_write_age_slot(struct rdrbd_peer_write *pw)
{
	return &pw->age_slot;
}

int rdrbd_peer_write_status(struct rdrbd_peer_write *pw)
{
	return pw->status;
}

void rdrbd_peer_write_submit(struct rdrbd_peer_write *pw)
{
	submit_bio_noacct(pw->bio);
}

/* Frees the pages, the bio and the write (not submitted, or completed). */
void rdrbd_peer_write_free(struct rdrbd_peer_write *pw)
{
	struct bio_vec *bv;
	struct bvec_iter_all iter;

	bio_for_each_segment_all(bv, pw->bio, iter)
		__free_page(bv->bv_page);
	bio_put(pw->bio);
	kfree(pw);
}

/* Queues a completed write on its owner's done list (any context). */
void rdrbd_peer_write_push(struct llist_head *list, struct rdrbd_peer_write *pw)
{
	llist_add(&pw->done, list);
}

/* The write at *cursor, moving *cursor to the next (NULL at the end). */
struct rdrbd_peer_write *rdrbd_peer_write_next(struct llist_node **cursor)
{
	struct rdrbd_peer_write *pw;

	if (!*cursor)
		return NULL;
	pw = container_of(*cursor, struct rdrbd_peer_write, done);
	*cursor = (*cursor)->next;
	return pw;
}

/* ---- sockets ---------------------------------------------------------- */

int rdrbd_sock_create(int family, struct socket **res)
{
	return sock_create_kern(&init_net, family, SOCK_STREAM, IPPROTO_TCP, res);
}

/* A timeout of 0 means wait forever, as for SO_RCVTIMEO. */
void rdrbd_sock_set_timeouts(struct socket *sock, long rcv_jiffies, long snd_jiffies)
{
	sock->sk->sk_rcvtimeo = rcv_jiffies ? rcv_jiffies : MAX_SCHEDULE_TIMEOUT;
	sock->sk->sk_sndtimeo = snd_jiffies ? snd_jiffies : MAX_SCHEDULE_TIMEOUT;
}

/* Acks what was received at once (8.4's receiver does so whenever it
 * finds nothing more to read): the peer's send buffer is freed without
 * waiting for a delayed ack. */
void rdrbd_sock_quickack(struct socket *sock)
{
	tcp_sock_set_quickack(sock->sk, 2);
}

/* Bytes the socket's send buffer takes before a send would block
 * (sk_stream_wspace); acks only make it grow. */
int rdrbd_sock_send_room(struct socket *sock)
{
	return sk_stream_wspace(sock->sk);
}

void rdrbd_sock_set_nodelay(struct socket *sock)
{
	tcp_sock_set_nodelay(sock->sk);
}

/*
 * The sockets carry writeback: their allocations must not recurse into block
 * I/O (GFP_NOIO), and a sender on the block I/O path (any task submitting a
 * bio) must not use, or sleep on, that task's page fragment.
 */
void rdrbd_sock_for_block_io(struct socket *sock)
{
	sock->sk->sk_allocation = GFP_NOIO;
	sock->sk->sk_use_task_frag = false;
}

/*
 * A connected socket may carry swap (swap on /dev/drbdN): as nbd's, it may
 * use the emergency reserves (SOCK_MEMALLOC, __GFP_MEMALLOC), so the writes
 * that free memory, and the acks that complete them, can still be sent and
 * received when memory is exhausted.
 */
void rdrbd_sock_for_swap(struct socket *sock)
{
	sk_set_memalloc(sock->sk);
}

void rdrbd_sock_release(struct socket *sock)
{
	if (sock->sk && sock_flag(sock->sk, SOCK_MEMALLOC))
		sk_clear_memalloc(sock->sk);
	sock_release(sock);
}

/* SO_SNDBUF / SO_RCVBUF without the doubling: the size given is the size. */
void rdrbd_sock_set_buffers(struct socket *sock, u32 snd, u32 rcv)
{
	lock_sock(sock->sk);
	if (snd) {
		WRITE_ONCE(sock->sk->sk_sndbuf, snd);
		sock->sk->sk_userlocks |= SOCK_SNDBUF_LOCK;
	}
	if (rcv) {
		WRITE_ONCE(sock->sk->sk_rcvbuf, rcv);
		sock->sk->sk_userlocks |= SOCK_RCVBUF_LOCK;
	}
	release_sock(sock->sk);
}

/*
 * Sends the data of a write bio, from byte *done of it on, adding what went
 * out to *done; a send that times out (-EAGAIN) is resumed by calling again.
 * More: the caller sends another packet at once (MSG_MORE on the data too).
 *
 * The iterator covers the bio_vec entries that hold the bio's data, counted
 * as bio_for_each_bvec walks them from bi_iter: not bi_vcnt - bi_idx, which
 * is meaningless for a cloned bio (a split, or a bio from dm above us shares
 * its parent's bio_vec array and has bi_vcnt 0). iov_iter_advance() walks
 * only nr_segs entries, so a wrong count resumes a send in the wrong memory.
 */
int rdrbd_sock_send_bio(struct socket *sock, struct bio *bio, size_t *done, bool zero_copy, bool more)
{
	struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0) };
	struct bvec_iter iter;
	struct bio_vec bvec;
	unsigned long nr_segs = 0;
	int rv;

	if (*done > bio->bi_iter.bi_size)
		return -EINVAL;
	bio_for_each_bvec(bvec, bio, iter)
		nr_segs++;
	/* The socket takes references to the pages instead of copying them
	 * (_drbd_send_page), unless one of them may not be (slab memory). */
	if (zero_copy) {
		msg.msg_flags |= MSG_SPLICE_PAGES;
		bio_for_each_segment(bvec, bio, iter) {
			if (!sendpage_ok(bvec.bv_page)) {
				msg.msg_flags &= ~MSG_SPLICE_PAGES;
				break;
			}
		}
	}
	iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bio->bi_io_vec + bio->bi_iter.bi_idx,
		      nr_segs, bio->bi_iter.bi_size + bio->bi_iter.bi_bvec_done);
	iov_iter_advance(&msg.msg_iter, bio->bi_iter.bi_bvec_done + *done);
	while (msg_data_left(&msg)) {
		rv = sock_sendmsg(sock, &msg);
		if (rv <= 0)
			return rv ? rv : -EPIPE;
		*done += rv;
	}
	return 0;
}

/* Sends bytes [*done, len) of the pages pages[0..] (whole pages, the last
 * one possibly partial), a few pages per sendmsg: the socket copies them,
 * so the caller may reuse the pages at once. More: what follows at once
 * belongs with them (MSG_MORE on the last part too). */
int rdrbd_sock_send_pages(struct socket *sock, struct page **pages, unsigned int len, size_t *done, bool more)
{
	struct bio_vec bv[16];

	if (*done > len)
		return -EINVAL;
	while (*done < len) {
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		size_t start = *done, chunk = 0;
		unsigned int n = 0, i = start / PAGE_SIZE, off = start % PAGE_SIZE;
		int rv;

		while (n < ARRAY_SIZE(bv) && start + chunk < len) {
			unsigned int l = min_t(size_t, PAGE_SIZE - off, len - start - chunk);

			bvec_set_page(&bv[n++], pages[i++], l, off);
			chunk += l;
			off = 0;
		}
		if (more || start + chunk < len)
			msg.msg_flags |= MSG_MORE;
		iov_iter_bvec(&msg.msg_iter, ITER_SOURCE, bv, n, chunk);
		rv = sock_sendmsg(sock, &msg);
		if (rv <= 0)
			return rv ? rv : -EPIPE;
		*done += rv;
	}
	return 0;
}

void rdrbd_sock_set_reuseaddr(struct socket *sock)
{
	sock_set_reuseaddr(sock->sk);
}

/* ---- generic netlink ------------------------------------------------- */

/* The context the Rust side registered; valid while the family is. */
static void *rdrbd_genl_ctx;
static struct genl_family rdrbd_genl_family;

/* DRBD's family-specific header: minor, then flags (request) / ret_code. */
#define RDRBD_GENL_USER_HDR 8

static int rdrbd_genl_doit(struct sk_buff *skb, struct genl_info *info)
{
	const u8 *req = genlmsg_data(info->genlhdr);
	size_t req_len = genlmsg_len(info->genlhdr);
	struct sk_buff *reply;
	u8 *user_hdr;
	long len;

	reply = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	user_hdr = genlmsg_put_reply(reply, info, &rdrbd_genl_family, 0,
				     info->genlhdr->cmd);
	if (!user_hdr) {
		nlmsg_free(reply);
		return -ENOMEM;
	}
	/* genlmsg_put reserved the user header; Rust writes it and the
	 * attributes after it, into the tailroom. */
	len = rdrbd_rs_genl_doit(rdrbd_genl_ctx, info->genlhdr->cmd, req, req_len,
				 user_hdr, RDRBD_GENL_USER_HDR + skb_tailroom(reply));
	if (len < RDRBD_GENL_USER_HDR) {
		nlmsg_free(reply);
		return len < 0 ? len : -EINVAL;
	}
	skb_put(reply, len - RDRBD_GENL_USER_HDR);
	genlmsg_end(reply, user_hdr);
	return genlmsg_reply(reply, info);
}

static int rdrbd_genl_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	const struct genlmsghdr *ghdr = nlmsg_data(cb->nlh);
	const u8 *req = genlmsg_data(ghdr);
	size_t req_len = genlmsg_len(ghdr);
	u8 *user_hdr;
	u8 reply_cmd;
	long len;

	for (;;) {
		user_hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
				       cb->nlh->nlmsg_seq, &rdrbd_genl_family,
				       NLM_F_MULTI, ghdr->cmd);
		if (!user_hdr)
			break;
		reply_cmd = ghdr->cmd;
		len = rdrbd_rs_genl_dump(rdrbd_genl_ctx, ghdr->cmd, req, req_len,
					 &cb->args[0], &reply_cmd, user_hdr,
					 RDRBD_GENL_USER_HDR + skb_tailroom(skb));
		if (len < RDRBD_GENL_USER_HDR) {
			/* 0: no more objects; negative: no room left in
			 * this skb, netlink calls again with a fresh one. */
			genlmsg_cancel(skb, user_hdr);
			break;
		}
		skb_put(skb, len - RDRBD_GENL_USER_HDR);
		/* GET_INITIAL_STATE answers with notifications (RESOURCE_STATE,
		 * ...): each message carries the command Rust chose. */
		((struct genlmsghdr *)(user_hdr - GENL_HDRLEN))->cmd = reply_cmd;
		genlmsg_end(skb, user_hdr);
	}
	return skb->len;
}

#define RDRBD_DOIT(c) \
	{ .cmd = (c), .doit = rdrbd_genl_doit, .flags = GENL_ADMIN_PERM, \
	  .validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP }
#define RDRBD_DUMPIT(c) \
	{ .cmd = (c), .dumpit = rdrbd_genl_dumpit, \
	  .validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP }

/* Command numbers of include/linux/drbd_genl.h (DRBD 8.4, API 1); the Rust
 * side decides what each one does. GET_STATUS is both doit (one minor)
 * and dumpit (all), and like the dump-only commands needs no privilege. */
static const struct genl_ops rdrbd_genl_ops[] = {
	{ .cmd = 2, .doit = rdrbd_genl_doit, .dumpit = rdrbd_genl_dumpit,
	  .validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP },
	RDRBD_DOIT(5), RDRBD_DOIT(6), RDRBD_DOIT(7), RDRBD_DOIT(8),
	RDRBD_DOIT(9), RDRBD_DOIT(10), RDRBD_DOIT(11), RDRBD_DOIT(12),
	RDRBD_DOIT(13), RDRBD_DOIT(14), RDRBD_DOIT(15), RDRBD_DOIT(16),
	RDRBD_DOIT(17), RDRBD_DOIT(18), RDRBD_DOIT(19), RDRBD_DOIT(20),
	RDRBD_DOIT(21), RDRBD_DOIT(22), RDRBD_DOIT(23), RDRBD_DOIT(24),
	RDRBD_DOIT(25), RDRBD_DOIT(26), RDRBD_DOIT(27), RDRBD_DOIT(28),
	RDRBD_DOIT(29),
	RDRBD_DUMPIT(30), RDRBD_DUMPIT(31), RDRBD_DUMPIT(32), RDRBD_DUMPIT(33),
	RDRBD_DUMPIT(38),
};

static const struct genl_multicast_group rdrbd_genl_mcgrps[] = {
	{ .name = "events" },
};

static struct genl_family rdrbd_genl_family = {
	.name = "drbd",
	.version = 1,
	.hdrsize = RDRBD_GENL_USER_HDR,
	.maxattr = 0,	/* attributes are parsed and validated in Rust */
	.module = THIS_MODULE,
	.ops = rdrbd_genl_ops,
	.n_ops = ARRAY_SIZE(rdrbd_genl_ops),
	.resv_start_op = 42,
	.mcgrps = rdrbd_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(rdrbd_genl_mcgrps),
};

/* Broadcasts may come from connection threads at any time: this lock and
 * flag keep them off the family while it is (un)registered. */
static DEFINE_MUTEX(rdrbd_genl_events_lock);
static bool rdrbd_genl_live;

int rdrbd_genl_register(void *ctx)
{
	int err;

	rdrbd_genl_ctx = ctx;
	err = genl_register_family(&rdrbd_genl_family);
	if (!err) {
		mutex_lock(&rdrbd_genl_events_lock);
		rdrbd_genl_live = true;
		mutex_unlock(&rdrbd_genl_events_lock);
	}
	return err;
}

void rdrbd_genl_unregister(void)
{
	mutex_lock(&rdrbd_genl_events_lock);
	rdrbd_genl_live = false;
	mutex_unlock(&rdrbd_genl_events_lock);
	genl_unregister_family(&rdrbd_genl_family);
	rdrbd_genl_ctx = NULL;
}

/* Sends msg (user header + attributes, built in Rust) to the "events"
 * group as command cmd with sequence number seq. -ESRCH: no listener. */
int rdrbd_genl_multicast(u8 cmd, u32 seq, const u8 *msg, size_t len)
{
	struct sk_buff *skb;
	u8 *user_hdr;
	int err = -ESRCH;

	if (len < RDRBD_GENL_USER_HDR)
		return -EINVAL;
	mutex_lock(&rdrbd_genl_events_lock);
	if (!rdrbd_genl_live)
		goto out;
	err = -ENOMEM;
	skb = genlmsg_new(len - RDRBD_GENL_USER_HDR, GFP_NOIO);
	if (!skb)
		goto out;
	user_hdr = genlmsg_put(skb, 0, seq, &rdrbd_genl_family, 0, cmd);
	if (!user_hdr) {
		nlmsg_free(skb);
		goto out;
	}
	skb_put(skb, len - RDRBD_GENL_USER_HDR);
	memcpy(user_hdr, msg, len);
	genlmsg_end(skb, user_hdr);
	err = genlmsg_multicast(&rdrbd_genl_family, skb, 0, 0, GFP_NOIO);
out:
	mutex_unlock(&rdrbd_genl_events_lock);
	return err;
}

/* DRBD shows the shared secret only to CAP_SYS_ADMIN (nla_put_status_info). */
bool rdrbd_capable_sys_admin(void)
{
	return capable(CAP_SYS_ADMIN);
}

/* ---- /proc/drbd ------------------------------------------------------ */

static int rdrbd_proc_show(struct seq_file *seq, void *v)
{
	return rdrbd_rs_proc_show(seq->private, seq);
}

int rdrbd_proc_create(void *ctx)
{
	if (!proc_create_single_data("drbd", 0444, NULL, rdrbd_proc_show, ctx))
		return -ENOMEM;
	return 0;
}

void rdrbd_proc_remove(void)
{
	remove_proc_entry("drbd", NULL);
}

/* ---- HMAC (cram-hmac-alg peer authentication) ------------------------- */

/* "hmac(<alg>)" as a synchronous hash; an ERR_PTR if the kernel lacks it. */
struct crypto_shash *rdrbd_hmac_alloc(const char *alg)
{
	char name[CRYPTO_MAX_ALG_NAME];

	if (snprintf(name, sizeof(name), "hmac(%s)", alg) >= sizeof(name))
		return ERR_PTR(-EINVAL);
	return crypto_alloc_shash(name, 0, 0);
}

/* A plain digest ("crc32c", "sha256") for online verify; an ERR_PTR if
 * the kernel lacks it. Freed, sized and used like the HMAC transforms. */
struct crypto_shash *rdrbd_digest_alloc(const char *alg)
{
	return crypto_alloc_shash(alg, 0, 0);
}

void rdrbd_hmac_free(struct crypto_shash *tfm)
{
	crypto_free_shash(tfm);
}

int rdrbd_hmac_setkey(struct crypto_shash *tfm, const u8 *key, unsigned int len)
{
	return crypto_shash_setkey(tfm, key, len);
}

unsigned int rdrbd_hmac_digestsize(struct crypto_shash *tfm)
{
	return crypto_shash_digestsize(tfm);
}

/* out must have room for rdrbd_hmac_digestsize(tfm) bytes. */
int rdrbd_hmac_digest(struct crypto_shash *tfm, const u8 *data, unsigned int len, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, tfm);
	int err;

	desc->tfm = tfm;
	err = crypto_shash_digest(desc, data, len, out);
	shash_desc_zero(desc);
	return err;
}

/* ---- data-integrity-alg: digests of scattered data ---------------------- */

static int rdrbd_digest_update_page(struct shash_desc *desc, struct page *page,
				    unsigned int off, unsigned int len)
{
	u8 *src = kmap_local_page(page);
	int err = crypto_shash_update(desc, src + off, len);

	kunmap_local(src);
	return err;
}

/* The digest of a bio's data, from its bi_iter on (a clone's own range);
 * out has room for the digest. */
int rdrbd_digest_bio(struct crypto_shash *tfm, struct bio *bio, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, tfm);
	struct bvec_iter iter;
	struct bio_vec bvec;
	int err;

	desc->tfm = tfm;
	err = crypto_shash_init(desc);
	bio_for_each_segment(bvec, bio, iter) {
		if (err)
			break;
		err = rdrbd_digest_update_page(desc, bvec.bv_page, bvec.bv_offset, bvec.bv_len);
	}
	if (!err)
		err = crypto_shash_final(desc, out);
	shash_desc_zero(desc);
	return err;
}

/* The digest of the first len bytes of pages[0..] (whole pages, the last
 * one possibly partial). */
int rdrbd_digest_pages(struct crypto_shash *tfm, struct page **pages, unsigned int len, u8 *out)
{
	SHASH_DESC_ON_STACK(desc, tfm);
	unsigned int i;
	int err;

	desc->tfm = tfm;
	err = crypto_shash_init(desc);
	for (i = 0; !err && len; i++) {
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE);

		err = rdrbd_digest_update_page(desc, pages[i], 0, n);
		len -= n;
	}
	if (!err)
		err = crypto_shash_final(desc, out);
	shash_desc_zero(desc);
	return err;
}

/* The digest of a peer write's data (its pages, before it is submitted). */
int rdrbd_peer_write_digest(struct rdrbd_peer_write *pw, struct crypto_shash *tfm, u8 *out)
{
	return rdrbd_digest_bio(tfm, pw->bio, out);
}

/* ---- usermode helper --------------------------------------------------- */

/*
 * DRBD's module parameter usermode_helper (/sys/module/drbd/parameters/):
 * the program run on events such as a split brain, normally drbdadm.
 */
static char rdrbd_usermode_helper[80] = "/sbin/drbdadm";
module_param_string(usermode_helper, rdrbd_usermode_helper, sizeof(rdrbd_usermode_helper), 0644);

void rdrbd_usermode_helper_path(char *buf, unsigned int len)
{
	kernel_param_lock(THIS_MODULE);
	strscpy(buf, rdrbd_usermode_helper, len);
	kernel_param_unlock(THIS_MODULE);
}

int rdrbd_call_usermode_helper(char *path, char **argv, char **envp)
{
	return call_usermodehelper(path, argv, envp, UMH_WAIT_PROC);
}

/* ---- fault injection --------------------------------------------------- */

/*
 * DRBD 8.4's fault injection parameters (/sys/module/drbd/parameters/):
 * enable_faults is a bit per fault type, fault_rate the percentage of
 * candidate requests made to fail, fault_devs a bit per minor (0: all);
 * fault_count counts the simulated failures. The Rust side decides
 * (include/src/faults.rs).
 */
static int rdrbd_enable_faults;
static int rdrbd_fault_rate;
static int rdrbd_fault_devs;
static atomic_t rdrbd_fault_count = ATOMIC_INIT(0);
module_param_named(enable_faults, rdrbd_enable_faults, int, 0664);
MODULE_PARM_DESC(enable_faults, "fault types to simulate, a bit each (see Documentation)");
module_param_named(fault_rate, rdrbd_fault_rate, int, 0664);
MODULE_PARM_DESC(fault_rate, "percent of the candidate requests to fail");
module_param_named(fault_devs, rdrbd_fault_devs, int, 0644);
MODULE_PARM_DESC(fault_devs, "minors to simulate faults on, a bit each; 0: all");

static int rdrbd_fault_count_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&rdrbd_fault_count));
}
static const struct kernel_param_ops rdrbd_fault_count_ops = {
	.get = rdrbd_fault_count_get,
};
module_param_cb(fault_count, &rdrbd_fault_count_ops, NULL, 0444);
MODULE_PARM_DESC(fault_count, "simulated failures so far");

void rdrbd_fault_params(u32 *enable, u32 *rate, u32 *devs)
{
	*enable = READ_ONCE(rdrbd_enable_faults);
	*rate = READ_ONCE(rdrbd_fault_rate);
	*devs = READ_ONCE(rdrbd_fault_devs);
}

void rdrbd_fault_counted(void)
{
	atomic_inc(&rdrbd_fault_count);
}

bool rdrbd_ratelimit(void)
{
	return __printk_ratelimit("drbd");
}
