// Process identity: a lock holder is gone when its PID is free, reused, or a zombie.
#include "core/shm_sync.h"

#include <boost/test/unit_test.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using rhythm::ProcessIdentity;

BOOST_AUTO_TEST_SUITE(shm_sync)

BOOST_AUTO_TEST_CASE(this_process_is_alive) {
    ProcessIdentity me = rhythm::current_process();
    BOOST_TEST(me.pid == getpid());
    BOOST_TEST(me.start_ticks > 0u);
    BOOST_TEST(!rhythm::process_is_gone(me));
}

BOOST_AUTO_TEST_CASE(a_reused_pid_is_not_the_same_process) {
    ProcessIdentity impostor = rhythm::current_process();
    impostor.start_ticks += 1;  // what a later process under this PID would show
    BOOST_TEST(rhythm::process_is_gone(impostor));
}

BOOST_AUTO_TEST_CASE(a_zombie_and_a_reaped_child_are_gone) {
    int ready[2];
    BOOST_REQUIRE(pipe(ready) == 0);
    pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
        ProcessIdentity child = rhythm::current_process();
        (void)!write(ready[1], &child, sizeof child);
        pause();
        _exit(0);
    }
    ProcessIdentity child;
    BOOST_REQUIRE(read(ready[0], &child, sizeof child) == static_cast<ssize_t>(sizeof child));
    BOOST_TEST(!rhythm::process_is_gone(child));
    kill(pid, SIGKILL);
    // Not reaped yet: a zombie, which holds no lock any more.
    siginfo_t info;
    BOOST_REQUIRE(waitid(P_PID, pid, &info, WEXITED | WNOWAIT) == 0);
    BOOST_TEST(rhythm::process_is_gone(child));
    waitpid(pid, nullptr, 0);
    BOOST_TEST(rhythm::process_is_gone(child));
    close(ready[0]);
    close(ready[1]);
}

BOOST_AUTO_TEST_SUITE_END()
