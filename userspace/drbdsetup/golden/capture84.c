/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * LD_PRELOAD shim that lets /lib/drbd/drbdsetup-84 (drbd-utils) run on a
 * host without DRBD, to record golden data for rdrbd's drbdsetup tests:
 *
 *  - stat("/proc/drbd") succeeds, so drbdsetup-84 does not try modprobe;
 *  - the nlctrl lookup of family "drbd" is rewritten to "SEG6" (a version-1
 *    family of every kernel with IPv6 segment routing, which answers DRBD's
 *    command numbers with EOPNOTSUPP), and nlctrl's answer is patched to
 *    report DRBD's 8-byte user header and an "events" multicast group (id
 *    16, nlctrl's own "notify" group, which anyone may join);
 *  - every message drbdsetup-84 writes to the family is appended to
 *    $CAP84_OUT as "req <nlmsg_flags> <hex from the genlmsghdr on>";
 *  - with $CAP84_REPLIES, the family's answers come from that file instead
 *    of the kernel, one datagram per line: "req <hex>" (a unicast reply
 *    with the last request's sequence number), "<seq> <hex>" (a broadcast
 *    with that sequence number) or "done" (NLMSG_DONE); hex again starts at
 *    the genlmsghdr. Blank lines and lines starting with '#' are skipped.
 *    When the lines run out while drbdsetup-84 still waits, the process
 *    exits with status 99.
 *
 * Build and use: see capture.sh.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

static unsigned short family_id;	/* learned from drbdsetup's first request */
static unsigned int last_seq;
static int sent_request;

static int is_netlink(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return ss.ss_family == AF_NETLINK;
}

static void log_request(const unsigned char *buf, size_t n)
{
	const struct nlmsghdr *h = (const void *)buf;
	const char *out = getenv("CAP84_OUT");
	FILE *f = out ? fopen(out, "a") : stderr;
	size_t i;

	if (!f)
		return;
	fprintf(f, "req 0x%x", h->nlmsg_flags);
	for (i = NLMSG_HDRLEN; i < n && i < h->nlmsg_len; i++)
		fprintf(f, "%s%02x", (i - NLMSG_HDRLEN) % 4 == 0 ? " " : "", buf[i]);
	fprintf(f, "\n");
	if (out)
		fclose(f);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	const struct nlmsghdr *h = buf;

	if (!real)
		real = dlsym(RTLD_NEXT, "write");
	if (n >= NLMSG_HDRLEN && is_netlink(fd)) {
		if (h->nlmsg_type == GENL_ID_CTRL) {
			unsigned char copy[65536];
			unsigned char *p;

			if (n > sizeof(copy))
				return real(fd, buf, n);
			memcpy(copy, buf, n);
			p = memmem(copy, n, "drbd\0", 5);
			if (p)
				memcpy(p, "SEG6", 4);
			return real(fd, copy, n);
		}
		family_id = h->nlmsg_type;
		last_seq = h->nlmsg_seq;
		sent_request = 1;
		log_request(buf, n);
	}
	return real(fd, buf, n);
}

static int fake_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0444;
	return 0;
}

int stat(const char *path, struct stat *st)
{
	static int (*real)(const char *, struct stat *);

	if (!real)
		real = dlsym(RTLD_NEXT, "stat");
	if (strcmp(path, "/proc/drbd") == 0)
		return fake_stat(st);
	return real(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
	static int (*real)(const char *, struct stat64 *);

	if (!real)
		real = dlsym(RTLD_NEXT, "stat64");
	if (strcmp(path, "/proc/drbd") == 0)
		return fake_stat((struct stat *)st);
	return real(path, st);
}

/* nlctrl's answer about SEG6, made to look like drbd's. */
static size_t patch_ctrl(unsigned char *buf, size_t len, size_t cap)
{
	size_t off = 0;

	while (off + NLMSG_HDRLEN <= len) {
		struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
		size_t a, end;
		int has_groups = 0;

		if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > len)
			break;
		if (h->nlmsg_type != GENL_ID_CTRL) {
			off += NLMSG_ALIGN(h->nlmsg_len);
			continue;
		}
		a = off + NLMSG_HDRLEN + GENL_HDRLEN;
		end = off + h->nlmsg_len;
		while (a + 4 <= end) {
			unsigned short alen = *(unsigned short *)(buf + a);
			unsigned short atype = *(unsigned short *)(buf + a + 2) & NLA_TYPE_MASK;

			if (alen < 4)
				break;
			if (atype == CTRL_ATTR_HDRSIZE && alen == 8)
				*(unsigned int *)(buf + a + 4) = 8;
			if (atype == CTRL_ATTR_MCAST_GROUPS)
				has_groups = 1;
			a += NLA_ALIGN(alen);
		}
		if (!has_groups && end == len && NLMSG_ALIGN(len) + 28 <= cap) {
			unsigned char g[28] = {
				28, 0, CTRL_ATTR_MCAST_GROUPS, 0,
				24, 0, 1, 0,
				11, 0, CTRL_ATTR_MCAST_GRP_NAME, 0,
				'e', 'v', 'e', 'n', 't', 's', 0, 0,
				8, 0, CTRL_ATTR_MCAST_GRP_ID, 0,
				GENL_ID_CTRL, 0, 0, 0,
			};
			size_t at = NLMSG_ALIGN(len);

			memset(buf + len, 0, at - len);
			memcpy(buf + at, g, sizeof(g));
			h->nlmsg_len = at + sizeof(g) - off;
			len = at + sizeof(g);
		}
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	return len;
}

static char **lines;
static size_t nlines, next_line;
static int replies_loaded;

static void load_replies(void)
{
	const char *path = getenv("CAP84_REPLIES");
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	replies_loaded = 1;
	if (!path)
		return;
	f = fopen(path, "r");
	if (!f) {
		perror(path);
		exit(98);
	}
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 0 || line[0] == '#')
			continue;
		lines = realloc(lines, (nlines + 1) * sizeof(*lines));
		lines[nlines++] = strdup(line);
	}
	fclose(f);
}

