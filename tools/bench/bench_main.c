/*
 * bench_main.c - parley-bench: options, the phases of a run, progress lines
 * and the summary.
 *
 *   parley-bench idle|chat|register [options]     (--help lists them)
 *
 * A run is: log in N users with at most C logins in flight; then either hold
 * them (idle: sessions held, login rate, server RSS per session) or let
 * partner pairs (user1<->user2, user3<->user4, ...) exchange messages
 * (chat: closed loop with K in flight per sender, or open loop at --rate
 * messages/s in total; delivered messages/s and latency quantiles).
 * Progress goes to stderr once a second; the last line on stdout is
 * "RESULT key=value ...". Every phase is bounded, and --timeout ends the
 * whole run whatever happens.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tools/bench/bench.h"

#define NS_PER_S 1000000000ull
#define MAX_EVENTS 1024
/* Open loop: how often due messages are sent. Coarser ticks would show
 * up as latency that is the generator's, not the server's. */
#define RATE_TICK_NS 200000ull

struct bench B;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: parley-bench idle|chat|register [options]\n"
		"\n"
		"  idle       log in --users sessions and hold them for --duration seconds;\n"
		"             with --server-pid, report the server's RSS per session\n"
		"  chat       log in --users sessions (an even number); pairs exchange\n"
		"             messages: closed loop (--inflight K per sender) or open\n"
		"             loop (--rate R messages/s in total)\n"
		"  register   create the accounts: --ctl SOCKET (parleyd's control\n"
		"             socket) or --ibr (XEP-0077 in-band registration)\n"
		"\n"
		"connection:\n"
		"  --server ADDR       IPv4 address to dial (127.0.0.1)\n"
		"  --port N            c2s port (5222)\n"
		"  --domain NAME       XMPP domain (localhost)\n"
		"  --tls MODE          none | starttls | direct (none)\n"
		"  --src-addrs N       spread sources over 127.0.0.B..B+N-1 (1 per 20000 users)\n"
		"  --src-base B        first source address 127.0.0.B (1)\n"
		"  --sasl MECH         plain | scram-sha-1 | scram-sha-256 (plain)\n"
		"  --no-pipeline       wait for stream features at each step\n"
		"  --no-presence       do not send initial presence\n"
		"accounts:\n"
		"  --users N           how many (1000)\n"
		"  --first N           number of the first user (1): users PREFIX<first>...\n"
		"  --prefix P          user name prefix (user)\n"
		"  --password P        common password (bench)\n"
		"  --resource R        resource to bind (bench)\n"
		"  --concurrency C     logins or registrations in flight (100)\n"
		"timing:\n"
		"  --duration S        idle: hold time; chat: measurement window (10)\n"
		"  --warmup S          chat: exchange before measuring (2)\n"
		"  --drain S           chat: wait for late messages after the window (3)\n"
		"  --timeout S         end the run after S seconds whatever happens (300)\n"
		"chat:\n"
		"  --inflight K        closed loop: messages in flight per sender (4)\n"
		"  --rate R            open loop: messages/s in total, scheduled by timer\n"
		"  --body N            message body size in bytes (64)\n"
		"reporting:\n"
		"  --server-pid PID    read the server's VmRSS before and after login\n"
		"  --quiet             no progress lines\n");
}

static double parse_num(const char *opt, const char *v, double min, double max)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < min || d > max || isnan(d)) {
		fprintf(stderr, "parley-bench: --%s: expected a number in [%g, %g], got '%s'\n",
			opt, min, max, v);
		exit(2);
	}
	return d;
}

