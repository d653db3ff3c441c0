#include "kernel/join.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fwgate::kernel {

namespace {

constexpr char kRequest[] = "join\n";

bool addressOf(const std::string& path, sockaddr_un& out) {
  if (path.empty() || path.size() >= sizeof out.sun_path) return false;
  out = sockaddr_un{};
  out.sun_family = AF_UNIX;
  std::memcpy(out.sun_path, path.data(), path.size());
  return true;
}

}  // namespace

std::string defaultJoinSocket() {
  const char* env = std::getenv("FWGATE_KERNEL_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/fwgate/kernel.sock";
}

JoinServer::~JoinServer() {
  if (listener_ >= 0) {
    ::close(listener_);
    ::unlink(path_.c_str());
  }
}

bool JoinServer::open(std::string& error) {
  sockaddr_un address;
  if (!addressOf(path_, address)) {
    error = "the socket path is empty or too long: " + path_;
    return false;
  }
  const std::string dir = path_.substr(0, path_.rfind('/'));
  if (!dir.empty() && ::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    error = dir + ": " + std::strerror(errno);
    return false;
  }
  // One that answers is another server's; one left by a server that died is replaced.
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool taken = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&address),
                                             sizeof address) == 0;
  if (probe >= 0) ::close(probe);
  if (taken) {
    error = path_ + ": another fwgate kernel start is serving there";
    return false;
  }
  ::unlink(path_.c_str());
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener_ < 0 ||
      ::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::chmod(path_.c_str(), 0666) != 0 || ::listen(listener_, 128) != 0) {
    error = path_ + ": " + std::strerror(errno);
    if (listener_ >= 0) ::close(listener_);
    listener_ = -1;
    return false;
  }
  return true;
}

void JoinServer::serve(const volatile std::sig_atomic_t& stop) {
  while (stop == 0) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ucred peer{};
    socklen_t length = sizeof peer;
    char request[sizeof kRequest] = {};
    std::string answer = "error: not a join request\n";
    pollfd in{fd, POLLIN, 0};
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 &&
        ::poll(&in, 1, 2000) == 1 &&
        ::recv(fd, request, sizeof request - 1, MSG_WAITALL) == sizeof kRequest - 1 &&
        std::memcmp(request, kRequest, sizeof kRequest - 1) == 0) {
      // The caller itself, by the kernel's word: its pid as this namespace sees it, still run by
      // the account that connected (a pid reused since would be another's process).
      const std::string pid = std::to_string(peer.pid) + "\n";
      struct stat st {};
      const bool same =
          ::stat(("/proc/" + std::to_string(peer.pid)).c_str(), &st) == 0 && st.st_uid == peer.uid;
      answer = !same ? std::string("error: the process that asked is gone\n")
               : ::write(procs_, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size())
                   ? std::string("ok\n")
                   : "error: cannot move process " + std::to_string(peer.pid) + ": " +
                         std::strerror(errno) + "\n";
    }
    [[maybe_unused]] const ssize_t n = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
}

bool joinCoveredCgroup(const std::string& path, std::string& error) {
  sockaddr_un address;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || !addressOf(path, address) ||
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    error = "nothing serves " + path + " (" + std::strerror(errno) + ")";
    if (fd >= 0) ::close(fd);
    return false;
  }
  char answer[256] = {};
  pollfd p{fd, POLLIN, 0};
  const bool sent = ::send(fd, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL) ==
                    static_cast<ssize_t>(sizeof kRequest - 1);
  const ssize_t n =
      sent && ::poll(&p, 1, 5000) == 1 ? ::recv(fd, answer, sizeof answer - 1, 0) : -1;
  ::close(fd);
  if (n > 0 && std::strncmp(answer, "ok\n", 3) == 0) return true;
  error = n > 0 ? std::string(answer, static_cast<std::size_t>(n)) : "no answer from " + path;
  while (!error.empty() && error.back() == '\n') error.pop_back();
  return false;
}

}  // namespace fwgate::kernel
