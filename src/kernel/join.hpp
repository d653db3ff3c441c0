// Opting in without root (docs/kernel-client.md, "Without root"): `fwgate kernel start --opt-in`
// covers the processes of a cgroup of its own and serves a Unix socket on which any local user's
// process asks to be moved into it. The server moves the caller itself, as SO_PEERCRED names it,
// and nothing else: a user can only put their own process under the gateway.
#pragma once

#include <csignal>
#include <string>

namespace fwgate::kernel {

// /run/fwgate/kernel.sock, or FWGATE_KERNEL_SOCKET.
std::string defaultJoinSocket();

class JoinServer {
 public:
  // `procsFd`: the cgroup.procs of the covered cgroup, open for writing.
  JoinServer(std::string path, int procsFd) : path_(std::move(path)), procs_(procsFd) {}
  ~JoinServer();  // removes the socket
  JoinServer(const JoinServer&) = delete;
  JoinServer& operator=(const JoinServer&) = delete;
  // Creates the directory when missing, listens (mode 0666: every local user). False with `error`.
  bool open(std::string& error);
  // Answers until `stop` is set (looked at every 200 ms): each connection is one request.
  void serve(const volatile std::sig_atomic_t& stop);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int procs_;
  int listener_ = -1;
};

// Moves the calling process into the cgroup the server at `path` covers. False with `error`
// (none answers there, or it refused).
bool joinCoveredCgroup(const std::string& path, std::string& error);

}  // namespace fwgate::kernel