static void parse_args(int argc, char **argv)
{
	struct bench_opts *o = &B.o;
	*o = (struct bench_opts){
		.server = "127.0.0.1", .port = 5222, .domain = "localhost",
		.prefix = "user", .password = "bench", .resource = "bench",
		.users = 1000, .first = 1, .concurrency = 100, .tls = TLS_NONE,
		.pipeline = true, .presence = true, .duration = 10, .warmup = 2,
		.drain = 3, .timeout = 300, .inflight = 4, .body = 64, .src_base = 1,
	};
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		exit(argc < 2 ? 2 : 0);
	}
	if (strcmp(argv[1], "idle") == 0)
		o->mode = MODE_IDLE;
	else if (strcmp(argv[1], "chat") == 0)
		o->mode = MODE_CHAT;
	else if (strcmp(argv[1], "register") == 0)
		o->mode = MODE_REGISTER;
	else {
		fprintf(stderr, "parley-bench: unknown mode '%s' (idle, chat or register)\n", argv[1]);
		exit(2);
	}
	enum { O_SERVER = 256, O_PORT, O_DOMAIN, O_TLS, O_SRC_ADDRS, O_SRC_BASE, O_NO_PIPELINE,
	       O_NO_PRESENCE, O_USERS, O_FIRST, O_PREFIX, O_PASSWORD, O_RESOURCE, O_CONC,
	       O_DURATION, O_WARMUP, O_DRAIN, O_TIMEOUT, O_INFLIGHT, O_RATE, O_BODY, O_PID,
	       O_QUIET, O_CTL, O_IBR, O_SASL, O_HELP };
	static const struct option longopts[] = {
		{ "server", 1, NULL, O_SERVER }, { "port", 1, NULL, O_PORT },
		{ "domain", 1, NULL, O_DOMAIN }, { "host", 1, NULL, O_DOMAIN },
		{ "tls", 1, NULL, O_TLS }, { "src-addrs", 1, NULL, O_SRC_ADDRS },
		{ "src-base", 1, NULL, O_SRC_BASE }, { "no-pipeline", 0, NULL, O_NO_PIPELINE },
		{ "no-presence", 0, NULL, O_NO_PRESENCE }, { "users", 1, NULL, O_USERS },
		{ "first", 1, NULL, O_FIRST }, { "prefix", 1, NULL, O_PREFIX },
		{ "password", 1, NULL, O_PASSWORD }, { "resource", 1, NULL, O_RESOURCE },
		{ "concurrency", 1, NULL, O_CONC }, { "duration", 1, NULL, O_DURATION },
		{ "warmup", 1, NULL, O_WARMUP }, { "drain", 1, NULL, O_DRAIN },
		{ "timeout", 1, NULL, O_TIMEOUT }, { "inflight", 1, NULL, O_INFLIGHT },
		{ "rate", 1, NULL, O_RATE }, { "body", 1, NULL, O_BODY },
		{ "server-pid", 1, NULL, O_PID }, { "quiet", 0, NULL, O_QUIET },
		{ "ctl", 1, NULL, O_CTL }, { "ibr", 0, NULL, O_IBR }, { "sasl", 1, NULL, O_SASL },
		{ "help", 0, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	optind = 2;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *v = optarg;
		const char *name = "?";
		for (const struct option *lo = longopts; lo->name; lo++)
			if (lo->val == ch)
				name = lo->name;
		switch (ch) {
		case O_SERVER: o->server = v; break;
		case O_PORT: o->port = (int)parse_num(name, v, 1, 65535); break;
		case O_DOMAIN: o->domain = v; break;
		case O_TLS:
			if (strcmp(v, "none") == 0)
				o->tls = TLS_NONE;
			else if (strcmp(v, "starttls") == 0)
				o->tls = TLS_STARTTLS;
			else if (strcmp(v, "direct") == 0)
				o->tls = TLS_DIRECT;
			else {
				fprintf(stderr, "parley-bench: --tls: none, starttls or direct\n");
				exit(2);
			}
			break;
		case O_SASL:
			if (strcmp(v, "plain") == 0)
				o->sasl = SASL_PLAIN;
			else if (strcmp(v, "scram-sha-1") == 0)
				o->sasl = SASL_SCRAM_SHA1;
			else if (strcmp(v, "scram-sha-256") == 0)
				o->sasl = SASL_SCRAM_SHA256;
			else {
				fprintf(stderr, "parley-bench: --sasl: plain, scram-sha-1 or scram-sha-256\n");
				exit(2);
			}
			break;
		case O_SRC_ADDRS: o->src_addrs = (uint32_t)parse_num(name, v, 1, 250); break;
		case O_SRC_BASE: o->src_base = (uint32_t)parse_num(name, v, 1, 254); break;
		case O_NO_PIPELINE: o->pipeline = false; break;
		case O_NO_PRESENCE: o->presence = false; break;
		case O_USERS: o->users = (uint32_t)parse_num(name, v, 1, 1000000); break;
		case O_FIRST: o->first = (uint32_t)parse_num(name, v, 0, 1e9); break;
		case O_PREFIX: o->prefix = v; break;
		case O_PASSWORD: o->password = v; break;
		case O_RESOURCE: o->resource = v; break;
		case O_CONC: o->concurrency = (uint32_t)parse_num(name, v, 1, 100000); break;
		case O_DURATION: o->duration = parse_num(name, v, 0, 86400); break;
		case O_WARMUP: o->warmup = parse_num(name, v, 0, 3600); break;
		case O_DRAIN: o->drain = parse_num(name, v, 0, 3600); break;
		case O_TIMEOUT: o->timeout = parse_num(name, v, 0.1, 86400); break;
		case O_INFLIGHT: o->inflight = (uint32_t)parse_num(name, v, 1, 100000); break;
		case O_RATE: o->rate = parse_num(name, v, 0, 1e8); break;
		case O_BODY: o->body = (uint32_t)parse_num(name, v, 0, 4096); break;
		case O_PID: o->server_pid = (int)parse_num(name, v, 1, 1 << 22); break;
		case O_QUIET: o->quiet = true; break;
		case O_CTL: o->ctl = v; break;
		case O_IBR: o->ibr = true; break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "parley-bench: unexpected argument '%s'\n", argv[optind]);
		exit(2);
	}
	if (o->mode == MODE_CHAT && o->users % 2) {
		fprintf(stderr, "parley-bench: chat needs an even number of users (pairs)\n");
		exit(2);
	}
	if (o->mode == MODE_REGISTER && !o->ctl == !o->ibr) {
		fprintf(stderr, "parley-bench: register needs exactly one of --ctl SOCKET or --ibr\n");
		exit(2);
	}
	if (!o->src_addrs)
		o->src_addrs = 1 + (o->users - 1) / 20000;
	if (o->src_base + o->src_addrs > 255) {
		fprintf(stderr, "parley-bench: --src-base + --src-addrs must stay within 127.0.0.1-254\n");
		exit(2);
	}
}

