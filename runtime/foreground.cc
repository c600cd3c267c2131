// Waiting for a foreground process (run, exec): signal forwarding and terminal copy.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "common/unique_fd.h"
#include "runtime/runtime.h"

namespace berth::runtime {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

int shellStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

void copyOnce(int from, int to, bool* open) {
  char buf[8192];
  ssize_t r = ::read(from, buf, sizeof(buf));
  if (r <= 0) {
    *open = false;
    return;
  }
  ssize_t off = 0;
  while (off < r) {
    ssize_t w = ::write(to, buf + off, static_cast<size_t>(r - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += w;
  }
}

}  // namespace

int Runtime::waitForeground(pid_t pid, int master) {
  sigset_t mask, old;
  sigemptyset(&mask);
  for (int s : kForwarded) sigaddset(&mask, s);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGWINCH);
  ::sigprocmask(SIG_BLOCK, &mask, &old);
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));

  struct termios saved {};
  bool raw = master >= 0 && ::isatty(0) && ::tcgetattr(0, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(0, TCSANOW, &t);
  }
  if (master >= 0 && ::isatty(0)) {
    struct winsize ws {};
    if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
  }

  bool master_open = master >= 0;
  bool stdin_open = master >= 0;
  int exit_code = -1;
  while (true) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exit_code = shellStatus(status);
      break;
    }
    if (r < 0 && errno == ECHILD) {
      exit_code = 255;
      break;
    }
    struct pollfd fds[3] = {{sfd.get(), POLLIN, 0},
                            {master_open ? master : -1, POLLIN, 0},
                            {stdin_open ? 0 : -1, POLLIN, 0}};
    int n = ::poll(fds, 3, -1);
    if (n < 0) continue;
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) break;
        if (sig == SIGWINCH) {
          struct winsize ws {};
          if (master >= 0 && ::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
          break;
        }
        ::kill(pid, sig);
        break;
      }
    }
    if (master_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      copyOnce(master, 1, &master_open);
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      copyOnce(0, master, &stdin_open);
      if (!stdin_open) {
        char eof = 4;  // ^D: end of input for the terminal's reader
        (void)!::write(master, &eof, 1);
      }
    }
  }
  // Drain what the terminal still holds.
  if (master_open) {
    while (true) {
      struct pollfd pfd = {master, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) break;
      bool open = true;
      copyOnce(master, 1, &open);
      if (!open) break;
    }
  }
  if (raw) ::tcsetattr(0, TCSANOW, &saved);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return exit_code;
}

}  // namespace berth::runtime
