// The kernel half of `fwgate run --kernel` (docs/kernel-client.md): a cgroup of its own and the
// eBPF programs of redirect.bpf.c attached to it. Every process placed in the cgroup, and every
// process they start, has its TCP connects outside the local tables diverted to the helper on
// 127.0.0.1, and its queries to the resolvers to the helper's name service, whatever library it
// uses. The programs are attached by links that belong to this process: when it ends, however it
// ends, the kernel detaches them, and nothing stays diverted.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/control.hpp"

struct fwgate_redirect;

namespace fwgate::kernel {

// A redirected connection's original destination and the process that made it.
struct Origin {
  protocol::control::Endpoint destination;
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
  std::string comm;  // the thread's name, as the kernel has it (15 characters at most)
};

// An IPv4 range as CIDR prefixes (what the LPM table holds): the fewest that cover first..last
// exactly. Host byte order.
struct Prefix4 {
  std::uint32_t address = 0;
  std::uint8_t length = 0;
};
std::vector<Prefix4> prefixesOf(std::uint32_t first, std::uint32_t last);
// The same for IPv6 (addresses as 16 bytes, network order).
struct Prefix6 {
  std::array<std::uint8_t, 16> address{};
  std::uint8_t length = 0;
};
std::vector<Prefix6> prefixesOf6(const std::array<std::uint8_t, 16>& first,
                                 const std::array<std::uint8_t, 16>& last);

// The names of the eBPF programs of fwgate loaded on this machine now (any process's).
std::vector<std::string> loadedPrograms();

class Interceptor {
 public:
  Interceptor() = default;
  ~Interceptor();  // close()
  Interceptor(const Interceptor&) = delete;
  Interceptor& operator=(const Interceptor&) = delete;

  // Makes cgroup `name` at the top of the cgroup2 hierarchy (mounting the hierarchy privately
  // when this mount namespace shows none; removing what killed runs of the same name left),
  // loads the programs and attaches them to it. False with `error` (the programs need CAP_BPF
  // and CAP_NET_ADMIN, the cgroup root's write access).
  // `killOnClose`: what still runs in it at close() ends (a run's leftovers); else it is moved
  // back to the top of the tree (the opted-in programs of `fwgate kernel start --opt-in`).
  bool create(const std::string& name, std::string& error, bool killOnClose = true);
  // The same on an existing cgroup (a path below the hierarchy's top; "" or "/": the top, every
  // process of the host), which close() leaves as it was: the system-wide mode.
  bool attach(const std::string& cgroup, std::string& error);
  // Who is left alone besides the helper: these accounts, and, with `thisNamespaceOnly`, sockets
  // of other network namespaces (containers; 127.0.0.1 there is not the helper's).
  bool setScope(const std::vector<std::uint32_t>& exemptUids, bool thisNamespaceOnly,
                std::string& error);
  // Where the programs send what they divert (127.0.0.1; UDP to 127.64.0.0 + the destination's
  // slot on udpPort, 0: UDP is not diverted), and from when on.
  bool setPorts(std::uint16_t tcpPort, std::uint16_t dnsPort, std::uint16_t udpPort,
                std::uint16_t tcp6Port, std::string& error);
  // The local address table (IPv4 ranges) and the resolvers; replace what was there.
  bool setLocal(const std::vector<protocol::control::AddressRange>& ranges, std::string& error);
  bool setResolvers(const std::vector<std::uint32_t>& resolvers, std::string& error);
  // Remoted connects fail at once (EPERM) while the gateway is unreachable.
  void setRefuse(bool refuse);
  bool refusing() const { return refuse_; }

  // The origin of the helper's accepted connection from 127.0.0.1:`localPort` (the program's
  // port), taken out of the table. False when there is none (not one of ours).
  bool takeOrigin(std::uint16_t localPort, Origin& out);
  // The same for a UDP socket that sent from `localPort` (false: not known, as for a connected
  // socket).
  bool takeUdpOrigin(std::uint16_t localPort, Origin& out);

  // A diverted datagram's destination, from the slot address it was sent to (127.64.0.0 +
  // slot); and the slot of a destination that answers (0: the programs never sent to it).
  bool destinationOfSlot(std::uint32_t slot, protocol::control::Endpoint& out);
  std::uint32_t slotOf(const protocol::control::Endpoint& destination);
  static constexpr std::uint32_t kSlotNet = 0x7f400000u;  // 127.64.0.0/16, host byte order

  // The cgroup's cgroup.procs, open for writing: a child writes "0" there to enter the cgroup.
  int procsFd() const { return procs_; }
  const std::string& path() const { return path_; }

  // Detaches the programs; a cgroup of its own: ends what still runs in it (cgroup.kill) and
  // removes it; the private mount if there was one. Safe to call twice.
  void close();

 private:
  bool writeSettings(std::string& error);
  bool attachPrograms(std::string& error);

  fwgate_redirect* skel_ = nullptr;
  std::string mount_;  // the private mount of the hierarchy, if made
  std::string path_;   // the cgroup
  int cgroup_ = -1;    // its directory
  int procs_ = -1;     // its cgroup.procs
  std::uint16_t tcpPort_ = 0;
  std::uint16_t dnsPort_ = 0;
  std::uint16_t udpPort_ = 0;
  std::uint16_t tcp6Port_ = 0;
  bool refuse_ = false;
  bool made_ = false;  // the cgroup is this run's (removed by close())
  bool killOnClose_ = true;
  std::string top_;  // the hierarchy's top
  std::uint64_t netnsCookie_ = 0;
};

}  // namespace fwgate::kernel