/* ---- measurements ---- */

static long rss_kb(int pid)
{
	if (pid <= 0)
		return -1;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* CPU seconds (user + system, all threads) a process has used, or -1. */
static double proc_cpu_s(int pid)
{
	if (pid <= 0)
		return -1;
	char path[64], line[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	/* The command name may hold spaces: fields count from its ')'. */
	char *p = strrchr(line, ')');
	unsigned long long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Per-core busy and total jiffies from /proc/stat: how busy each core was
 * during the window, so that time taken by other processes on the
 * server's core shows up next to the server's own CPU use. */
#define MAX_CORES 16
struct core_sample {
	int n;
	unsigned long long busy[MAX_CORES], total[MAX_CORES];
};

static void cores_sample(struct core_sample *cs)
{
	cs->n = 0;
	FILE *f = fopen("/proc/stat", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f) && cs->n < MAX_CORES) {
		unsigned long long v[8] = { 0 };
		int cpu;
		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 9 || cpu != cs->n)
			continue;
		/* user nice system idle iowait irq softirq steal */
		cs->total[cs->n] = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		cs->busy[cs->n] = cs->total[cs->n] - v[3] - v[4];
		cs->n++;
	}
	fclose(f);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)B.o.users + 16)
		fprintf(stderr, "parley-bench: warning: %u users but only %llu open files allowed\n",
			B.o.users, (unsigned long long)rl.rlim_cur);
}

