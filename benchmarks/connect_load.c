/* New connection per request, as fast as one core allows: the load generator of workload (b).
 *
 * Each of CONCURRENCY slots loops: connect, (through a proxy) send CONNECT and
 * wait for its 200, send "GET /1k", read the whole response (Content-Length),
 * close. Time to first byte is measured from the connect() call to the first
 * byte of the HTTP response. Anything but a complete 200 response counts as a
 * failure. A Python asyncio client tops out near 5,000 connections/s on this
 * machine's core while it also competes with the proxy for CPU; this one needs
 * a fraction of that CPU for the same rate.
 *
 *   connect_load PROXY_PORT TARGET_PORT CONCURRENCY SECONDS COUNT [PROXY_AUTHORIZATION]
 *
 * PROXY_PORT 0 talks to the target directly. COUNT 0 means "until SECONDS".
 * Prints one JSON object. Everything is on 127.0.0.1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CONNECTING, WAIT_TUNNEL, WAIT_HEAD, WAIT_BODY };
#define BUF 16384
#define TIMEOUT_S 10.0

struct slot {
    int fd, state, len;
    long body_left;
    double started, first_byte;
    char buf[BUF];
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int epfd, proxy_port, target_port;
static char connect_req[1024], get_req[256];
static long ok_count, fail_count, err_connect, err_status, err_closed, err_timeout;
static double *ttfb;
static long ttfb_cap;

static void record(double value) {
    if (ok_count >= ttfb_cap) {
        ttfb_cap = ttfb_cap ? ttfb_cap * 2 : 65536;
        ttfb = realloc(ttfb, ttfb_cap * sizeof(double));
    }
    ttfb[ok_count] = value;
}

static void start(struct slot *s) {
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_port = htons(proxy_port ? proxy_port : target_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->state = CONNECTING;
    s->len = 0;
    s->body_left = -1;
    s->first_byte = 0;
    s->started = now();
    connect(s->fd, (struct sockaddr *)&addr, sizeof addr);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
}

static void finish(struct slot *s, long *error) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    if (error) {
        fail_count++;
        (*error)++;
    } else {
        record(s->first_byte - s->started);
        ok_count++;
    }
    s->fd = -1;
}

static int status_ok(const char *head) { /* "HTTP/1.x 200 ..." */
    return strncmp(head, "HTTP/1.", 7) == 0 && strncmp(head + 8, " 200", 4) == 0;
}

static void on_readable(struct slot *s) {
    for (;;) {
        ssize_t n = read(s->fd, s->buf + s->len, BUF - 1 - s->len);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) { finish(s, &err_closed); return; }
        if (!s->first_byte && s->state != WAIT_TUNNEL) s->first_byte = now();
        s->len += n;
        s->buf[s->len] = 0;
        if (s->state == WAIT_TUNNEL) {
            char *end = strstr(s->buf, "\r\n\r\n");
            if (!end) continue;
            if (!status_ok(s->buf)) { finish(s, &err_status); return; }
            int rest = s->len - (int)(end + 4 - s->buf);
            memmove(s->buf, end + 4, rest);
            s->len = rest;
            s->state = WAIT_HEAD;
            if (write(s->fd, get_req, strlen(get_req)) < 0) { finish(s, &err_closed); return; }
            if (!rest) continue;
            s->first_byte = now();
        }
        if (s->state == WAIT_HEAD) {
            s->buf[s->len] = 0;
            char *end = strstr(s->buf, "\r\n\r\n");
            if (!end) continue;
            if (!status_ok(s->buf)) { finish(s, &err_status); return; }
            char *cl = strcasestr(s->buf, "\r\ncontent-length:");
            long length = cl ? atol(cl + 17) : 0;
            s->body_left = length - (s->len - (int)(end + 4 - s->buf));
            s->state = WAIT_BODY;
            s->len = 0;
        } else if (s->state == WAIT_BODY) {
            s->body_left -= s->len;
            s->len = 0;
        }
        if (s->state == WAIT_BODY && s->body_left <= 0) { finish(s, NULL); return; }
    }
}

static void on_writable(struct slot *s) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { finish(s, &err_connect); return; }
    const char *req = proxy_port ? connect_req : get_req;
    s->state = proxy_port ? WAIT_TUNNEL : WAIT_HEAD;
    if (write(s->fd, req, strlen(req)) < 0) { finish(s, &err_closed); return; }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PROXY_PORT TARGET_PORT CONCURRENCY SECONDS COUNT [AUTH]\n", argv[0]);
        return 2;
    }
    proxy_port = atoi(argv[1]);
    target_port = atoi(argv[2]);
    int concurrency = atoi(argv[3]);
    double seconds = atof(argv[4]);
    long count = atol(argv[5]);
    const char *auth = argc > 6 ? argv[6] : "";
    char authline[600] = "";
    if (*auth) snprintf(authline, sizeof authline, "Proxy-Authorization: %s\r\n", auth);
    snprintf(connect_req, sizeof connect_req,
             "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", target_port,
             target_port, authline);
    snprintf(get_req, sizeof get_req, "GET /1k HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", target_port);

    epfd = epoll_create1(0);
    struct slot *slots = calloc(concurrency, sizeof *slots);
    double began = now(), stop_at = began + seconds;
    long started = 0;
    int active = 0;
    for (int i = 0; i < concurrency; i++) slots[i].fd = -1;
    for (int i = 0; i < concurrency && (!count || started < count); i++, started++, active++)
        start(&slots[i]);
    struct epoll_event events[256];
    while (active > 0) {
        int n = epoll_wait(epfd, events, 256, 100);
        double t = now();
        for (int i = 0; i < n; i++) {
            struct slot *s = events[i].data.ptr;
            if (s->fd < 0) continue;
            if (s->state == CONNECTING) on_writable(s);
            else on_readable(s);
        }
        for (int i = 0; i < concurrency; i++) {
            struct slot *s = &slots[i];
            if (s->fd >= 0 && t - s->started > TIMEOUT_S) finish(s, &err_timeout);
            if (s->fd >= 0 || s->started == 0) continue;
            if (t < stop_at && (!count || started < count)) {
                start(s);
                started++;
            } else {
                s->started = 0; /* this slot is done */
                active--;
            }
        }
    }
    double elapsed = now() - began;
    qsort(ttfb, ok_count, sizeof(double), cmp);
    double p50 = ok_count ? ttfb[ok_count / 2] * 1000 : -1;
    double p99 = ok_count ? ttfb[(long)(ok_count * 0.99)] * 1000 : -1;
    printf("{\"ok\": %ld, \"failures\": %ld, \"errors\": {\"connect\": %ld, \"status\": %ld, "
           "\"closed\": %ld, \"timeout\": %ld}, \"seconds\": %.3f, \"per_second\": %.1f, "
           "\"ttfb_p50_ms\": %.3f, \"ttfb_p99_ms\": %.3f}\n",
           ok_count, fail_count, err_connect, err_status, err_closed, err_timeout, elapsed,
           ok_count / elapsed, p50, p99);
    return 0;
}
