/*
 * main.c - perch-conformance: options, the table of checks, one forked
 * child per check, and the report (see conformance.h for the design).
 *
 *   perch-conformance [OPTIONS] PLUGIN.so
 *
 * Prints one line per check, "PASS name", "FAIL name: reason" or
 * "SKIP name: why", then "N passed, N failed, N skipped".  Exit status 0
 * when nothing failed, 1 when something did, 2 for a usage error, 130 when
 * interrupted.
 */
#include "config.h"

#include "conformance.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NEEDS_RUN (PERCH_CF_NEEDS_AVAILABLE | PERCH_CF_NEEDS_LOAD)

const perch_cf_check perch_cf_checks[] = {
	{"entry", "the loader accepts the entry object (ABI major, struct_size, name, version, "
		  "required calls, flags); one-line texts",
	 0, perch_cf_check_entry, true},
	{"exports", "the file exports perch_backend_v1 and nothing else (-fvisibility=hidden)", 0,
	 perch_cf_check_exports, true},
	{"flags", "every flag has a one-line usage and valid, unshared environment variables; "
		  "--flag values resolve",
	 0, perch_cf_check_flags, true},
	{"available", "is_available says yes (or why not), the same when asked twice", 0,
	 perch_cf_check_available, false},
	{"load", "load with the CLI context fills the platform; unload; a second load works",
	 PERCH_CF_NEEDS_AVAILABLE, perch_cf_check_load, false},
	{"load-without-cli", "load without a CLI context succeeds, or fails with exactly "
			     "\"no CliContext in context found\"",
	 PERCH_CF_NEEDS_AVAILABLE, perch_cf_check_load_without_cli, false},
	{"capabilities", "unknown capability ids give NULL; offered tables are well-formed",
	 NEEDS_RUN, perch_cf_check_capabilities, false},
	{"workflow-empty", "setup_workflow and destroy_workflow of a workflow without steps",
	 NEEDS_RUN, perch_cf_check_workflow_empty, false},
	{"step-lifecycle", "start -> tail -> wait -> destroy: exit 0, the step's output, end of "
			   "stream, an O_CLOEXEC descriptor",
	 NEEDS_RUN, perch_cf_check_step_lifecycle, false},
	{"exit-codes", "three parallel steps report exit codes 0, 1 and 137 (SIGKILL)", NEEDS_RUN,
	 perch_cf_check_exit_codes, false},
	{"tail-after-destroy", "the tail of a running step reaches end of stream after "
			       "destroy_step",
	 NEEDS_RUN, perch_cf_check_tail_after_destroy, false},
	{"destroy-twice", "destroy_step twice succeeds both times", NEEDS_RUN,
	 perch_cf_check_destroy_twice, false},
	{"destroy-before-start", "destroy_step of a step never started (or that failed to "
				 "start) succeeds",
	 NEEDS_RUN, perch_cf_check_destroy_before_start, false},
	{"destroy-unknown-workflow", "destroy_workflow of a workflow never set up (or whose "
				     "setup failed) returns cleanly",
	 NEEDS_RUN, perch_cf_check_destroy_unknown_workflow, false},
	{"missing-image", "a step whose image does not exist fails (at start, with a message, or "
			  "with a non-zero exit)",
	 NEEDS_RUN, perch_cf_check_missing_image, false},
	{"parallel-workflows", "two workflows at once, with the same step name, on two threads",
	 NEEDS_RUN, perch_cf_check_parallel_workflows, false},
	{"cancel-wait", "a blocked wait_step returns cancelled promptly when its context is "
			"cancelled",
	 NEEDS_RUN, perch_cf_check_cancel_wait, false},
	{"detached-step", "destroy_workflow stops a detached step whose wait_step is in flight; "
			  "destroy_step afterwards succeeds",
	 NEEDS_RUN, perch_cf_check_detached_step, false},
	{"discover-resume", "a fresh instance discovers the workflow and resumes its steps from "
			    "a resume point (when offered)",
	 NEEDS_RUN, perch_cf_check_discover_resume, false},
	{NULL, NULL, 0, NULL, false},
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: perch-conformance [OPTIONS] PLUGIN.so\n"
		"\n"
		"Drives a perch backend plugin through the v1 contract and prints one line\n"
		"per check (PASS name, FAIL name: reason, SKIP name: why), then a count.\n"
		"Exit status: 0 nothing failed, 1 a check failed, 2 usage error.\n"
		"\n"
		"Options:\n"
		"  --profile NAME         how steps are expressed: sh (default: shell commands)\n"
		"                         or dummy (the dummy backend's environment knobs)\n"
		"  --image IMAGE          the image of every step (default: sh)\n"
		"  --flag NAME=VALUE      a backend option, as --NAME VALUE would set it for\n"
		"                         perch (repeatable); the environment applies too\n"
		"  --workflow-env K=V     an environment variable of every step (repeatable)\n"
		"  --skip CHECK[=WHY]     report CHECK as skipped: the backend cannot do it\n"
		"  --only CHECK           run only the named checks (repeatable)\n"
		"  --call-timeout SECS    a plugin call that takes longer fails (default 60)\n"
		"  --cancel-timeout SECS  a cancelled wait_step that takes longer fails (default 5)\n"
		"  --list                 list the checks and exit\n"
		"  --verbose              show the plugin's debug messages\n"
		"  --help, --version\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "perch-conformance: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'perch-conformance --help'.\n");
	va_end(ap);
	return 2;
}

