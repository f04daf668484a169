/*
 * bench_ctl.c - create the benchmark's accounts through parleyd's control
 * socket: the same request `parleyctl register USER HOST PASSWORD` sends
 * (netstrings, core/ctl.h), but many at once from one process, so that
 * 19,000 accounts cost the server's hashing time, not 19,000 process starts.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/bench/bench.h"

#define CTL_MAX_INFLIGHT 64
#define CTL_REPLY_MAX 512

struct ctl_call {
	int fd;
	uint32_t user;
	size_t len;
	char reply[CTL_REPLY_MAX];
};

static int netstring(char *out, size_t cap, const char *s)
{
	return snprintf(out, cap, "%zu:%s,", strlen(s), s);
}

static int ctl_start(struct ctl_call *call, uint32_t user)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(B.o.ctl) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "parley-bench: control socket path too long\n");
		return -1;
	}
	strcpy(sa.sun_path, B.o.ctl);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		xmpp_note_error("control socket %s: %s", B.o.ctl, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	char name[256], req[1024];
	snprintf(name, sizeof(name), "%s%u", B.o.prefix, user);
	size_t n = 0;
	n += (size_t)netstring(req + n, sizeof(req) - n, "register");
	n += (size_t)netstring(req + n, sizeof(req) - n, name);
	n += (size_t)netstring(req + n, sizeof(req) - n, B.o.domain);
	n += (size_t)netstring(req + n, sizeof(req) - n, B.o.password);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "0:,");
	/* A request this small fits the socket buffer: one blocking send. */
	if (n >= sizeof(req) || send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) {
		xmpp_note_error("%s: cannot send the request", name);
		close(fd);
		return -1;
	}
	call->fd = fd;
	call->user = user;
	call->len = 0;
	return 0;
}

/* The reply is "STATUS\n" and text up to EOF. */
static void ctl_finish(struct ctl_call *call)
{
	close(call->fd);
	call->fd = -1;
	call->reply[call->len < CTL_REPLY_MAX ? call->len : CTL_REPLY_MAX - 1] = '\0';
	if (strncmp(call->reply, "0\n", 2) == 0) {
		B.st.registered++;
		return;
	}
	if (strstr(call->reply, "exist")) {
		B.st.reg_exists++;
		return;
	}
	B.st.reg_failed++;
	char *nl = strchr(call->reply, '\n');
	xmpp_note_error("%s%u: %s", B.o.prefix, call->user, nl ? nl + 1 : call->reply);
}

int ctl_register_all(void)
{
	struct ctl_call calls[CTL_MAX_INFLIGHT];
	struct pollfd pfd[CTL_MAX_INFLIGHT];
	uint32_t width = B.o.concurrency < CTL_MAX_INFLIGHT ? B.o.concurrency : CTL_MAX_INFLIGHT;
	uint32_t next = 0, active = 0;
	uint64_t t0 = bench_now(), deadline = t0 + (uint64_t)(B.o.timeout * 1e9);
	uint64_t next_progress = t0 + 1000000000ull, last_done = 0, last_t = t0;
	int timed_out = 0;
	for (uint32_t i = 0; i < width; i++)
		calls[i].fd = -1;
	for (;;) {
		for (uint32_t i = 0; i < width && next < B.o.users; i++) {
			if (calls[i].fd >= 0)
				continue;
			if (ctl_start(&calls[i], B.o.first + next) < 0) {
				B.st.reg_failed++;
				if (B.st.reg_failed >= 10 && B.st.registered + B.st.reg_exists == 0)
					next = B.o.users;   /* the server is not there */
			} else {
				active++;
			}
			next++;
		}
		if (active == 0 && next >= B.o.users)
			break;
		uint64_t now = bench_now();
		if (now >= deadline) {
			timed_out = 1;
			break;
		}
		for (uint32_t i = 0; i < width; i++) {
			pfd[i].fd = calls[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		int n = poll(pfd, width, 200);
		if (n < 0 && errno != EINTR) {
			perror("poll");
			return 2;
		}
		for (uint32_t i = 0; i < width && n > 0; i++) {
			if (calls[i].fd < 0 || !pfd[i].revents)
				continue;
			struct ctl_call *call = &calls[i];
			char tmp[CTL_REPLY_MAX];
			ssize_t r = recv(call->fd, tmp, sizeof(tmp), 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0) {
				size_t room = CTL_REPLY_MAX - 1 - call->len;
				size_t take = (size_t)r < room ? (size_t)r : room;
				memcpy(call->reply + call->len, tmp, take);
				call->len += take;
				continue;
			}
			ctl_finish(call);
			active--;
		}
		now = bench_now();
		if (now >= next_progress && !B.o.quiet) {
			uint64_t done = B.st.registered + B.st.reg_exists;
			fprintf(stderr, "[%6.1fs] register done=%llu/%u rate=%.0f/s failed=%llu\n",
				(double)(now - t0) / 1e9, (unsigned long long)done, B.o.users,
				(double)(done - last_done) * 1e9 / (double)(now - last_t),
				(unsigned long long)B.st.reg_failed);
			last_done = done;
			last_t = now;
			next_progress = now + 1000000000ull;
		}
	}
	for (uint32_t i = 0; i < width; i++)
		if (calls[i].fd >= 0)
			close(calls[i].fd);
	double t = (double)(bench_now() - t0) / 1e9;
	uint64_t ok = B.st.registered + B.st.reg_exists;
	printf("RESULT mode=register users=%u registered=%llu existed=%llu failed=%llu time_s=%.2f"
	       " rate=%.0f timed_out=%d\n", B.o.users, (unsigned long long)B.st.registered,
	       (unsigned long long)B.st.reg_exists, (unsigned long long)B.st.reg_failed, t,
	       t > 0 ? (double)ok / t : 0, timed_out);
	return (B.st.reg_failed || timed_out) ? 1 : 0;
}
