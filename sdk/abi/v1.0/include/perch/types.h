/*
 * perch/types.h - the workflow types of the contract, in C.
 *
 * These mirror Woodpecker's pipeline/backend/types package field for field;
 * the JSON name of every field is given beside it.  All of them are built by
 * the host from the workflow JSON and passed to plugins read-only.
 *
 * Ownership: everything reachable from a perch_config or perch_step that the
 * host passes is host-owned, read-only, and valid until destroy_workflow for
 * that task returns.  A plugin that needs a value longer copies it.
 *
 * Strings are never NULL: an absent string is "".  Lists are (pointer,
 * count) pairs; an absent list has count 0 (the pointer may then be NULL).
 * Maps are arrays of key/value pairs in the order the JSON gave them.
 *
 * Growth: perch_config, perch_stage, perch_step, perch_state,
 * perch_backend_info and the discovered-workflow structs begin with
 * struct_size and only grow at the end.  Arrays of growable structs are
 * arrays of pointers, so their stride never changes.  The small value structs
 * (perch_kv, perch_strv, perch_map, perch_auth, perch_conn,
 * perch_host_alias, perch_port, perch_secret) are frozen for v1.
 */
#ifndef PERCH_TYPES_H
#define PERCH_TYPES_H

#include <perch/abi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Step types (Step.type); compare with strcmp.  Unknown types may arrive. */
#define PERCH_STEP_CLONE "clone"
#define PERCH_STEP_SERVICE "service"
#define PERCH_STEP_PLUGIN "plugin"
#define PERCH_STEP_COMMANDS "commands"
#define PERCH_STEP_CACHE "cache"

/* Step.failure values. */
#define PERCH_FAILURE_FAIL "fail"
#define PERCH_FAILURE_IGNORE "ignore"
#define PERCH_FAILURE_CANCEL "cancel"

/* A list of strings.  Frozen. */
typedef struct perch_strv {
	const char *const *items;
	size_t len;
} perch_strv;

/* One map entry.  Frozen. */
typedef struct perch_kv {
	const char *key;
	const char *value;
} perch_kv;

/* A string-to-string map.  Keys are unique.  Frozen. */
typedef struct perch_map {
	const perch_kv *items;
	size_t len;
} perch_map;

/* Auth: registry credentials (auth_config).  Frozen. */
typedef struct perch_auth {
	const char *username; /* "username" */
	const char *password; /* "password" */
} perch_auth;

/* Conn: a network to join, with aliases (networks[]).  Frozen. */
typedef struct perch_conn {
	const char *name;   /* "name" */
	perch_strv aliases; /* "aliases" */
} perch_conn;

/* HostAlias: an extra /etc/hosts entry (extra_hosts[]).  Frozen. */
typedef struct perch_host_alias {
	const char *name; /* "name" */
	const char *ip;   /* "ip" */
} perch_host_alias;

/* Port: a port to publish (ports[]).  Frozen. */
typedef struct perch_port {
	uint16_t number;      /* "number" */
	const char *protocol; /* "protocol": "", "tcp", "udp" */
} perch_port;

/* Secret: a value to mask in logs (secrets[]).  Frozen. */
typedef struct perch_secret {
	const char *name;  /* "name" */
	const char *value; /* "value" */
} perch_secret;

