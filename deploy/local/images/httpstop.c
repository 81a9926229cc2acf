/*
 * httpstop: the only server of tandem/httpstop:local, a stand-in for sidecars such as
 * cloud-sql-proxy that stop on an HTTP call rather than on a signal.
 *   POST /quitquitquit  200, then exit 0 once the client has hung up
 *   GET  /healthz       200
 *   anything else       404
 *   TERM                exit 143 (explicit: as PID 1 the default disposition would ignore it)
 * It listens on 127.0.0.1 only (--port N, default 9091): it is reached from inside the pod.
 * One connection at a time is enough for a test fixture and keeps it small.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define BODY_MAX (1 << 20)

static void on_term(int sig) {
    (void)sig;
    _exit(143);
}

static int parse_port(int argc, char **argv) {
    if (argc == 1)
        return 9091;
    char *end = NULL;
    long port = argc == 3 && strcmp(argv[1], "--port") == 0 ? strtol(argv[2], &end, 10) : 0;
    if (end == NULL || *argv[2] == '\0' || *end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "usage: httpstop [--port N]\n");
        exit(2);
    }
    return (int)port;
}

static int listen_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) {
        perror("httpstop: listen on 127.0.0.1");
        exit(1);
    }
    return fd;
}

/* Reads the request head, then discards a Content-Length body so that closing the socket does
 * not reset the connection before the client has read the reply. Returns 0, or -1 on error. */
static int read_request(int fd, char *head) {
    size_t len = 0;
    char *end = NULL;
    while (end == NULL) {
        if (len == HEAD_MAX - 1)
            return -1;
        ssize_t n = recv(fd, head + len, HEAD_MAX - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        head[len] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    size_t have = len - (size_t)(end + 4 - head);
    char *cl = strcasestr(head, "\r\nContent-Length:");
    long want = cl != NULL && cl < end ? strtol(cl + 17, NULL, 10) : 0;
    if (want > BODY_MAX)
        return -1;
    char sink[4096];
    for (long left = want - (long)have; left > 0;) {
        ssize_t n = recv(fd, sink, sizeof sink, 0);
        if (n <= 0)
            return -1;
        left -= n;
    }
    return 0;
}

static void reply(int fd, int status, const char *body) {
    char out[256];
    const char *reason = status == 200 ? "OK" : "Not Found";
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, reason, strlen(body), body);
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, out + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w <= 0)
            return;
        off += (int)w;
    }
}

/* Waits for the client to hang up (at most 2 s), then 100 ms more. When PID 1 exits the kernel
 * kills everything left in its PID namespace, so a wget exec'd into this same container would
 * otherwise die with 137 before it exits by itself, though the quit worked. */
static void await_hangup(int fd) {
    char sink[512];
    struct timeval timeout = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (recv(fd, sink, sizeof sink, 0) > 0) {
    }
    usleep(100 * 1000);
}

/* Serves one connection; returns 1 when the server should exit. */
static int serve(int fd) {
    char head[HEAD_MAX];
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (read_request(fd, head) < 0)
        return 0;
    int quit = strncmp(head, "POST /quitquitquit ", 19) == 0;
    if (quit)
        reply(fd, 200, "quitting\n");
    else if (strncmp(head, "GET /healthz ", 13) == 0)
        reply(fd, 200, "ok\n");
    else
        reply(fd, 404, "not found\n");
    shutdown(fd, SHUT_WR);
    if (quit)
        await_hangup(fd);
    return quit;
}

int main(int argc, char **argv) {
    int port = parse_port(argc, argv);
    struct sigaction sa = {0};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_loopback(port);
    fprintf(stderr, "httpstop: listening on 127.0.0.1:%d\n", port);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                perror("httpstop: accept");
            continue;
        }
        int quit = serve(fd);
        close(fd);
        if (quit) {
            fprintf(stderr, "httpstop: POST /quitquitquit, exiting 0\n");
            return 0;
        }
    }
}