static const perch_cf_check *find_check(const char *name, size_t len)
{
	for (const perch_cf_check *c = perch_cf_checks; c->name; c++)
		if (strlen(c->name) == len && strncmp(c->name, name, len) == 0)
			return c;
	return NULL;
}

static bool parse_secs(const char *s, int64_t *ms)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v <= 0 || v > 24 * 3600)
		return false;
	*ms = (int64_t)v * 1000;
	return true;
}

/* Matches option opt, as "opt VALUE" or "opt=VALUE": 1 with *val set, 0 when
 * a is another option, -1 when the value is missing. */
static int takes(int argc, char **argv, int *i, const char *opt, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(opt);
	if (strncmp(a, opt, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/* Parses argv into o.  Returns -1 to go on, else an exit status. */
static int parse_args(int argc, char **argv, perch_cf_opts *o, const char **flags, size_t *n_flags)
{
	static const char *const valued[] = {"--profile",	"--image",	  "--flag",
					      "--workflow-env", "--skip",	  "--only",
					      "--call-timeout", "--cancel-timeout"};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *opt = NULL;
		for (size_t k = 0; k < sizeof valued / sizeof *valued && !opt; k++) {
			int t = takes(argc, argv, &i, valued[k], &val);
			if (t < 0)
				return usage_error("option %s needs a value", valued[k]);
			if (t > 0)
				opt = valued[k];
		}
		if (opt == NULL) {
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
				usage(stdout);
				return 0;
			} else if (strcmp(a, "--version") == 0) {
				printf("perch-conformance (%s)\n", PACKAGE_STRING);
				return 0;
			} else if (strcmp(a, "--list") == 0) {
				for (const perch_cf_check *c = perch_cf_checks; c->name; c++)
					printf("%-26s %s\n", c->name, c->summary);
				return 0;
			} else if (strcmp(a, "--verbose") == 0) {
				o->verbose = true;
			} else if (a[0] == '-' && a[1] != '\0') {
				return usage_error("unknown option %s", a);
			} else if (o->plugin_path == NULL) {
				o->plugin_path = a;
			} else {
				return usage_error("one plugin at a time (also got \"%s\")", a);
			}
		} else if (strcmp(opt, "--profile") == 0) {
			if (perch_cf_profile_find(val) == NULL) {
				fprintf(stderr, "perch-conformance: unknown profile \"%s\" (known: "
					"%s)\n", val, perch_cf_profile_names());
				return 2;
			}
			o->profile = val;
		} else if (strcmp(opt, "--image") == 0) {
			o->image = val;
		} else if (strcmp(opt, "--flag") == 0) {
			if (*n_flags == PERCH_CF_MAX_LIST)
				return usage_error("too many %s options", opt);
			if (strchr(val, '=') == NULL || *val == '=')
				return usage_error("--flag wants NAME=VALUE, got \"%s\"", val);
			flags[(*n_flags)++] = val;
		} else if (strcmp(opt, "--workflow-env") == 0) {
			const char *eq = strchr(val, '=');
			if (eq == NULL || eq == val)
				return usage_error("--workflow-env wants K=V, got \"%s\"", val);
			if (o->n_env == PERCH_CF_MAX_LIST)
				return usage_error("too many %s options", opt);
			o->env_key[o->n_env] = perch_xstrndup(val, (size_t)(eq - val));
			o->env_value[o->n_env++] = eq + 1;
		} else if (strcmp(opt, "--skip") == 0 || strcmp(opt, "--only") == 0) {
			bool skip = strcmp(opt, "--skip") == 0;
			const char *eq = skip ? strchr(val, '=') : NULL;
			size_t len = eq ? (size_t)(eq - val) : strlen(val);
			const perch_cf_check *c = find_check(val, len);
			if (c == NULL)
				return usage_error("unknown check \"%s\" (see --list)", val);
			if ((skip ? o->n_skips : o->n_only) == PERCH_CF_MAX_LIST)
				return usage_error("too many %s options", opt);
			if (skip) {
				o->skips[o->n_skips].check = c->name;
				o->skips[o->n_skips++].why = eq && eq[1] ? eq + 1 : NULL;
			} else {
				o->only[o->n_only++] = c->name;
			}
		} else if (strcmp(opt, "--call-timeout") == 0) {
			if (!parse_secs(val, &o->call_timeout_ms))
				return usage_error("--call-timeout wants whole seconds, got \"%s\"", val);
		} else {
			if (!parse_secs(val, &o->cancel_timeout_ms))
				return usage_error("--cancel-timeout wants whole seconds, got \"%s\"",
						   val);
		}
	}
	if (o->plugin_path == NULL)
		return usage_error("%s", "which plugin? (perch-conformance PLUGIN.so)");
	return -1;
}

/* Applies --flag values and resolves every flag like perch does. */
static int resolve_flags(perch_cli *cli, const char *const *flags, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(flags[i], '=');
		const char *name = flags[i];
		if (strncmp(name, "--", 2) == 0)
			name += 2;
		char *key = perch_xstrndup(name, (size_t)(eq - name));
		char *err = NULL;
		if (perch_cli_set_arg(cli, key, eq + 1, &err) != 0) {
			fprintf(stderr, "perch-conformance: --flag %s: %s (the plugin does not "
				"declare it)\n", flags[i], err);
			free(err);
			free(key);
			return 2;
		}
		free(key);
	}
	char *err = NULL;
	if (perch_cli_resolve(cli, NULL, &err) != 0) {
		fprintf(stderr, "perch-conformance: %s\n", err);
		free(err);
		return 2;
	}
	return -1;
}

