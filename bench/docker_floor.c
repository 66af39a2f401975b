/*
 * docker_floor.c - the engine's own floor for running a container: the
 * least any client can do to run one, against which perch's docker
 * backend and the docker CLI are measured (bench/docker_steps.sh).
 *
 * For each of N containers, in series: POST /containers/create, POST
 * /containers/{id}/start, POST /containers/{id}/wait, DELETE
 * /containers/{id} - over one connection (one libcurl easy handle, reused,
 * so every request after the first rides the same unix-socket
 * connection), with no inspect, no log stream, no labels and no polling.
 * Prints the median time of each call and the total on stdout:
 *
 *   floor: 20 containers, 4380 ms: create 6.1 start 158.3 wait 63.9
 *   remove 5.8 ms (median per call), 1 connection
 *
 * usage: docker_floor [-n N] [-s SOCKET] IMAGE CMD [ARG...]
 * Exits 1 when a call fails or a container exits non-zero.
 */
#include "config.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { CREATE, START, WAIT, REMOVE, N_CALLS };
static const char *const call_names[N_CALLS] = {"create", "start", "wait",
						"remove"};

/* A reply body, collected by on_write. */
typedef struct reply {
	char *data;
	size_t len;
} reply;

static size_t on_write(char *p, size_t size, size_t nmemb, void *user)
{
	reply *r = user;
	size_t n = size * nmemb;
	char *d = realloc(r->data, r->len + n + 1);

	if (d == NULL)
		return 0;
	memcpy(d + r->len, p, n);
	r->len += n;
	d[r->len] = '\0';
	r->data = d;
	return n;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One request on the shared handle h; the reply (NUL-terminated, or NULL
 * when empty) into *out, which the caller frees.  Exits on a transport
 * error or an unexpected status: a floor with a failed call is no floor.
 * *connects counts the new connections (1 in all when every request
 * reused the first). */
static char *call(CURL *h, long *connects, const char *method,
		  const char *url, const char *body, long want)
{
	reply r = {NULL, 0};
	long status = 0, made = 0;
	CURLcode rc;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &made);
	*connects += made;
	if (rc != CURLE_OK || status != want) {
		fprintf(stderr, "docker_floor: %s %s: %s (HTTP %ld): %s\n", method,
			url, curl_easy_strerror(rc), status,
			r.data ? r.data : "");
		exit(1);
	}
	return r.data;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *sock = "/var/run/docker.sock";
	long n = 20;
	long connects = 0;
	int opt;

	while ((opt = getopt(argc, argv, "+n:s:")) != -1) {
		if (opt == 'n')
			n = strtol(optarg, NULL, 10);
		else if (opt == 's')
			sock = optarg;
		else
			goto usage;
	}
	if (argc - optind < 2 || n < 1)
		goto usage;

	json_object *create = json_object_new_object();
	json_object *cmd = json_object_new_array();
	for (int i = optind + 1; i < argc; i++)
		json_object_array_add(cmd, json_object_new_string(argv[i]));
	json_object_object_add(create, "Image",
			       json_object_new_string(argv[optind]));
	json_object_object_add(create, "Cmd", cmd);
	const char *body =
		json_object_to_json_string_ext(create, JSON_C_TO_STRING_PLAIN);

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 2;
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = NULL;
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);

	double *t[N_CALLS];
	for (int c = 0; c < N_CALLS; c++)
		t[c] = calloc((size_t)n, sizeof **t);
	double t0 = now_ms();
	int failed = 0;
	for (long i = 0; i < n; i++) {
		char url[512];
		double a = now_ms();
		char *r = call(h, &connects, "POST", "http://localhost/containers/create",
			       body, 201);
		json_object *o = json_tokener_parse(r ? r : "");
		json_object *v = NULL;
		if (!json_object_object_get_ex(o, "Id", &v)) {
			fprintf(stderr, "docker_floor: no Id in %s\n", r);
			return 1;
		}
		char id[128];
		snprintf(id, sizeof id, "%s", json_object_get_string(v));
		json_object_put(o);
		free(r);
		double b = now_ms();
		snprintf(url, sizeof url, "http://localhost/containers/%s/start", id);
		free(call(h, &connects, "POST", url, NULL, 204));
		double c = now_ms();
		snprintf(url, sizeof url, "http://localhost/containers/%s/wait", id);
		r = call(h, &connects, "POST", url, NULL, 200);
		o = json_tokener_parse(r ? r : "");
		if (!json_object_object_get_ex(o, "StatusCode", &v) ||
		    json_object_get_int(v) != 0)
			failed = 1;
		json_object_put(o);
		free(r);
		double d = now_ms();
		snprintf(url, sizeof url, "http://localhost/containers/%s?v=1", id);
		free(call(h, &connects, "DELETE", url, NULL, 204));
		double e = now_ms();
		t[CREATE][i] = b - a;
		t[START][i] = c - b;
		t[WAIT][i] = d - c;
		t[REMOVE][i] = e - d;
	}
	double total = now_ms() - t0;

	printf("floor: %ld containers, %.0f ms:", n, total);
	for (int c = 0; c < N_CALLS; c++) {
		printf(" %s %.1f", call_names[c], median(t[c], (size_t)n));
		free(t[c]);
	}
	printf(" ms (median per call), %ld connection%s\n", connects,
	       connects == 1 ? "" : "s");
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	json_object_put(create);
	if (failed)
		fprintf(stderr, "docker_floor: a container exited non-zero\n");
	return failed;
usage:
	fprintf(stderr, "usage: docker_floor [-n N] [-s SOCKET] IMAGE CMD [ARG...]\n");
	return 2;
}