static int faking(void)
{
	if (!replies_loaded)
		load_replies();
	return lines != NULL && sent_request;
}

static void exhausted(void)
{
	fflush(stdout);
	fflush(stderr);
	exit(99);
}

/* Builds the next canned datagram into buf; returns its length. A peek
 * (libgenl peeks to learn the size) leaves it for the next call. */
static ssize_t next_reply(unsigned char *buf, size_t cap, int peek)
{
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	char *line, *hex;
	size_t n = NLMSG_HDRLEN;

	if (next_line >= nlines)
		exhausted();
	line = lines[next_line];
	if (!peek)
		next_line++;
	memset(h, 0, NLMSG_HDRLEN);
	if (strcmp(line, "done") == 0) {
		h->nlmsg_type = NLMSG_DONE;
		h->nlmsg_flags = NLM_F_MULTI;
		h->nlmsg_seq = last_seq;
		h->nlmsg_pid = getpid();
		memset(buf + n, 0, 4);
		n += 4;
		h->nlmsg_len = n;
		return n;
	}
	h->nlmsg_type = family_id;
	if (strncmp(line, "req ", 4) == 0) {
		h->nlmsg_seq = last_seq;
		h->nlmsg_pid = getpid();
		hex = line + 4;
	} else {
		h->nlmsg_seq = strtoul(line, &hex, 10);
		h->nlmsg_pid = 0;
	}
	while (*hex) {
		unsigned int byte;

		if (*hex == ' ') {
			hex++;
			continue;
		}
		if (n >= cap || sscanf(hex, "%2x", &byte) != 1)
			break;
		buf[n++] = byte;
		hex += 2;
	}
	h->nlmsg_len = n;
	return n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, struct msghdr *, int);
	ssize_t n;

	if (!real)
		real = dlsym(RTLD_NEXT, "recvmsg");
	if (msg->msg_iovlen == 1 && is_netlink(fd) && faking()) {
		if (msg->msg_name && msg->msg_namelen >= sizeof(struct sockaddr_nl)) {
			struct sockaddr_nl *nl = msg->msg_name;

			memset(nl, 0, sizeof(*nl));
			nl->nl_family = AF_NETLINK;
			msg->msg_namelen = sizeof(*nl);
		}
		static unsigned char full[65536];
		size_t cap = msg->msg_iov[0].iov_len;

		n = next_reply(full, sizeof(full), flags & MSG_PEEK);
		memcpy(msg->msg_iov[0].iov_base, full, (size_t)n < cap ? (size_t)n : cap);
		msg->msg_flags = (size_t)n > cap ? MSG_TRUNC : 0;
		if ((size_t)n > cap && !(flags & MSG_TRUNC))
			n = cap;
		return n;
	}
	n = real(fd, msg, flags);
	if (n > 0 && msg->msg_iovlen == 1 && is_netlink(fd))
		n = patch_ctrl(msg->msg_iov[0].iov_base, n, msg->msg_iov[0].iov_len);
	return n;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
	static int (*real)(struct pollfd *, nfds_t, int);
	nfds_t i;
	int ready = 0;

	if (!real)
		real = dlsym(RTLD_NEXT, "poll");
	if (!faking())
		return real(fds, nfds, timeout);
	if (next_line >= nlines)
		exhausted();
	for (i = 0; i < nfds; i++) {
		fds[i].revents = 0;
		if ((fds[i].events & POLLIN) && is_netlink(fds[i].fd)) {
			fds[i].revents = POLLIN;
			ready++;
		}
	}
	return ready;
}
