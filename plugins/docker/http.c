/*
 * http.c - the transport: one HTTP request to the engine through libcurl.
 *
 * Each request gets its own easy handle and runs in its own multi handle,
 * so that any number of threads can talk to the engine at once (easy
 * handles are not shareable) and so that every request can be aborted:
 * curl_multi_poll() watches the caller's cancel descriptors beside the
 * transfer's sockets, which is how a blocking POST /wait or a followed log
 * stream returns at once when the step's context is cancelled or the step
 * is destroyed.
 *
 * The handles are per request, but the connections are not: every client
 * holds a libcurl share (a connection cache, DNS and TLS sessions) that its
 * requests draw from, so a step's create, start, wait and inspect ride
 * connections that earlier requests opened (a TLS handshake to a remote
 * engine costs far more than the request).  A cancelled or broken transfer
 * closes its connection; an idle one the engine dropped is noticed and
 * replaced by libcurl before reuse.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connecting to a local engine is instant; a remote one gets a while. */
#define CONNECT_TIMEOUT_MS 15000L
/* libcurl's read size for streamed bodies (its default is 16 KiB). */
#define STREAM_BUFFER (256L * 1024)

/* The client's shared libcurl state and the locks libcurl asks for: one
 * mutex per kind of shared data. */
struct perch_docker_pool {
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

static void pool_lock(CURL *h, curl_lock_data data, curl_lock_access access,
		      void *user)
{
	perch_docker_pool *p = user;
	(void)h;
	(void)access;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&p->locks[data]);
}

static void pool_unlock(CURL *h, curl_lock_data data, void *user)
{
	perch_docker_pool *p = user;
	(void)h;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&p->locks[data]);
}

static void pool_free(perch_docker_pool *p)
{
	if (p == NULL)
		return;
	if (p->share != NULL)
		curl_share_cleanup(p->share); /* closes the idle connections */
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&p->locks[i]);
	free(p);
}

/* A new pool, or NULL when libcurl cannot make one (requests then open
 * their own connections, as they would without it). */
static perch_docker_pool *pool_new(void)
{
	perch_docker_pool *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->locks[i], NULL);
	p->share = curl_share_init();
	if (p->share == NULL ||
	    curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, pool_lock) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, pool_unlock) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_USERDATA, p) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
	    curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
		pool_free(p);
		return NULL;
	}
	return p;
}

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static char *join_path(const char *dir, const char *file)
{
	pp_buf b = {0};
	pp_buf_printf(&b, "%s/%s", dir, file);
	return pp_buf_steal(&b);
}

perch_status perch_docker_client_init(perch_docker_client *c, const char *host,
				      const char *cert_path, bool tls_verify,
				      perch_error *err)
{
	pp_buf url = {0};
	const char *rest;
	bool tls = false;

	memset(c, 0, sizeof *c);
	c->tls_verify = tls_verify;
	c->pool = pool_new();
	if (host == NULL || *host == '\0')
		host = "unix://" PERCH_DOCKER_DEFAULT_SOCKET;
	c->display = strdup(host);
	if (c->display == NULL)
		goto oom;
	if (host[0] == '/' || has_prefix(host, "unix://")) {
		c->socket_path = strdup(host[0] == '/' ? host : host + 7);
		c->base_url = strdup("http://localhost");
		if (c->socket_path == NULL || c->base_url == NULL)
			goto oom;
		if (c->socket_path[0] != '/')
			return perch_error_set(
				err, PERCH_ERR_INVALID_INPUT,
				"docker host %s: the socket path must be absolute",
				host);
		return PERCH_OK;
	}
	if (has_prefix(host, "tcp://")) {
		rest = host + 6;
		/* Docker's client: a tcp host is TLS when it has certificates. */
		tls = cert_path != NULL && *cert_path != '\0';
	} else if (has_prefix(host, "http://")) {
		rest = host + 7;
	} else if (has_prefix(host, "https://")) {
		rest = host + 8;
		tls = true;
	} else {
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "docker host %s: want unix:///path, "
				       "tcp://host:port, http:// or https://",
				       host);
	}
	if (*rest == '\0' || *rest == '/')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "docker host %s has no address", host);
	pp_buf_printf(&url, "%s://%s", tls ? "https" : "http", rest);
	/* "tcp://h:2376/" and "tcp://h:2376" name the same engine. */
	while (url.len > 0 && url.data[url.len - 1] == '/')
		url.data[--url.len] = '\0';
	c->base_url = pp_buf_steal(&url);
	if (c->base_url == NULL)
		goto oom;
	if (cert_path != NULL && *cert_path != '\0') {
		c->ca_file = join_path(cert_path, "ca.pem");
		c->cert_file = join_path(cert_path, "cert.pem");
		c->key_file = join_path(cert_path, "key.pem");
		if (c->ca_file == NULL || c->cert_file == NULL ||
		    c->key_file == NULL)
			goto oom;
		for (int i = 0; i < 3; i++) {
			const char *f = i == 0 ? c->ca_file
					: i == 1 ? c->cert_file
						 : c->key_file;
			if (access(f, R_OK) != 0)
				return perch_error_set(
					err, PERCH_ERR_INVALID_INPUT,
					"docker TLS: cannot read %s: %s", f,
					strerror(errno));
		}
	}
	return PERCH_OK;
oom:
	return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
}

