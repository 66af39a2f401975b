/*
 * daemon.c - `perch daemon`: the long-running host (DESIGN.md section 5).
 *
 * Start: lock the state directory, load a version of every plugin, read
 * the workflow records, adopt what was running, open the control socket.
 * Then the control thread loops on the socket, the signal pipe and a wake
 * eventfd: it accepts connections, serves reloads (SIGHUP or a request),
 * joins finished threads, unloads retired plugin versions, applies
 * retention and destroys leftovers after adopt_grace.
 *
 * Shutdown (SIGTERM or SIGINT): no more submissions; queued workflows stay
 * queued for the next start; running ones may finish for shutdown_timeout,
 * after which those whose backend can resume are left for the next daemon
 * to adopt and the others are cancelled.  A second signal cancels every
 * running workflow at once; a third cuts their cleanup short.
 */
#include "config.h"

#include "ctx.h"
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* How often retention runs. */
#define PRUNE_EVERY_MS (60 * 1000)

/* The handler writes the signal number here; the control thread reads it.
 * Global because a handler has no other way to reach the daemon. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (write(signal_pipe[1], &b, 1) < 0) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

void perch_daemon_wake(perch_daemon *d)
{
	uint64_t one = 1;
	if (write(d->wake_fd, &one, sizeof one) < 0) {
		/* EAGAIN: it is awake already */
	}
}

void perch_daemon_log(const perch_daemon *d, int level, const char *fmt, ...)
{
	if (level > d->log_level)
		return;
	perch_buf b = {0};
	perch_buf_puts(&b, level == PERCH_LOG_ERROR  ? "perch: error: "
			   : level == PERCH_LOG_WARN ? "perch: warning: "
						     : "perch: ");
	va_list ap;
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	perch_buf_putc(&b, '\n');
	perch_write_all(2, b.data, b.len); /* one write: lines never interleave */
	perch_buf_free(&b);
}

/* Plugin copies of an earlier run are mapped by nobody now. */
static void clear_plugin_copies(const char *dir)
{
	DIR *dd = opendir(dir);
	if (dd == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(dd)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char *p = perch_xasprintf("%s/%s", dir, de->d_name);
		unlink(p);
		free(p);
	}
	closedir(dd);
}