/* ---- phases ---- */

static uint64_t login_t_start, login_t_end;
/* CPU used during the measurement window: who was the bottleneck? */
static double win_cpu_server0 = -1, win_cpu_server = -1, win_cpu_self0, win_cpu_self;
static struct core_sample win_cores0, win_cores1;
static long rss_before = -1, rss_after = -1;
static bool timed_out;

void bench_login_done(struct bconn *c, bool ok)
{
	B.in_progress--;
	if (B.o.mode == MODE_REGISTER)
		return;   /* counted by the caller */
	if (ok) {
		B.st.logins_ok++;
		B.online++;
		hist_add(&B.st.login_lat, bench_now() - c->t_start);
	} else {
		B.st.logins_failed++;
	}
}

static void start_logins(uint64_t now)
{
	while (B.next_login < B.o.users && B.in_progress < B.o.concurrency) {
		struct bconn *c = &B.conns[B.next_login++];
		c->t_start = now;
		B.in_progress++;
		if (net_connect(c) < 0) {
			c->state = BC_DEAD;
			B.in_progress--;
			if (B.o.mode == MODE_REGISTER)
				B.st.reg_failed++;
			else
				B.st.logins_failed++;
		}
	}
}

static void enter(enum bench_phase ph, uint64_t now)
{
	B.phase = ph;
	B.t_phase = now;
	if (ph == PH_MEASURE) {
		B.t_win_start = now;
		B.t_win_end = now + (uint64_t)(B.o.duration * NS_PER_S);
		win_cpu_server0 = proc_cpu_s(B.o.server_pid);
		win_cpu_self0 = self_cpu_s();
		cores_sample(&win_cores0);
	}
	if (ph == PH_DRAIN) {
		double srv = proc_cpu_s(B.o.server_pid);
		if (srv >= 0 && win_cpu_server0 >= 0)
			win_cpu_server = srv - win_cpu_server0;
		win_cpu_self = self_cpu_s() - win_cpu_self0;
		cores_sample(&win_cores1);
	}
	if (ph == PH_WARMUP && B.o.rate <= 0)
		for (uint32_t i = 0; i < B.o.users; i++)
			xmpp_chat_fill(&B.conns[i], now);
}

/* Open loop: send every message whose scheduled time has come. */
static void rate_send(uint64_t now)
{
	uint64_t until = now;
	if (B.phase == PH_MEASURE && until > B.t_win_end)
		until = B.t_win_end;
	double gap = 1e9 / B.o.rate;
	for (;;) {
		uint64_t when = B.t_rate0 + (uint64_t)((double)B.rate_next * gap);
		if (when > until)
			break;
		struct bconn *c = NULL;
		for (uint32_t tries = 0; tries < B.o.users; tries++) {
			struct bconn *t = &B.conns[B.rate_rr];
			B.rate_rr = (B.rate_rr + 1) % B.o.users;
			if (t->state == BC_ONLINE && B.conns[t->idx ^ 1u].state == BC_ONLINE) {
				c = t;
				break;
			}
		}
		if (!c)
			return;
		xmpp_chat_send(c, when);
		B.rate_next++;
	}
}

static uint64_t next_rate_due(void)
{
	return B.t_rate0 + (uint64_t)((double)B.rate_next * (1e9 / B.o.rate));
}

/* Everything sent has arrived: nothing is left for the drain to wait for. */
static bool all_delivered(void)
{
	return B.st.received >= B.st.sent;
}

