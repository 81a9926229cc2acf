/*
 * sleeper: the only file of tandem/shellless:local, a stand-in for distroless sidecars.
 * It has no shell and no kill, so nothing useful can be exec'd into it. As PID 1 with default
 * dispositions it ignores TERM, both from inside its PID namespace and from the runtime (the
 * kernel delivers to init only signals it handles, and KILL from an ancestor namespace), so only
 * the runtime's KILL after the grace period ends it, with 137.
 *   /sleeper                              sleep forever
 *   /sleeper --exit-on-term CODE          sleep forever, exit with CODE (0-255) on TERM
 *   /sleeper --exit-on SIG CODE [...]     the same for SIG (TERM, INT, HUP, USR1, USR2), repeatable
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int codes[NSIG];

static void on_signal(int sig) { _exit(codes[sig]); }

static int signal_number(const char *name) {
    static const struct { const char *name; int number; } known[] = {
        {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0)
            return known[i].number;
    return -1;
}

static int handle(const char *name, const char *code_text) {
    char *end;
    long code = strtol(code_text, &end, 10);
    int sig = signal_number(name);
    if (sig < 0 || *code_text == '\0' || *end != '\0' || code < 0 || code > 255) {
        fprintf(stderr, "sleeper: want SIG (TERM INT HUP USR1 USR2) and CODE 0-255, got %s %s\n",
                name, code_text);
        return -1;
    }
    codes[sig] = (int)code;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc;) {
        if (strcmp(argv[i], "--exit-on-term") == 0 && i + 1 < argc) {
            if (handle("TERM", argv[i + 1]) < 0)
                return 2;
            i += 2;
        } else if (strcmp(argv[i], "--exit-on") == 0 && i + 2 < argc) {
            if (handle(argv[i + 1], argv[i + 2]) < 0)
                return 2;
            i += 3;
        } else {
            fprintf(stderr, "usage: sleeper [--exit-on-term CODE] [--exit-on SIG CODE]...\n");
            return 2;
        }
    }
    for (;;)
        pause();
}