static const char *skip_reason(const perch_cf_opts *o, const char *name)
{
	for (size_t i = 0; i < o->n_skips; i++)
		if (strcmp(o->skips[i].check, name) == 0)
			return o->skips[i].why ? o->skips[i].why : "skipped on request (--skip)";
	if (o->n_only) {
		for (size_t i = 0; i < o->n_only; i++)
			if (strcmp(o->only[i], name) == 0)
				return NULL;
		return "not selected (--only)";
	}
	return NULL;
}

static void kill_child(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

/* Runs one check in a child and waits for its verdict, enforcing the
 * watch slots' deadlines. */
static void run_child(perch_cf_run *run, const perch_cf_check *c, perch_cf_verdict *v)
{
	perch_cf_shared *sh = run->shared;
	memset(sh, 0, sizeof *sh);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perch_cf_fail(v, "cannot fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		/* Standard output is the report: whatever the plugin prints goes
		 * to standard error instead. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		perch_cf_verdict mine = {PERCH_CF_PASS, ""};
		run->check = c->name;
		c->fn(run, &mine);
		sh->verdict = mine;
		__atomic_store_n(&sh->has_verdict, 1, __ATOMIC_RELEASE);
		fflush(stderr);
		exit(0);
	}
	setpgid(pid, pid); /* also here: no race with the child's own call */
	int64_t overall = perch_mono_ms() + 10 * run->opts->call_timeout_ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			perch_cf_fail(v, "waitpid: %s", strerror(errno));
			return;
		}
		if (interrupted) {
			kill_child(pid);
			perch_cf_fail(v, "interrupted");
			return;
		}
		int64_t now = perch_mono_ms();
		for (int i = 0; i < PERCH_CF_WATCH_SLOTS; i++) {
			perch_cf_watch_slot *s = &sh->slots[i];
			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != 2 || now < s->deadline_ms)
				continue;
			char what[PERCH_CF_WHAT_MAX];
			memcpy(what, s->what, sizeof what);
			what[sizeof what - 1] = '\0';
			kill_child(pid);
			perch_cf_fail(v, "%s", what);
			return;
		}
		if (now > overall) {
			kill_child(pid);
			perch_cf_fail(v, "the check did not finish within %ld s",
				      (long)((10 * run->opts->call_timeout_ms) / 1000));
			return;
		}
		perch_cf_pause_ms(20);
	}
	bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (__atomic_load_n(&sh->has_verdict, __ATOMIC_ACQUIRE)) {
		*v = sh->verdict;
		if (!clean && v->result != PERCH_CF_FAIL) {
			if (WIFSIGNALED(status))
				perch_cf_fail(v, "the check process was killed by signal %d (%s) after its "
					      "verdict (a sanitizer report on stderr?)", WTERMSIG(status),
					      strsignal(WTERMSIG(status)));
			else
				perch_cf_fail(v, "the check process exited with status %d after its "
					      "verdict (a sanitizer or valgrind report on stderr?)",
					      WEXITSTATUS(status));
		}
	} else if (WIFSIGNALED(status)) {
		perch_cf_fail(v, "crashed: killed by signal %d (%s)", WTERMSIG(status),
			      strsignal(WTERMSIG(status)));
	} else {
		perch_cf_fail(v, "the check process exited with status %d before its verdict (the "
			      "plugin must never call exit())", WEXITSTATUS(status));
	}
}