/* Moves between phases; returns the time of the next phase deadline. */
static uint64_t advance(uint64_t now)
{
	uint64_t dur = (uint64_t)(B.o.duration * NS_PER_S);
	switch (B.phase) {
	case PH_LOGIN:
		start_logins(now);
		if (B.next_login < B.o.users || B.in_progress > 0)
			return UINT64_MAX;
		login_t_end = now;
		if (B.o.mode == MODE_REGISTER) {
			enter(PH_DONE, now);
		} else if (B.o.mode == MODE_IDLE) {
			enter(PH_HOLD, now);
		} else {
			B.t_rate0 = now;
			enter(PH_WARMUP, now);
		}
		return advance(now);
	case PH_HOLD:
		if (now - B.t_phase >= dur) {
			rss_after = rss_kb(B.o.server_pid);
			enter(PH_DONE, now);
			return UINT64_MAX;
		}
		return B.t_phase + dur;
	case PH_WARMUP: {
		uint64_t w = (uint64_t)(B.o.warmup * NS_PER_S);
		if (now - B.t_phase >= w) {
			enter(PH_MEASURE, now);
			return advance(now);
		}
		return B.t_phase + w;
	}
	case PH_MEASURE:
		if (now >= B.t_win_end) {
			enter(PH_DRAIN, now);
			return advance(now);
		}
		return B.t_win_end;
	case PH_DRAIN: {
		uint64_t d = (uint64_t)(B.o.drain * NS_PER_S);
		if (all_delivered() || now - B.t_phase >= d || B.online == 0) {
			enter(PH_DONE, now);
			return UINT64_MAX;
		}
		return B.t_phase + d;
	}
	case PH_DONE:
		break;
	}
	return UINT64_MAX;
}

/* ---- reporting ---- */

static const char *phase_name(void)
{
	static const char *const names[] = { "login", "hold", "warmup", "measure", "drain", "done" };
	return names[B.phase];
}

static void progress(uint64_t now, uint64_t *last_t, uint64_t *last_rx, uint64_t *last_login)
{
	double dt = secs(now - *last_t);
	if (dt <= 0)
		return;
	double t = secs(now - B.t0);
	if (B.o.mode == MODE_REGISTER) {
		uint64_t done = B.st.registered + B.st.reg_exists;
		fprintf(stderr, "[%6.1fs] register done=%llu/%u rate=%.0f/s failed=%llu\n", t,
			(unsigned long long)done, B.o.users, (double)(done - *last_login) / dt,
			(unsigned long long)B.st.reg_failed);
		*last_login = done;
	} else if (B.o.mode != MODE_CHAT || B.phase == PH_LOGIN) {
		long rss = rss_kb(B.o.server_pid);
		fprintf(stderr, "[%6.1fs] %-7s sessions=%u/%u logins/s=%.0f failed=%llu",
			t, phase_name(), B.online, B.o.users,
			(double)(B.st.logins_ok - *last_login) / dt,
			(unsigned long long)B.st.logins_failed);
		if (rss >= 0)
			fprintf(stderr, " server_rss=%.1fMiB", (double)rss / 1024);
		fputc('\n', stderr);
		*last_login = B.st.logins_ok;
	} else {
		fprintf(stderr, "[%6.1fs] %-7s sessions=%u msgs/s=%.0f p50=%.2fms p99=%.2fms "
			"max=%.2fms errors=%llu backlog=%lluKiB\n", t, phase_name(), B.online,
			(double)(B.st.received - *last_rx) / dt,
			ms(hist_quantile(&B.st.tick_lat, 0.5)), ms(hist_quantile(&B.st.tick_lat, 0.99)),
			ms(B.st.tick_lat.max),
			(unsigned long long)(B.st.stanza_errors + B.st.stream_errors + B.st.dropped),
			(unsigned long long)(B.out_pending / 1024));
	}
	hist_reset(&B.st.tick_lat);
	*last_rx = B.st.received;
	*last_t = now;
}

