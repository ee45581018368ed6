/* The test node's pod sandbox: the first process of every pod's namespaces.
 * It holds them open until the kubelet stops the pod (SIGTERM, or SIGINT by hand) and, as PID 1
 * of a shared PID namespace, reaps the orphans re-parented to it.
 * Built by `cargo xtask test-images` with `cc -Os -static`: the image holds this file alone. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
    (void)signo;
    _exit(0);
}

static void reap(int signo) {
    int saved = errno; /* a handler must not change errno under the interrupted code */
    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

int main(void) {
    struct sigaction down = {.sa_handler = stop};
    struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigemptyset(&down.sa_mask);
    sigemptyset(&child.sa_mask);
    /* PID 1 gets no default signal actions: without handlers SIGTERM would be ignored. */
    if (sigaction(SIGTERM, &down, NULL) || sigaction(SIGINT, &down, NULL) ||
        sigaction(SIGCHLD, &child, NULL)) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
