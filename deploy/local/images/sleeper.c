/*
 * sleeper: the only file of tandem/shellless:local, a stand-in for distroless sidecars.
 * It has no shell and no kill, so nothing useful can be exec'd into it. As PID 1 with default
 * dispositions it ignores TERM, both from inside its PID namespace and from the runtime (the
 * kernel delivers to init only signals it handles, and KILL from an ancestor namespace), so only
 * the runtime's KILL after the grace period ends it, with 137.
 *   /sleeper                        sleep forever
 *   /sleeper --exit-on-term CODE    sleep forever, exit with CODE (0-255) on TERM
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int term_code;

static void on_term(int sig) {
    (void)sig;
    _exit(term_code);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--exit-on-term") == 0) {
        char *end;
        long code = strtol(argv[2], &end, 10);
        if (*argv[2] == '\0' || *end != '\0' || code < 0 || code > 255) {
            fprintf(stderr, "sleeper: CODE must be 0-255, got %s\n", argv[2]);
            return 2;
        }
        term_code = (int)code;
        struct sigaction sa = {0};
        sa.sa_handler = on_term;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
    } else if (argc != 1) {
        fprintf(stderr, "usage: sleeper [--exit-on-term CODE]\n");
        return 2;
    }
    for (;;)
        pause();
}
