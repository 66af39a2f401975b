/*
 * flags.c - the docker backend's flags, as Woodpecker's docker backend has
 * them (names, environment variables, defaults), each also readable as
 * PERCH_BACKEND_DOCKER_… (first) and from the config file
 * (backends.docker.<key>), plus perch's own host id.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

#define FLAG(var, kind_, name_, env_, def, use)                                \
	static const perch_flag var = {                                        \
		PERCH_FLAG_INIT,                                               \
		.kind = kind_,                                                 \
		.name = name_,                                                 \
		.env = env_,                                                   \
		.default_value = def,                                          \
		.usage = use,                                                  \
	}

FLAG(f_host, PERCH_FLAG_STRING, "backend-docker-host",
     ENV("PERCH_BACKEND_DOCKER_HOST", "WOODPECKER_BACKEND_DOCKER_HOST",
	 "DOCKER_HOST"),
     NULL, "path to docker socket or url to the docker server");
FLAG(f_api, PERCH_FLAG_STRING, "backend-docker-api-version",
     ENV("PERCH_BACKEND_DOCKER_API_VERSION",
	 "WOODPECKER_BACKEND_DOCKER_API_VERSION", "DOCKER_API_VERSION"),
     NULL, "the version of the API to reach, leave empty for latest.");
FLAG(f_cert, PERCH_FLAG_STRING, "backend-docker-cert",
     ENV("PERCH_BACKEND_DOCKER_CERT_PATH",
	 "WOODPECKER_BACKEND_DOCKER_CERT_PATH", "DOCKER_CERT_PATH"),
     NULL,
     "path to load the TLS certificates for connecting to docker server");
FLAG(f_tls, PERCH_FLAG_BOOL, "backend-docker-tls-verify",
     ENV("PERCH_BACKEND_DOCKER_TLS_VERIFY",
	 "WOODPECKER_BACKEND_DOCKER_TLS_VERIFY", "DOCKER_TLS_VERIFY"),
     "true",
     "enable or disable TLS verification for connecting to docker server");
FLAG(f_ipv6, PERCH_FLAG_BOOL, "backend-docker-ipv6",
     ENV("PERCH_BACKEND_DOCKER_ENABLE_IPV6",
	 "WOODPECKER_BACKEND_DOCKER_ENABLE_IPV6"),
     "false", "backend docker enable IPV6");
FLAG(f_network, PERCH_FLAG_STRING, "backend-docker-network",
     ENV("PERCH_BACKEND_DOCKER_NETWORK", "WOODPECKER_BACKEND_DOCKER_NETWORK"),
     NULL, "backend docker network");
FLAG(f_volumes, PERCH_FLAG_STRING_LIST, "backend-docker-volumes",
     ENV("PERCH_BACKEND_DOCKER_VOLUMES", "WOODPECKER_BACKEND_DOCKER_VOLUMES"),
     NULL, "backend docker volumes (comma separated)");
FLAG(f_apparmor, PERCH_FLAG_STRING, "backend-docker-apparmor-profile",
     ENV("PERCH_BACKEND_DOCKER_APPARMOR_PROFILE",
	 "WOODPECKER_BACKEND_DOCKER_APPARMOR_PROFILE"),
     NULL, "AppArmor profile applied to backend Docker containers");
FLAG(f_stop, PERCH_FLAG_INT, "backend-docker-stop-timeout",
     ENV("PERCH_BACKEND_DOCKER_STOP_TIMEOUT",
	 "WOODPECKER_BACKEND_DOCKER_STOP_TIMEOUT"),
     "20",
     "seconds perch waits for a container to stop gracefully before "
     "forcefully killing it");
FLAG(f_mem_swap, PERCH_FLAG_INT, "backend-docker-limit-mem-swap",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_MEM_SWAP",
	 "WOODPECKER_BACKEND_DOCKER_LIMIT_MEM_SWAP", "WOODPECKER_LIMIT_MEM_SWAP"),
     "0", "maximum memory used for swap in bytes");
FLAG(f_mem, PERCH_FLAG_INT, "backend-docker-limit-mem",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_MEM", "WOODPECKER_BACKEND_DOCKER_LIMIT_MEM",
	 "WOODPECKER_LIMIT_MEM"),
     "0", "maximum memory allowed in bytes");
FLAG(f_shm, PERCH_FLAG_INT, "backend-docker-limit-shm-size",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_SHM_SIZE",
	 "WOODPECKER_BACKEND_DOCKER_LIMIT_SHM_SIZE", "WOODPECKER_LIMIT_SHM_SIZE"),
     "0", "docker /dev/shm allowed in bytes");
FLAG(f_cpu_quota, PERCH_FLAG_INT, "backend-docker-limit-cpu-quota",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_CPU_QUOTA",
	 "WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_QUOTA",
	 "WOODPECKER_LIMIT_CPU_QUOTA"),
     "0", "impose a cpu quota");
FLAG(f_cpu_shares, PERCH_FLAG_INT, "backend-docker-limit-cpu-shares",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_CPU_SHARES",
	 "WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_SHARES",
	 "WOODPECKER_LIMIT_CPU_SHARES"),
     "0", "change the cpu shares");
FLAG(f_cpu_set, PERCH_FLAG_STRING, "backend-docker-limit-cpu-set",
     ENV("PERCH_BACKEND_DOCKER_LIMIT_CPU_SET",
	 "WOODPECKER_BACKEND_DOCKER_LIMIT_CPU_SET", "WOODPECKER_LIMIT_CPU_SET"),
     NULL, "set the cpus allowed to execute containers");
FLAG(f_host_id, PERCH_FLAG_STRING, "backend-docker-host-id",
     ENV("PERCH_BACKEND_DOCKER_HOST_ID"), NULL,
     "id that labels this host's containers, networks and volumes; "
     "discovery adopts only its own (default: from /etc/machine-id)");

const perch_flag *const perch_docker_flags[] = {
	&f_host,      &f_api,       &f_cert,     &f_tls,       &f_ipv6,
	&f_network,   &f_volumes,   &f_apparmor, &f_stop,      &f_mem_swap,
	&f_mem,       &f_shm,       &f_cpu_quota, &f_cpu_shares, &f_cpu_set,
	&f_host_id,   NULL,
};

/* A string flag's value, NULL when unset or empty; malloc'd copy. */
static char *str_flag(const perch_host *h, const perch_cli *cli,
		      const char *name, bool *oom)
{
	const char *v = h->cli_string(cli, name);
	char *s;

	if (v == NULL || *v == '\0')
		return NULL;
	s = strdup(v);
	if (s == NULL)
		*oom = true;
	return s;
}

