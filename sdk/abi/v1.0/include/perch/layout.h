/*
 * perch/layout.h - compile-time pins of the v1 layout.
 *
 * These asserts fail the build of any plugin or host whose compiler lays out
 * a v1 struct differently from the reference (LP64 Linux, x86_64/aarch64),
 * for example through packing pragmas or a mismatched ABI.  Appending a field
 * changes only the sizeof() lines; changing an offset here is a major bump.
 */
#ifndef PERCH_LAYOUT_H
#define PERCH_LAYOUT_H

#include <perch/capabilities.h>

#if defined(__cplusplus)
#define PERCH_PIN(cond, msg) static_assert(cond, msg)
#else
#define PERCH_PIN(cond, msg) _Static_assert(cond, msg)
#endif

#if defined(__LP64__) || defined(_LP64)
PERCH_PIN(sizeof(perch_error) == 1032, "perch_error layout");
PERCH_PIN(offsetof(perch_error, message) == 8, "perch_error.message");
PERCH_PIN(sizeof(perch_strv) == 16 && sizeof(perch_map) == 16, "list layout");
PERCH_PIN(sizeof(perch_kv) == 16 && sizeof(perch_auth) == 16, "kv layout");
PERCH_PIN(sizeof(perch_conn) == 24 && sizeof(perch_port) == 16, "conn/port");
PERCH_PIN(sizeof(perch_host_alias) == 16 && sizeof(perch_secret) == 16,
	  "alias/secret layout");
PERCH_PIN(offsetof(perch_step, name) == 8, "perch_step.name");
PERCH_PIN(offsetof(perch_step, org_id) == 16, "perch_step.org_id");
PERCH_PIN(offsetof(perch_step, image) == 40, "perch_step.image");
PERCH_PIN(offsetof(perch_step, pull) == 48, "perch_step.pull");
PERCH_PIN(offsetof(perch_step, working_dir) == 56, "perch_step.working_dir");
PERCH_PIN(offsetof(perch_step, environment) == 72, "perch_step.environment");
PERCH_PIN(offsetof(perch_step, extra_hosts) == 136, "perch_step.extra_hosts");
PERCH_PIN(offsetof(perch_step, networks) == 200, "perch_step.networks");
PERCH_PIN(offsetof(perch_step, on_failure) == 248, "perch_step.on_failure");
PERCH_PIN(offsetof(perch_step, auth_config) == 264, "perch_step.auth_config");
PERCH_PIN(offsetof(perch_step, backend_options) == 304,
	  "perch_step.backend_options");
PERCH_PIN(offsetof(perch_step, depends_on) == 336, "perch_step.depends_on");
PERCH_PIN(sizeof(perch_step) == 352, "perch_step v1.0 size");
PERCH_PIN(sizeof(perch_stage) == 24, "perch_stage v1.0 size");
PERCH_PIN(offsetof(perch_config, secrets) == 40, "perch_config.secrets");
PERCH_PIN(sizeof(perch_config) == 56, "perch_config v1.0 size");
PERCH_PIN(sizeof(perch_state) == 12, "perch_state v1.0 size");
PERCH_PIN(sizeof(perch_backend_info) == 68, "perch_backend_info v1.0 size");
PERCH_PIN(sizeof(perch_flag) == 40, "perch_flag v1.0 size");
PERCH_PIN(offsetof(perch_backend, name) == 16, "perch_backend.name");
PERCH_PIN(offsetof(perch_backend, is_available) == 48,
	  "perch_backend.is_available");
PERCH_PIN(offsetof(perch_backend, get_capability) == 120,
	  "perch_backend.get_capability");
PERCH_PIN(sizeof(perch_backend) == 128, "perch_backend v1.0 size");
PERCH_PIN(offsetof(perch_host, log) == 32, "perch_host.log");
PERCH_PIN(sizeof(perch_host) == 128, "perch_host v1.0 size");
PERCH_PIN(sizeof(perch_discovered_step) == 32, "discovered step v1.0");
PERCH_PIN(sizeof(perch_discovered_workflow) == 32, "discovered wf v1.0");
PERCH_PIN(sizeof(perch_workflow_discoverer_v1) == 16, "discoverer v1.0");
PERCH_PIN(sizeof(perch_workflow_resumer_v1) == 16, "resumer v1.0");
PERCH_PIN(sizeof(perch_resume_point) == 32, "resume point v1.0");
#endif

#undef PERCH_PIN
#endif /* PERCH_LAYOUT_H */
