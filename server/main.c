/*
 * main.c - parleyd: read the config, open the store, start the shards, bind
 * every listener, then answer on the control socket; stop on SIGTERM.
 *
 * Exit codes: 0 clean stop, 1 configuration error, 2 startup failure (port
 * in use, data_dir locked, store or TLS error), 3 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "core/cfg.h"
#include "core/ctl.h"
#include "core/listen.h"
#include "core/log.h"
#include "core/module.h"
#include "core/pl.h"
#include "core/shard.h"
#include "core/store.h"
#include "core/tls.h"
#include "server/builtin.h"

enum { EXIT_CONFIG = 1, EXIT_STARTUP = 2, EXIT_USAGE = 3 };

#define DEFAULT_CONFIG "/etc/parley/parley.yml"

static struct ev_io signal_io;
static int shutting_down;

struct shard_start {
	pthread_mutex_t mu;
	char err[1100];
	int failed;
};

static void shard_open_here(void *arg)
{
	struct shard_start *ss = arg;
	struct shard *sh = shard_self();
	char err[1024] = "";
	/* Subsystem state first: a bound listener may take traffic at once. */
	int rc = builtin_shard_start(sh, err, sizeof(err));
	if (rc == PL_OK)
		rc = listen_open_all(sh, cfg->listen, cfg->nlisten, err, sizeof(err));
	if (rc != PL_OK) {
		pthread_mutex_lock(&ss->mu);
		if (!ss->failed)
			snprintf(ss->err, sizeof(ss->err), "%s", err);
		ss->failed = 1;
		pthread_mutex_unlock(&ss->mu);
	}
}

static void shard_stop_here(void *arg)
{
	PL_UNUSED(arg);
	struct shard *sh = shard_self();
	builtin_shard_stop(sh);
	listen_close_all(sh);
	ev_loop_stop(sh->loop);
}

static void parleyd_shutdown(void)
{
	if (shutting_down)
		return;
	shutting_down = 1;
	log_info("parleyd: shutting down");
	ctl_close();
	shard_post_all(shard_stop_here, NULL);
}

static void signal_cb(struct ev_loop *loop, struct ev_io *io, int events)
{
	PL_UNUSED(loop);
	PL_UNUSED(events);
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("parleyd: signal %d received", (int)si.ssi_signo);
			parleyd_shutdown();
		}
	}
}

static int mkdir_p(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return PL_ERR;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return PL_ERR;
	return PL_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: parleyd [-c FILE] [--check-config] [--version]\n"
		   "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
		   "  --check-config      validate the configuration and exit\n"
		   "  --list-modules      list the modules built in (\"default\": on without modules:)\n"
		   "exit codes: 0 stopped cleanly, 1 configuration error, 2 startup failure, "
		   "3 usage\n");
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int check_only = 0, list_modules = 0;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "list-modules", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'c': path = optarg; break;
		case 'C': check_only = 1; break;
		case 'V': printf("parleyd %s\n", PACKAGE_VERSION); return 0;
		case 'M': list_modules = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}

	builtin_register();
	if (list_modules) {
		const struct pm_module *mods[64];
		size_t n = pm_all(mods, PL_ARRAY_LEN(mods));
		for (size_t i = 0; i < n; i++)
			printf("%s%s\n", mods[i]->name, mods[i]->default_enabled ? " default" : "");
		return 0;
	}
	struct cfg *conf;
	char err[1024];
	if (cfg_load(path, &conf, err, sizeof(err)) != PL_OK) {
		fprintf(stderr, "parleyd: configuration error: %s\n", err);
		return EXIT_CONFIG;
	}
	cfg_set_current(conf);
	if (check_only) {
		printf("parleyd: configuration %s is valid\n", path);
		cfg_free(conf);
		return 0;
	}
	log_threshold = conf->loglevel;
	signal(SIGPIPE, SIG_IGN);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	int rc = EXIT_STARTUP;
	if (mkdir_p(conf->data_dir) != PL_OK) {
		log_error("parleyd: cannot create data_dir %s: %s", conf->data_dir, strerror(errno));
		goto out_cfg;
	}
	if (store_open(conf->data_dir, conf->store_workers, err, sizeof(err)) != PL_OK) {
		log_error("parleyd: %s", err);
		goto out_cfg;
	}
	if (tls_init(err, sizeof(err)) != PL_OK) {
		log_error("parleyd: %s", err);
		goto out_store;
	}
	if (shards_create(conf->threads) != PL_OK || shards_start() != PL_OK)
		goto out_tls;
	struct shard *s0 = shard_get(0);
	int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	ev_io_init(&signal_io, sfd, signal_cb, NULL);
	ev_io_start(s0->loop, &signal_io, EV_READ);

	/* Modules fill the handler tables before any listener takes traffic;
	 * from then on the tables are read-only. */
	struct shard_start ss = { .failed = 0 };
	if (pm_start_all(err, sizeof(err)) != PL_OK) {
		snprintf(ss.err, sizeof(ss.err), "%s", err);
		ss.failed = 1;
	}
	pthread_mutex_init(&ss.mu, NULL);
	if (!ss.failed)
		shard_call_all_sync(shard_open_here, &ss);
	pthread_mutex_destroy(&ss.mu);
	/* The control socket opens last: `parleyctl status` answering means
	 * every listener is bound. */
	if (!ss.failed && ctl_open(conf->ctl_socket, err, sizeof(err)) != PL_OK) {
		snprintf(ss.err, sizeof(ss.err), "%s", err);
		ss.failed = 1;
	}
	if (ss.failed) {
		log_error("parleyd: %s", ss.err);
		shutting_down = 1;
		shard_post_all(shard_stop_here, NULL);
		shards_run();
	} else {
		ctl_set_stop_handler(parleyd_shutdown);
		log_info("parleyd %s started: %d shard%s, %zu host%s, data_dir %s", PACKAGE_VERSION,
			 conf->threads, conf->threads == 1 ? "" : "s", conf->nhosts,
			 conf->nhosts == 1 ? "" : "s", conf->data_dir);
		shards_run();
		pm_stop_all();
		rc = 0;
	}
	ev_io_stop(s0->loop, &signal_io);
	close(sfd);
	shards_destroy();
out_tls:
	tls_shutdown();
out_store:
	store_close();
out_cfg:
	if (rc == 0)
		log_info("parleyd: stopped");
	cfg_free(conf);
	return rc;
}
