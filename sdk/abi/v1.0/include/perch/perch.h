/*
 * perch/perch.h - the whole perch plugin SDK.  Include this one header.
 *
 *   #include <perch/perch.h>
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags perch) ...
 *
 * See docs/plugin-guide.md for the contract in prose.
 */
#ifndef PERCH_PERCH_H
#define PERCH_PERCH_H

#include <perch/abi.h>
#include <perch/types.h>
#include <perch/flags.h>
#include <perch/host.h>
#include <perch/backend.h>
#include <perch/capabilities.h>
#include <perch/layout.h>

#endif /* PERCH_PERCH_H */