/* An int flag, or def when not set (a host that hands back the declared
 * default answers the same either way). */
static int64_t int_flag(const perch_host *h, const perch_cli *cli,
			const char *name, int64_t def)
{
	return h->cli_is_set(cli, name) ? h->cli_int(cli, name) : def;
}

static bool bool_flag(const perch_host *h, const perch_cli *cli,
		      const char *name, bool def)
{
	return h->cli_is_set(cli, name) ? h->cli_bool(cli, name) : def;
}

char *perch_docker_default_host_id(void)
{
	char buf[256] = "";
	FILE *f = fopen("/etc/machine-id", "re");
	size_t n = 0;

	if (f != NULL) {
		if (fgets(buf, sizeof buf, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, " \t\r\n")] = '\0';
	if (buf[0] == '\0' && gethostname(buf, sizeof buf - 1) != 0)
		buf[0] = '\0';
	buf[sizeof buf - 1] = '\0';
	/* A label value can hold anything, but the id also lands in filters
	 * and messages: keep it to a tidy alphabet. */
	for (char *p = buf; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' &&
		    *p != '.')
			*p = '_';
	n = strlen(buf);
	return strdup(n > 0 ? buf : "perch");
}

perch_status perch_docker_conf_read(const perch_host *h, const perch_cli *cli,
				    perch_docker_conf *conf, perch_error *err)
{
	const char *const *vols = NULL;
	size_t n_vols;
	bool oom = false;

	memset(conf, 0, sizeof *conf);
	conf->host = str_flag(h, cli, f_host.name, &oom);
	conf->api_version = str_flag(h, cli, f_api.name, &oom);
	conf->cert_path = str_flag(h, cli, f_cert.name, &oom);
	conf->tls_verify = bool_flag(h, cli, f_tls.name, true);
	conf->ipv6 = bool_flag(h, cli, f_ipv6.name, false);
	conf->network = str_flag(h, cli, f_network.name, &oom);
	conf->apparmor_profile = str_flag(h, cli, f_apparmor.name, &oom);
	conf->stop_timeout_s = int_flag(h, cli, f_stop.name,
					PERCH_DOCKER_DEFAULT_STOP_TIMEOUT);
	conf->limit_mem = int_flag(h, cli, f_mem.name, 0);
	conf->limit_mem_swap = int_flag(h, cli, f_mem_swap.name, 0);
	conf->limit_shm_size = int_flag(h, cli, f_shm.name, 0);
	conf->limit_cpu_quota = int_flag(h, cli, f_cpu_quota.name, 0);
	conf->limit_cpu_shares = int_flag(h, cli, f_cpu_shares.name, 0);
	conf->limit_cpu_set = str_flag(h, cli, f_cpu_set.name, &oom);
	conf->host_id = str_flag(h, cli, f_host_id.name, &oom);
	if (conf->host_id == NULL && !oom) {
		conf->host_id = perch_docker_default_host_id();
		oom = conf->host_id == NULL;
	}
	if (oom)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	if (conf->stop_timeout_s < 0)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "--%s must not be negative", f_stop.name);

	n_vols = h->cli_list(cli, f_volumes.name, &vols);
	if (n_vols > 0) {
		conf->volumes = calloc(n_vols, sizeof *conf->volumes);
		if (conf->volumes == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
	}
	for (size_t i = 0; i < n_vols; i++) {
		char *src, *dst, *mode;
		if (vols[i] == NULL || *vols[i] == '\0')
			continue;
		if (!perch_docker_split_volume(vols[i], &src, &dst, &mode) ||
		    src == NULL) {
			free(src), free(dst), free(mode);
			return perch_error_set(
				err, PERCH_ERR_INVALID_INPUT,
				"invalid volume '%s' provided in "
				"WOODPECKER_BACKEND_DOCKER_VOLUMES (--%s): want "
				"src:dst[:mode]",
				vols[i], f_volumes.name);
		}
		free(src), free(dst), free(mode);
		conf->volumes[conf->n_volumes] = strdup(vols[i]);
		if (conf->volumes[conf->n_volumes++] == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
	}
	return PERCH_OK;
}

void perch_docker_conf_free(perch_docker_conf *conf)
{
	free(conf->host);
	free(conf->api_version);
	free(conf->cert_path);
	free(conf->network);
	for (size_t i = 0; i < conf->n_volumes; i++)
		free(conf->volumes[i]);
	free(conf->volumes);
	free(conf->apparmor_profile);
	free(conf->limit_cpu_set);
	free(conf->host_id);
	memset(conf, 0, sizeof *conf);
}