static int summary(void)
{
	const struct bench_stats *s = &B.st;
	double login_s = secs(login_t_end > login_t_start ? login_t_end - login_t_start : 0);
	printf("RESULT mode=%s", B.o.mode == MODE_IDLE ? "idle" : B.o.mode == MODE_CHAT ? "chat" : "register");
	if (B.o.mode == MODE_REGISTER) {
		printf(" users=%u registered=%llu existed=%llu failed=%llu time_s=%.2f rate=%.0f",
		       B.o.users, (unsigned long long)s->registered, (unsigned long long)s->reg_exists,
		       (unsigned long long)s->reg_failed, login_s,
		       login_s > 0 ? (double)(s->registered + s->reg_exists) / login_s : 0);
		printf(" timed_out=%d\n", timed_out);
		return (s->reg_failed || timed_out) ? 1 : 0;
	}
	static const char *const mechs[] = { "plain", "scram-sha-1", "scram-sha-256" };
	printf(" users=%u sasl=%s tls=%s sessions=%u logged_in=%llu login_failed=%llu dropped=%llu"
	       " login_time_s=%.2f login_rate=%.0f login_p50_ms=%.1f login_p99_ms=%.1f",
	       B.o.users, mechs[B.o.sasl], B.o.tls == TLS_NONE ? "none" : B.o.tls == TLS_STARTTLS ? "starttls" : "direct",
	       B.online, (unsigned long long)s->logins_ok, (unsigned long long)s->logins_failed,
	       (unsigned long long)s->dropped, login_s,
	       login_s > 0 ? (double)s->logins_ok / login_s : 0,
	       ms(hist_quantile(&s->login_lat, 0.5)), ms(hist_quantile(&s->login_lat, 0.99)));
	if (B.o.mode == MODE_IDLE) {
		printf(" rss_before_kb=%ld rss_after_kb=%ld", rss_before, rss_after);
		if (rss_before >= 0 && rss_after >= 0 && B.online > 0) {
			double per = (double)(rss_after - rss_before) * 1024.0 / B.online;
			printf(" rss_per_session_b=%.0f rss_per_session_kib=%.2f", per, per / 1024);
		}
	} else {
		double win = B.o.duration;
		uint64_t lost = s->sent > s->received ? s->sent - s->received : 0;
		printf(" loop=%s inflight=%u rate=%.0f body=%u window_s=%.1f sent=%llu delivered=%llu"
		       " window_sent=%llu window_delivered=%llu msgs_per_s=%.0f p50_ms=%.3f"
		       " p99_ms=%.3f p999_ms=%.3f max_ms=%.3f lost=%llu stanza_errors=%llu"
		       " stream_errors=%llu seq_errors=%llu bad_messages=%llu backlog_max_kib=%llu",
		       B.o.rate > 0 ? "open" : "closed", B.o.rate > 0 ? 0 : B.o.inflight, B.o.rate,
		       B.o.body, win, (unsigned long long)s->sent, (unsigned long long)s->received,
		       (unsigned long long)s->win_sent, (unsigned long long)s->win_received,
		       win > 0 ? (double)s->win_received / win : 0,
		       ms(hist_quantile(&s->lat, 0.5)), ms(hist_quantile(&s->lat, 0.99)),
		       ms(hist_quantile(&s->lat, 0.999)), ms(s->lat.max), (unsigned long long)lost,
		       (unsigned long long)s->stanza_errors, (unsigned long long)s->stream_errors,
		       (unsigned long long)s->seq_errors, (unsigned long long)s->bad_messages,
		       (unsigned long long)(s->backlog_max / 1024));
		if (win > 0)
			printf(" bench_cpu_pct=%.0f", 100 * win_cpu_self / win);
		if (win > 0 && win_cpu_server >= 0)
			printf(" server_cpu_pct=%.0f", 100 * win_cpu_server / win);
		if (win_cores1.n > 0 && win_cores1.n == win_cores0.n) {
			printf(" core_busy_pct=");
			for (int i = 0; i < win_cores1.n; i++) {
				unsigned long long t = win_cores1.total[i] - win_cores0.total[i];
				unsigned long long b = win_cores1.busy[i] - win_cores0.busy[i];
				printf("%s%.0f", i ? "," : "", t ? 100.0 * (double)b / (double)t : 0);
			}
		}
	}
	printf(" timed_out=%d\n", timed_out);
	fflush(stdout);
	bool bad = s->logins_failed || s->dropped || timed_out || B.online < B.o.users;
	if (B.o.mode == MODE_CHAT)
		bad = bad || s->stanza_errors || s->stream_errors || s->seq_errors ||
		      s->bad_messages || s->received < s->sent;
	return bad ? 1 : 0;
}