void perch_docker_client_free(perch_docker_client *c)
{
	free(c->display);
	free(c->socket_path);
	free(c->base_url);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	pool_free(c->pool);
	memset(c, 0, sizeof *c);
}

void perch_docker_resp_free(perch_docker_resp *resp)
{
	pp_buf_free(&resp->body);
}

typedef struct xfer {
	const perch_docker_req *req;
	perch_docker_resp *resp;
} xfer;

static size_t on_write(char *p, size_t size, size_t nmemb, void *user)
{
	xfer *x = user;
	size_t n = size * nmemb;

	if (x->req->on_data != NULL) {
		if (!x->req->on_data(x->req->user, p, n)) {
			x->resp->stopped = true;
			return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
		}
		return n;
	}
	pp_buf_add(&x->resp->body, p, n);
	return x->resp->body.oom ? 0 : n;
}

static bool fd_ready(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP));
}

/* Drives h to completion or cancellation.  Returns the transfer's CURLcode
 * (CURLE_ABORTED_BY_CALLBACK when cancelled). */
static CURLcode run(CURL *h, const perch_docker_req *r, perch_docker_resp *resp)
{
	CURLM *m = curl_multi_init();
	CURLcode rc = CURLE_OK;
	int running = 1;

	if (m == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (curl_multi_add_handle(m, h) != CURLM_OK) {
		curl_multi_cleanup(m);
		return CURLE_OUT_OF_MEMORY;
	}
	while (running) {
		struct curl_waitfd extra[2];
		unsigned n = 0;
		CURLMcode mc = curl_multi_perform(m, &running);
		if (mc != CURLM_OK) {
			rc = CURLE_RECV_ERROR;
			break;
		}
		/* A read's worth of the body has gone to on_data (one HTTP
		 * chunk at a time: the engine sends a log line per chunk). */
		if (r->on_flush != NULL && !resp->stopped &&
		    !r->on_flush(r->user)) {
			resp->stopped = true;
			rc = CURLE_WRITE_ERROR;
			break;
		}
		if (!running)
			break;
		for (int i = 0; i < 2; i++) {
			if (r->cancel_fd[i] < 0)
				continue;
			extra[n].fd = r->cancel_fd[i];
			extra[n].events = CURL_WAIT_POLLIN;
			extra[n].revents = 0;
			n++;
		}
		mc = curl_multi_poll(m, extra, n, 1000, NULL);
		if (mc != CURLM_OK) {
			rc = CURLE_RECV_ERROR;
			break;
		}
		if (fd_ready(r->cancel_fd[0]) || fd_ready(r->cancel_fd[1])) {
			resp->cancelled = true;
			rc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
	}
	if (!resp->cancelled) {
		int left;
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				rc = msg->data.result;
	}
	curl_multi_remove_handle(m, h);
	curl_multi_cleanup(m);
	return rc;
}

bool perch_docker_http(const perch_docker_client *c, const perch_docker_req *r,
		       perch_docker_resp *resp)
{
	pp_buf url = {0};
	struct curl_slist *hdr = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *u, *auth_hdr = NULL;
	xfer x = {r, resp};
	CURL *h;
	CURLcode rc;
	long os_errno = 0;

	pp_buf_puts(&url, c->base_url);
	if (!r->unversioned && c->api[0] != '\0')
		pp_buf_printf(&url, "/v%s", c->api);
	pp_buf_puts(&url, r->path);
	u = pp_buf_steal(&url);
	h = curl_easy_init();
	if (u == NULL || h == NULL) {
		free(u);
		if (h != NULL)
			curl_easy_cleanup(h);
		resp->curl_code = CURLE_OUT_OF_MEMORY;
		snprintf(resp->curl_error, sizeof resp->curl_error,
			 "out of memory");
		return false;
	}
	curl_easy_setopt(h, CURLOPT_URL, u);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (r->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	if (c->pool != NULL)
		curl_easy_setopt(h, CURLOPT_SHARE, c->pool->share);
	if (r->fresh) {
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		/* And a full TLS handshake: some TLS fronts (socat asking for
		 * a client certificate) fail a resumed session outright. */
		curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	if (c->socket_path != NULL)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	if (c->ca_file != NULL) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	}
	if (!c->tls_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
				 (long)(r->body ? strlen(r->body) : 0));
	}
	if (r->body != NULL)
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
	if (r->registry_auth != NULL) {
		pp_buf ab = {0};
		pp_buf_printf(&ab, "X-Registry-Auth: %s",
					r->registry_auth);
		auth_hdr = pp_buf_steal(&ab);
		if (auth_hdr != NULL)
			hdr = curl_slist_append(hdr, auth_hdr);
	}
	/* curl would send "Expect: 100-continue" for big bodies and wait. */
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	/* Streams (logs, pulls) in bigger reads: fewer calls per byte. */
	if (r->on_data != NULL)
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, STREAM_BUFFER);

	rc = run(h, r, resp);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	resp->os_errno = (int)os_errno;
	resp->curl_code = (int)rc;
	if (rc != CURLE_OK && !resp->cancelled && !resp->stopped)
		snprintf(resp->curl_error, sizeof resp->curl_error, "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	free(auth_hdr);
	free(u);
	if (resp->body.oom) {
		resp->curl_code = CURLE_OUT_OF_MEMORY;
		snprintf(resp->curl_error, sizeof resp->curl_error,
			 "out of memory");
		return false;
	}
	return rc == CURLE_OK;
}