static void report(const char *name, const perch_cf_verdict *v, size_t counts[3])
{
	switch (v->result) {
	case PERCH_CF_PASS: printf("PASS %s\n", name); break;
	case PERCH_CF_FAIL: printf("FAIL %s: %s\n", name, v->reason); break;
	default: printf("SKIP %s: %s\n", name, v->reason); break;
	}
	counts[v->result]++;
	fflush(stdout);
}

int main(int argc, char **argv)
{
	perch_cf_opts o = {.profile = "sh",
		       .image = "sh",
		       .call_timeout_ms = 60000,
		       .cancel_timeout_ms = 5000};
	const char *flags[PERCH_CF_MAX_LIST];
	size_t n_flags = 0;
	int rc = parse_args(argc, argv, &o, flags, &n_flags);
	if (rc >= 0)
		goto free_opts;

	char abs_path[PATH_MAX];
	if (realpath(o.plugin_path, abs_path) == NULL) {
		fprintf(stderr, "perch-conformance: %s: %s\n", o.plugin_path, strerror(errno));
		rc = 2;
		goto free_opts;
	}
	/* dlopen() of a name without a slash would search the library path. */
	o.plugin_path = abs_path;

	perch_cf_run run = {.opts = &o, .profile = perch_cf_profile_find(o.profile)};
	run.cli = perch_cli_new();
	run.reg = perch_registry_new(run.cli);
	run.reg->log_level = o.verbose ? PERCH_LOG_DEBUG : PERCH_LOG_WARN;
	perch_plugin *p = perch_registry_open(run.reg, o.plugin_path);
	size_t counts[3] = {0, 0, 0};

	if (p->error != NULL) {
		/* Refused: the loader's own words, as perch backends prints them. */
		perch_cf_verdict v = {PERCH_CF_FAIL, ""};
		snprintf(v.reason, sizeof v.reason, "refused by the loader: %s", p->error);
		report("entry", &v, counts);
		for (const perch_cf_check *c = perch_cf_checks + 1; c->name; c++) {
			perch_cf_verdict s = {PERCH_CF_SKIP, "the plugin was refused"};
			report(c->name, &s, counts);
		}
		rc = 1;
		goto summary;
	}
	run.plugin = p;
	rc = resolve_flags(run.cli, flags, n_flags);
	if (rc >= 0)
		goto free_run;
	fprintf(stderr, "perch-conformance: %s, profile %s, image \"%s\"\n", o.plugin_path,
		o.profile, o.image);
	run.root = perch_ctx_new(NULL);
	perch_ctx_set_value(run.root, PERCH_CTX_CLI_COMMAND, run.cli);
	run.shared = mmap(NULL, sizeof(perch_cf_shared), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (run.shared == MAP_FAILED) {
		fprintf(stderr, "perch-conformance: mmap: %s\n", strerror(errno));
		rc = 2;
		goto free_run;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Results so far, for the checks that depend on earlier ones. */
	int available = PERCH_CF_PASS, loads = PERCH_CF_PASS;
	for (size_t i = 0; perch_cf_checks[i].name; i++) {
		const perch_cf_check *c = &perch_cf_checks[i];
		perch_cf_verdict v = {PERCH_CF_PASS, ""};
		const char *why = skip_reason(&o, c->name);
		if (interrupted) {
			perch_cf_skip_because(&v, "interrupted");
		} else if (why) {
			perch_cf_skip_because(&v, "%s", why);
		} else if ((c->needs & PERCH_CF_NEEDS_AVAILABLE) && available == PERCH_CF_FAIL) {
			perch_cf_skip_because(&v, "needs an available backend (see the available check)");
		} else if ((c->needs & PERCH_CF_NEEDS_LOAD) && loads == PERCH_CF_FAIL) {
			perch_cf_skip_because(&v, "needs a plugin that loads (see the load check)");
		} else if (c->in_parent) {
			run.check = c->name;
			c->fn(&run, &v);
		} else {
			run_child(&run, c, &v);
		}
		if (strcmp(c->name, "available") == 0)
			available = v.result;
		else if (strcmp(c->name, "load") == 0)
			loads = v.result;
		report(c->name, &v, counts);
	}
	rc = counts[PERCH_CF_FAIL] ? 1 : 0;
	if (interrupted)
		rc = 130;
	munmap(run.shared, sizeof(perch_cf_shared));
summary:
	printf("%zu passed, %zu failed, %zu skipped\n", counts[PERCH_CF_PASS], counts[PERCH_CF_FAIL],
	       counts[PERCH_CF_SKIP]);
free_run:
	perch_registry_free(run.reg);
	perch_ctx_free(run.root);
	perch_cli_free(run.cli);
free_opts:
	for (size_t i = 0; i < o.n_env; i++)
		free((char *)o.env_key[i]);
	if (fflush(stdout) != 0 && rc == 0)
		rc = 1;
	return rc;
}
