/*
 * demux.c - Docker's multiplexed log stream, split back into payloads.
 *
 * Without a TTY the engine frames stdout and stderr in one stream: an
 * 8-byte header (stream 0/1/2, three zero bytes, the payload length as a
 * big-endian uint32) and then the payload.  Frames arrive in whatever
 * pieces the transport makes, so the parser keeps its place between calls.
 * perch hands the host stdout and stderr interleaved, as Woodpecker does.
 */
#define _GNU_SOURCE
#include "docker.h"

bool perch_docker_demux_feed(perch_docker_demux *d, const char *data,
			     size_t n, perch_docker_data_fn emit, void *user)
{
	if (d->tty)
		return n == 0 || emit(user, data, n);
	while (n > 0) {
		if (d->left > 0) {
			size_t take = n < d->left ? n : d->left;
			if (!emit(user, data, take))
				return false;
			d->left -= (uint32_t)take;
			data += take;
			n -= take;
			continue;
		}
		while (d->hdr_len < 8 && n > 0) {
			d->hdr[d->hdr_len++] = (unsigned char)*data++;
			n--;
		}
		if (d->hdr_len < 8)
			break;
		if (d->hdr[0] > 2)
			return false;
		d->left = (uint32_t)d->hdr[4] << 24 | (uint32_t)d->hdr[5] << 16 |
			  (uint32_t)d->hdr[6] << 8 | d->hdr[7];
		d->hdr_len = 0;
	}
	return true;
}