/* ---- the loop ---- */

static int run(void)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t now = bench_now();
	uint64_t deadline = now + (uint64_t)(B.o.timeout * NS_PER_S);
	uint64_t next_progress = now + NS_PER_S, last_t = now, last_rx = 0, last_login = 0;
	B.t0 = login_t_start = now;
	rss_before = rss_kb(B.o.server_pid);
	if (B.o.server_pid && rss_before < 0)
		fprintf(stderr, "parley-bench: warning: cannot read /proc/%d/status\n", B.o.server_pid);
	enter(PH_LOGIN, now);
	for (;;) {
		now = bench_now();
		uint64_t due = advance(now);
		if (B.phase == PH_DONE)
			break;
		if (interrupted || now >= deadline) {
			timed_out = !interrupted;
			if (B.o.mode == MODE_IDLE && rss_after < 0)
				rss_after = rss_kb(B.o.server_pid);
			if (!login_t_end)
				login_t_end = now;
			fprintf(stderr, "parley-bench: %s in phase %s\n",
				interrupted ? "interrupted" : "timed out", phase_name());
			break;
		}
		bool sending = B.o.rate > 0 && (B.phase == PH_WARMUP || B.phase == PH_MEASURE);
		if (sending) {
			rate_send(now);
			uint64_t r = next_rate_due();
			if (r < due)
				due = r;
		}
		net_flush_all();
		if (now >= next_progress) {
			if (!B.o.quiet)
				progress(now, &last_t, &last_rx, &last_login);
			next_progress += NS_PER_S;
			if (next_progress <= now)
				next_progress = now + NS_PER_S;
		}
		if (next_progress < due)
			due = next_progress;
		if (deadline < due)
			due = deadline;
		uint64_t wait = due > now ? due - now : 0;
		if (sending && wait > RATE_TICK_NS)
			wait = RATE_TICK_NS;
		struct timespec ts = { .tv_sec = (time_t)(wait / NS_PER_S),
				       .tv_nsec = (long)(wait % NS_PER_S) };
		int n = epoll_pwait2(B.ep, evs, MAX_EVENTS, &ts, NULL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("epoll_pwait2");
			return 2;
		}
		for (int i = 0; i < n; i++) {
			struct bconn *c = evs[i].data.ptr;
			if (c->fd >= 0)
				net_event(c, evs[i].events);
		}
	}
	net_flush_all();
	if (!B.o.quiet)
		progress(bench_now(), &last_t, &last_rx, &last_login);
	B.phase = PH_DONE;
	return summary();
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	raise_fd_limit();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (B.o.mode == MODE_REGISTER && B.o.ctl)
		return ctl_register_all();
	B.conns = calloc(B.o.users, sizeof(*B.conns));
	if (!B.conns) {
		perror("calloc");
		return 2;
	}
	for (uint32_t i = 0; i < B.o.users; i++) {
		B.conns[i].fd = -1;
		B.conns[i].idx = i;
	}
	if (net_init() < 0)
		return 2;
	int rc = run();
	for (uint32_t i = 0; i < B.o.users; i++)
		if (B.conns[i].fd >= 0)
			net_close(&B.conns[i]);
	return rc;
}
