/*
 * parleyctl - send one admin command to a running parleyd.
 *
 *   parleyctl [-s SOCKET] COMMAND [ARGS...]
 *
 * Speaks the control socket protocol (core/ctl.h): the command and its
 * arguments as netstrings ended by "0:,", then reads "STATUS\n" and the
 * text up to EOF. The text goes to stdout when STATUS is 0, to stderr
 * otherwise, and STATUS becomes the exit code. Deliberately standalone: no
 * library beyond libc, so it works when the server's libraries do not.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/lib/parley/parley.sock"
#define REPLY_TIMEOUT_S 120
#define MAX_REPLY (64u << 20)

enum { EXIT_CMD_ERROR = 1, EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3 };

static void usage(FILE *to)
{
	fprintf(to,
		"usage: parleyctl [-s SOCKET] COMMAND [ARGS...]\n"
		"\n"
		"Commands (parleyctl help asks the server for its full list):\n"
		"  status                               is the server running?\n"
		"  register USER HOST PASSWORD          create an account\n"
		"  unregister USER HOST                 delete an account\n"
		"  change_password USER HOST PASSWORD   set an account's password\n"
		"  registered_users HOST                list a host's accounts\n"
		"  connected_users                      list the connected resources\n"
		"  stop                                 stop the server\n"
		"  help                                 list every command\n"
		"\n"
		"SOCKET defaults to $PARLEY_CTL_SOCKET, else " DEFAULT_SOCKET ".\n");
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_netstring(int fd, const char *s, size_t n)
{
	char head[32];
	int hl = snprintf(head, sizeof(head), "%zu:", n);

	if (write_all(fd, head, (size_t)hl) < 0 || write_all(fd, s, n) < 0)
		return -1;
	return write_all(fd, ",", 1);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	/* a server that hangs must not hang the administrator's shell too */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read until EOF into a malloc'd, NUL-terminated buffer. */
static char *read_reply(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		ssize_t r;

		if (cap - n < 2) {
			char *bigger;

			if (cap >= MAX_REPLY) {
				free(buf);
				errno = EMSGSIZE;
				return NULL;
			}
			bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
		r = recv(fd, buf + n, cap - n - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		/* a server that refused a request it did not read to the end
		 * closes with our bytes unread: the kernel reports that as a
		 * reset after its reply, which we keep */
		if (r < 0 && n > 0 && (errno == ECONNRESET || errno == EPIPE))
			break;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	const char *sock = getenv("PARLEY_CTL_SOCKET");
	char *reply, *text, *end;
	size_t len;
	long status;
	int i = 1, fd, send_errno;
	bool sent_ok = true;

	if (!sock || !*sock)
		sock = DEFAULT_SOCKET;
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		if (strcmp(argv[i], "-s") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "parleyctl: -s needs a SOCKET\n");
				return EXIT_USAGE;
			}
			sock = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "parleyctl: unknown option %s\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	/* the protocol ends a request with an empty netstring, so an empty
	 * argument cannot be sent: refuse it here, as the server would */
	for (int k = i; k < argc; k++) {
		if (argv[k][0] == '\0') {
			fprintf(stderr, "parleyctl: argument %d is empty; arguments must not be"
				" empty\n", k - i);
			return EXIT_USAGE;
		}
	}

	fd = connect_to(sock);
	if (fd < 0) {
		fprintf(stderr, "parleyctl: cannot connect to %s: server not running? (%s)\n",
			sock, strerror(errno));
		return EXIT_NOT_RUNNING;
	}
	for (int k = i; k < argc && sent_ok; k++)
		sent_ok = send_netstring(fd, argv[k], strlen(argv[k])) == 0;
	if (sent_ok)
		sent_ok = write_all(fd, "0:,", 3) == 0;
	send_errno = errno;

	/* even if sending failed, the server may have said why before closing */
	reply = read_reply(fd, &len);
	close(fd);
	if (!reply || (!sent_ok && len == 0)) {
		fprintf(stderr, "parleyctl: no reply from %s: %s\n", sock,
			strerror(sent_ok ? errno : send_errno));
		free(reply);
		return EXIT_CMD_ERROR;
	}
	errno = 0;
	status = strtol(reply, &end, 10);
	if (end == reply || *end != '\n' || errno || status < 0 || status > 125) {
		fprintf(stderr, "parleyctl: %s answered something that is not a parleyd reply\n",
			sock);
		free(reply);
		return EXIT_CMD_ERROR;
	}
	text = end + 1;
	fputs(text, status == 0 ? stdout : stderr);
	free(reply);
	return (int)status;
}