/* Step: one container or process.  31 fields, in Woodpecker's order. */
typedef struct perch_step {
	uint32_t struct_size;
	uint32_t reserved0; /* zero */
	const char *name;               /* "name" */
	int64_t org_id;                 /* "org_id" */
	const char *uuid;               /* "uuid": unique in the workflow */
	const char *type;               /* "type": PERCH_STEP_* */
	const char *image;              /* "image" (local backend: the shell) */
	bool pull;                      /* "pull" */
	bool detach;                    /* "detach" */
	bool privileged;                /* "privileged" */
	const char *working_dir;        /* "working_dir" */
	const char *workspace_base;     /* "workspace_base" */
	perch_map environment;          /* "environment" */
	perch_map secret_mapping;       /* "secret_mapping" */
	perch_strv entrypoint;          /* "entrypoint" */
	perch_strv commands;            /* "commands" */
	const perch_host_alias *extra_hosts; /* "extra_hosts" */
	size_t n_extra_hosts;
	perch_strv volumes;             /* "volumes": src:dst[:mode] */
	perch_strv tmpfs;               /* "tmpfs": path[:opts] */
	perch_strv devices;             /* "devices": src:dst */
	const perch_conn *networks;     /* "networks" */
	size_t n_networks;
	perch_strv dns;                 /* "dns" */
	perch_strv dns_search;          /* "dns_search" */
	bool on_failure;                /* "on_failure" */
	bool on_success;                /* "on_success" */
	const char *failure;            /* "failure": PERCH_FAILURE_* or "" */
	perch_auth auth_config;         /* "auth_config" */
	const char *network_mode;       /* "network_mode" */
	const perch_port *ports;        /* "ports" */
	size_t n_ports;
	/* "backend_options": the JSON text of the whole object, keyed by backend
	 * name ({"docker": {"user": "1000"}}), or "" when absent.  The host does
	 * not interpret it; each backend parses its own part. */
	const char *backend_options;
	perch_map workflow_labels;      /* "workflow_labels" */
	const char *container_name_scheme; /* "container_name_scheme" */
	perch_strv depends_on;          /* "depends_on": step names, same stage */
} perch_step;

/* Stage: steps that run in parallel.  Stages run in order. */
typedef struct perch_stage {
	uint32_t struct_size;
	uint32_t reserved0;
	const perch_step *const *steps; /* "steps" */
	size_t n_steps;
} perch_stage;

/* Config: one workflow. */
typedef struct perch_config {
	uint32_t struct_size;
	uint32_t reserved0;
	const perch_stage *const *stages; /* "pipeline" */
	size_t n_stages;
	const char *network;              /* "network" */
	const char *volume;               /* "volume" */
	const perch_secret *secrets;      /* "secrets" */
	size_t n_secrets;
} perch_config;

/* State: how a step ended.  Host-allocated and zeroed, struct_size set; the
 * plugin fills the fields that struct_size covers (PERCH_HAS_FIELD).  The
 * State.Error of the Go contract is the call's perch_error. */
typedef struct perch_state {
	uint32_t struct_size;
	int32_t exit_code; /* "exit_code"; -1 when killed without a code */
	bool exited;       /* "exited" */
	bool oom_killed;   /* "oom_killed" */
} perch_state;

/* BackendInfo: what load reports.  Host-allocated; the plugin writes. */
#define PERCH_PLATFORM_MAX 64
typedef struct perch_backend_info {
	uint32_t struct_size;
	char platform[PERCH_PLATFORM_MAX]; /* "<os>/<arch>", e.g. linux/amd64 */
} perch_backend_info;

/* DiscoveredStep / DiscoveredWorkflow: what a backend still runs.  Built by
 * the plugin, valid only during the emit callback that receives them (the
 * host copies what it keeps), so no allocation crosses the boundary. */
typedef struct perch_discovered_step {
	uint32_t struct_size;
	uint32_t reserved0;
	const char *uuid;         /* the step's uuid */
	const char *name;         /* the step's name */
	const char *container_id; /* backend-specific id of what runs it */
} perch_discovered_step;

typedef struct perch_discovered_workflow {
	uint32_t struct_size;
	uint32_t reserved0;
	const char *task_uuid;
	const perch_discovered_step *const *steps;
	size_t n_steps;
} perch_discovered_workflow;

/* Map lookup helper: the value of key in m, or NULL.  Linear: maps are small. */
static inline const char *perch_map_get(const perch_map *m, const char *key)
{
	size_t i;
	for (i = 0; i < m->len; i++) {
		const char *a = m->items[i].key, *b = key;
		while (*a && *a == *b)
			a++, b++;
		if (*a == *b)
			return m->items[i].value;
	}
	return NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* PERCH_TYPES_H */
