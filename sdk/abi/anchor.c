/*
 * anchor.c - the perch v1 ABI as a shared object, for libabigail.
 *
 * The ABI is header-only, so there is no library whose symbols carry it.
 * This file makes one: it exports an object of every ABI type and one
 * function that takes a pointer to each (the opaque types included), so
 * that `abidw` records every type, field, offset and function-pointer
 * signature of the headers it was compiled with.  `make abi-check` builds
 * it (with -g) from the current headers and compares the dump with the
 * committed v1.0 baseline, sdk/abi/perch-v1.abi; see sdk/abi/README.md for
 * the rule.
 *
 * Never link this into anything: it exists to be dumped.
 */
#include <perch/perch.h>

#define PERCH_ABI_ANCHOR __attribute__((visibility("default"), used))

/* abi.h */
PERCH_ABI_ANCHOR perch_status perch_abi_status;
PERCH_ABI_ANCHOR perch_error perch_abi_error;
/* types.h */
PERCH_ABI_ANCHOR perch_strv perch_abi_strv;
PERCH_ABI_ANCHOR perch_kv perch_abi_kv;
PERCH_ABI_ANCHOR perch_map perch_abi_map;
PERCH_ABI_ANCHOR perch_auth perch_abi_auth;
PERCH_ABI_ANCHOR perch_conn perch_abi_conn;
PERCH_ABI_ANCHOR perch_host_alias perch_abi_host_alias;
PERCH_ABI_ANCHOR perch_port perch_abi_port;
PERCH_ABI_ANCHOR perch_secret perch_abi_secret;
PERCH_ABI_ANCHOR perch_step perch_abi_step;
PERCH_ABI_ANCHOR perch_stage perch_abi_stage;
PERCH_ABI_ANCHOR perch_config perch_abi_config;
PERCH_ABI_ANCHOR perch_state perch_abi_state;
PERCH_ABI_ANCHOR perch_backend_info perch_abi_backend_info;
PERCH_ABI_ANCHOR perch_discovered_step perch_abi_discovered_step;
PERCH_ABI_ANCHOR perch_discovered_workflow perch_abi_discovered_workflow;
/* flags.h */
PERCH_ABI_ANCHOR perch_flag_kind perch_abi_flag_kind;
PERCH_ABI_ANCHOR perch_flag perch_abi_flag;
/* host.h */
PERCH_ABI_ANCHOR perch_log_level perch_abi_log_level;
PERCH_ABI_ANCHOR perch_host perch_abi_host;
/* backend.h */
PERCH_ABI_ANCHOR perch_backend perch_abi_backend;
/* capabilities.h */
PERCH_ABI_ANCHOR perch_discover_fn perch_abi_discover_fn;
PERCH_ABI_ANCHOR perch_workflow_discoverer_v1 perch_abi_workflow_discoverer_v1;
PERCH_ABI_ANCHOR perch_resume_point perch_abi_resume_point;
PERCH_ABI_ANCHOR perch_workflow_resumer_v1 perch_abi_workflow_resumer_v1;

/* Every type once more, by pointer, and the three opaque ones. */
PERCH_ABI_ANCHOR void perch_abi_anchor(
	perch_status *status, perch_error *error, perch_strv *strv, perch_kv *kv, perch_map *map,
	perch_auth *auth, perch_conn *conn, perch_host_alias *host_alias, perch_port *port,
	perch_secret *secret, perch_step *step, perch_stage *stage, perch_config *config,
	perch_state *state, perch_backend_info *backend_info, perch_discovered_step *dstep,
	perch_discovered_workflow *dworkflow, perch_flag_kind *flag_kind, perch_flag *flag,
	perch_ctx *ctx, perch_cli *cli, perch_log_level *log_level, perch_host *host,
	perch_instance *instance, perch_backend *backend, perch_discover_fn *discover_fn,
	perch_workflow_discoverer_v1 *discoverer, perch_resume_point *resume_point,
	perch_workflow_resumer_v1 *resumer);

PERCH_ABI_ANCHOR void perch_abi_anchor(
	perch_status *status, perch_error *error, perch_strv *strv, perch_kv *kv, perch_map *map,
	perch_auth *auth, perch_conn *conn, perch_host_alias *host_alias, perch_port *port,
	perch_secret *secret, perch_step *step, perch_stage *stage, perch_config *config,
	perch_state *state, perch_backend_info *backend_info, perch_discovered_step *dstep,
	perch_discovered_workflow *dworkflow, perch_flag_kind *flag_kind, perch_flag *flag,
	perch_ctx *ctx, perch_cli *cli, perch_log_level *log_level, perch_host *host,
	perch_instance *instance, perch_backend *backend, perch_discover_fn *discover_fn,
	perch_workflow_discoverer_v1 *discoverer, perch_resume_point *resume_point,
	perch_workflow_resumer_v1 *resumer)
{
}