static int make_parent(const char *path, char **err)
{
	char *dir = perch_xstrdup(path);
	char *slash = strrchr(dir, '/');
	int rc = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		for (char *p = dir + 1;; p++) {
			if (*p != '/' && *p != '\0')
				continue;
			char c = *p;
			*p = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
				*err = perch_xasprintf("cannot create %s: %s", dir, strerror(errno));
				rc = -1;
				break;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(dir);
	return rc;
}

static int open_socket(perch_daemon *d, char **err)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(d->socket_path) >= sizeof sa.sun_path) {
		*err = perch_xasprintf("control socket path %s is too long (at most %zu bytes)",
				       d->socket_path, sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, d->socket_path, strlen(d->socket_path) + 1);
	if (make_parent(d->socket_path, err) != 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*err = perch_xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	/* A socket file nobody answers on is a leftover of a crash. */
	struct stat st;
	if (lstat(d->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*err = perch_xasprintf("%s exists and is not a socket", d->socket_path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int rc = probe >= 0 ? connect(probe, (struct sockaddr *)&sa, sizeof sa) : -1;
		if (probe >= 0)
			close(probe);
		if (rc == 0) {
			*err = perch_xasprintf("another perch daemon answers on %s", d->socket_path);
			close(fd);
			return -1;
		}
		unlink(d->socket_path);
	}
	/* 0660 from the start: no moment where others may connect. */
	mode_t old = umask(0117);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (rc != 0 || chmod(d->socket_path, 0660) != 0 || listen(fd, 128) != 0) {
		*err = perch_xasprintf("cannot listen on %s: %s", d->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static bool signals_start(void)
{
	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return false;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return true;
}

static void signals_stop(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (signal_pipe[0] >= 0) {
		close(signal_pipe[0]);
		close(signal_pipe[1]);
	}
	signal_pipe[0] = signal_pipe[1] = -1;
}

static void on_stop_signal(perch_daemon *d, int sig)
{
	pthread_mutex_lock(&d->lock);
	d->signals++;
	int n = d->signals;
	if (n == 1) {
		d->stopping = true;
		d->stop_deadline_ms = perch_mono_ms() + d->shutdown_ms;
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	if (n == 1) {
		perch_daemon_log(d, PERCH_LOG_INFO, "received %s: accepting no workflows; %zu running "
						    "may finish within %lld ms (again to cancel "
						    "them)", strsignal(sig), d->n_running,
				 (long long)d->shutdown_ms);
		return;
	}
	pthread_mutex_lock(&d->lock);
	for (drun *r = d->runs; r; r = r->next) {
		if (r->superseded || r->returned)
			continue; /* abandoned runs' waits must not be cancelled */
		perch_ctx_cancel(n == 2 ? r->wf_ctx : r->cleanup);
	}
	pthread_mutex_unlock(&d->lock);
	perch_daemon_log(d, PERCH_LOG_INFO, "received %s again: %s", strsignal(sig),
			 n == 2 ? "cancelling every running workflow" : "cutting cleanup short");
}

static void loop(perch_daemon *d)
{
	for (;;) {
		int64_t now = perch_mono_ms();
		pthread_mutex_lock(&d->lock);
		bool stopping = d->stopping;
		bool idle = d->n_running == 0;
		bool acted = d->stop_acted;
		int64_t stop_at = d->stop_deadline_ms;
		pthread_mutex_unlock(&d->lock);
		if (stopping && idle)
			break;
		if (stopping && !acted && now >= stop_at) {
			pthread_mutex_lock(&d->lock);
			d->stop_acted = true;
			pthread_mutex_unlock(&d->lock);
			perch_daemon_leave_or_cancel(d);
			continue;
		}
		if (d->orphan_deadline_ms && now >= d->orphan_deadline_ms)
			perch_daemon_sweep_orphans(d);
		if (now >= d->next_prune_ms) {
			perch_daemon_prune(d);
			d->next_prune_ms = now + PRUNE_EVERY_MS;
		}
		int timeout = 1000;
		if (stopping && !acted && stop_at - now < timeout)
			timeout = stop_at - now < 0 ? 0 : (int)(stop_at - now);
		struct pollfd p[3] = {
			{.fd = signal_pipe[0], .events = POLLIN},
			{.fd = d->wake_fd, .events = POLLIN},
			{.fd = d->listen_fd, .events = POLLIN},
		};
		int rc = poll(p, 3, timeout);
		if (rc < 0 && errno != EINTR) {
			perch_daemon_log(d, PERCH_LOG_ERROR, "poll: %s", strerror(errno));
			break;
		}
		if (rc <= 0)
			continue;
		if (p[0].revents) {
			unsigned char sig;
			while (read(signal_pipe[0], &sig, 1) == 1) {
				if (sig == SIGHUP) {
					perch_daemon_log(d, PERCH_LOG_INFO, "received SIGHUP: reloading");
					if (!stopping)
						free(perch_daemon_reload(d));
				} else {
					on_stop_signal(d, sig);
				}
			}
		}
		if (p[1].revents) {
			uint64_t v;
			if (read(d->wake_fd, &v, sizeof v) < 0) {
				/* spurious */
			}
		}
		if (p[2].revents)
			perch_daemon_accept(d);
		perch_daemon_serve_reloads(d);
		perch_daemon_reap_runs(d);
		perch_daemon_reap_conns(d, false);
		perch_daemon_collect(d);
		if (p[1].revents)
			perch_daemon_prune(d);
	}
}

int perch_cmd_daemon(perch_app *app)
{
	if (app->n_args != 0) {
		fprintf(stderr, "perch: daemon takes no arguments, got %zu\nTry 'perch daemon "
				"--help'.\n", app->n_args);
		return PERCH_EXIT_USAGE;
	}
	perch_daemon *d = perch_xcalloc(1, sizeof *d);
	d->app = app;
	d->log_level = app->reg->log_level;
	d->started_ns = perch_real_ns();
	d->listen_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	pthread_mutex_init(&d->submit_lock, NULL);
	atomic_init(&d->closing, false);
	perch_daemon_settings(d, app->conf);
	const char *sock = perch_app_string(app, "socket");
	if (sock == NULL || *sock == '\0')
		sock = app->conf->control_socket ? app->conf->control_socket : PERCH_DAEMON_SOCKET;
	d->socket_path = perch_xstrdup(sock);
	const char *dir = app->conf->state_dir ? app->conf->state_dir : PERCH_DAEMON_STATE_DIR;
	int rc = PERCH_EXIT_BACKEND;
	char *err = NULL;
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->store = perch_store_open(dir, &err);
	if (d->store == NULL || d->wake_fd < 0) {
		fprintf(stderr, "perch: %s\n", err ? err : "eventfd failed");
		free(err);
		goto out;
	}
	if (d->log_level >= PERCH_LOG_WARN)
		perch_app_warn_refused(app);
	clear_plugin_copies(perch_store_plugin_dir(d->store));

	dgen *g = perch_xcalloc(1, sizeof *g);
	g->app = app;
	g->refs = 1;
	g->number = d->next_gen = 1;
	d->gen = g;
	perch_daemon_sync_plugins(d, NULL, NULL, NULL);

	dwf **adopt = NULL;
	size_t n_adopt = 0;
	perch_daemon_load_records(d, &adopt, &n_adopt);
	perch_daemon_adopt_all(d, adopt, n_adopt);
	free(adopt);
	perch_daemon_reap_runs(d);

	if (!signals_start()) {
		fprintf(stderr, "perch: cannot set up signals: %s\n", strerror(errno));
		goto stop;
	}
	d->listen_fd = open_socket(d, &err);
	if (d->listen_fd < 0) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		goto stop;
	}
	pthread_mutex_lock(&d->lock);
	perch_daemon_schedule(d);
	size_t n_versions = 0;
	for (dversion *v = d->versions; v; v = v->next)
		n_versions++;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_log(d, PERCH_LOG_INFO, "daemon ready (pid %ld): socket %s, state %s, %zu "
					    "backend%s, %zu running, %zu queued",
			 (long)getpid(), d->socket_path, dir, n_versions, n_versions == 1 ? "" : "s",
			 d->n_running, d->n_queued);
	loop(d);
	rc = PERCH_EXIT_OK;
	perch_daemon_log(d, PERCH_LOG_INFO, "daemon stopping");
stop:
	/* Nothing new from here on: connections end, queued work stays. */
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	bool acted = d->stop_acted;
	d->stop_acted = true;
	pthread_mutex_unlock(&d->lock);
	if (!acted)
		perch_daemon_leave_or_cancel(d); /* start-up failed after adopting */
	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		unlink(d->socket_path);
		d->listen_fd = -1;
	}
	atomic_store(&d->closing, true);
	pthread_mutex_lock(&d->lock);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	/* Reloads still asked get an answer so that their threads end. */
	pthread_mutex_lock(&d->lock);
	for (reload_req *r = d->reloads; r; r = r->next) {
		r->reply = perch_xstrdup("{\"ok\":false,\"code\":\"shutting_down\",\"error\":\"the "
					 "daemon is shutting down\"}");
		r->done = true;
	}
	d->reloads = NULL;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	perch_daemon_reap_conns(d, true);
	/* Runs that were cancelled (start-up failures) end by themselves;
	 * abandoned ones may wait in a plugin until their steps end. */
	for (;;) {
		perch_daemon_reap_runs(d);
		pthread_mutex_lock(&d->lock);
		bool busy = false, stuck = false;
		for (drun *r = d->runs; r; r = r->next) {
			if (r->superseded)
				stuck = true;
			else
				busy = true;
		}
		/* A plugin call given up on (runtime.h, "stuck calls") runs on
		 * in memory that must never be freed: no teardown either. */
		for (dwf *w = d->wfs; w; w = w->next)
			if (w->pinned)
				stuck = true;
		pthread_mutex_unlock(&d->lock);
		if (!busy) {
			if (stuck) {
				/* Threads still waiting inside plugins for steps
				 * the next daemon adopts, or stuck in a plugin:
				 * the process ends under them, as a crash would,
				 * minus the lost state. */
				perch_daemon_log(d, PERCH_LOG_INFO, "daemon stopped; leaving "
								    "abandoned or stuck plugin calls behind");
				signals_stop();
				fflush(NULL);
				_exit(rc);
			}
			break;
		}
		usleep(50 * 1000);
	}
	signals_stop();
	perch_daemon_free_plugins(d, true);
	perch_daemon_log(d, PERCH_LOG_INFO, "daemon stopped");
out:
	for (dwf *w = d->wfs; w;) {
		dwf *next = w->next;
		perch_daemon_wf_free(w);
		w = next;
	}
	for (size_t i = 0; i < d->n_orphans; i++) {
		free(d->orphans[i]);
		free(d->orphan_plugins[i]);
	}
	free(d->orphans);
	free(d->orphan_plugins);
	free(d->old_gens);
	perch_store_close(d->store);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	free(d->socket_path);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->submit_lock);
	free(d);
	return rc;
}
