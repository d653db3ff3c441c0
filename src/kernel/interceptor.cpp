#include "kernel/interceptor.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "kernel/redirect_abi.h"
#include "redirect.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71  // <asm-generic/socket.h>, Linux 5.14
#endif

namespace fwgate::kernel {

namespace {

std::string errnoText(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

// The cgroup2 hierarchy's mount point in this mount namespace ("" when none is mounted).
std::string cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream after(line.substr(dash + 3));
    std::string fstype;
    after >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream before(line.substr(0, dash));
    std::string id, parent, device, root, mountPoint;
    before >> id >> parent >> device >> root >> mountPoint;
    if (root == "/") return mountPoint;  // the hierarchy's top, not a bind of a subtree
  }
  return {};
}

// libbpf's messages go to stderr only when something fails (warnings and errors).
int quietPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || level == LIBBPF_INFO) return 0;
  return std::vfprintf(stderr, format, args);
}

// The cgroups `prefix`PID of runs that ended without removing theirs (killed): empty, their
// process gone. One that still holds processes stays (rmdir refuses it).
void removeStale(const std::string& top, const std::string& prefix) {
  DIR* dir = ::opendir(top.c_str());
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::access(("/proc/" + pid).c_str(), F_OK) == 0) continue;
    ::rmdir((top + "/" + name).c_str());
  }
  ::closedir(dir);
}

}  // namespace

std::vector<Prefix4> prefixesOf(std::uint32_t first, std::uint32_t last) {
  std::vector<Prefix4> out;
  if (first > last) return out;
  std::uint64_t at = first;
  const std::uint64_t end = static_cast<std::uint64_t>(last) + 1;
  while (at < end) {
    // The largest block that starts at `at` and ends within the range.
    std::uint8_t length = 32;
    while (length > 0) {
      const std::uint64_t size = std::uint64_t{1} << (32 - (length - 1));
      if (at % size != 0 || at + size > end) break;
      --length;
    }
    out.push_back({static_cast<std::uint32_t>(at), length});
    at += std::uint64_t{1} << (32 - length);
  }
  return out;
}

std::vector<std::string> loadedPrograms() {
  std::vector<std::string> out;
  for (__u32 id = 0; bpf_prog_get_next_id(id, &id) == 0;) {
    const int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_prog_info info{};
    __u32 length = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0 &&
        std::strncmp(info.name, "fwgate_", 7) == 0) {
      out.emplace_back(info.name);
    }
    ::close(fd);
  }
  return out;
}

std::vector<Prefix6> prefixesOf6(const std::array<std::uint8_t, 16>& first,
                                 const std::array<std::uint8_t, 16>& last) {
  __extension__ typedef unsigned __int128 U;
  const auto number = [](const std::array<std::uint8_t, 16>& a) {
    U n = 0;
    for (const std::uint8_t b : a) n = n << 8 | b;
    return n;
  };
  std::vector<Prefix6> out;
  U at = number(first);
  const U end = number(last);
  if (at > end) return out;
  for (;;) {
    // The largest aligned block from `at` that ends within the range.
    std::uint8_t length = 128;
    while (length > 0) {
      const unsigned bits = 128 - (length - 1);
      const U mask = bits >= 128 ? ~U{0} : (U{1} << bits) - 1;
      if ((at & mask) != 0 || at + mask > end || at + mask < at) break;
      --length;
    }
    Prefix6 p;
    for (int i = 15; i >= 0; --i)
      p.address[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(at >> (8 * (15 - i)));
    p.length = length;
    out.push_back(p);
    const U size_minus_one = length == 0 ? ~U{0} : (U{1} << (128 - length)) - 1;
    if (at + size_minus_one >= end) break;
    at += size_minus_one + 1;
  }
  return out;
}

Interceptor::~Interceptor() {
  close();
}

namespace {

// The cgroup2 hierarchy's top: its mount point here, or a private mount of it (then `mount`).
std::string hierarchy(std::string& mount, std::string& error) {
  std::string top = cgroup2Mount();
  if (!top.empty()) return top;
  // `ip netns exec` mounts a new /sys without the cgroup hierarchy: mount it privately.
  char dir[] = "/tmp/fwgate-cgroup-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    error = errnoText("cannot make a directory for the cgroup hierarchy", errno);
    return {};
  }
  if (::mount("cgroup2", dir, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    error = errnoText("no cgroup2 hierarchy is mounted, and mounting one failed", errno);
    ::rmdir(dir);
    return {};
  }
  mount = dir;
  return mount;
}

}  // namespace

bool Interceptor::create(const std::string& name, std::string& error, bool killOnClose) {
  libbpf_set_print(quietPrint);
  const std::string top = hierarchy(mount_, error);
  if (top.empty()) return false;
  top_ = top;
  killOnClose_ = killOnClose;
  removeStale(top, name.substr(0, name.rfind('-') + 1));
  path_ = top + "/" + name;
  if (::mkdir(path_.c_str(), 0755) != 0) {
    error = errnoText(("cannot make the cgroup " + path_).c_str(), errno);
    path_.clear();
    close();
    return false;
  }
  made_ = true;
  procs_ = ::open((path_ + "/cgroup.procs").c_str(), O_WRONLY);  // inherited by the child
  return attachPrograms(error);
}

bool Interceptor::attach(const std::string& cgroup, std::string& error) {
  libbpf_set_print(quietPrint);
  const std::string top = hierarchy(mount_, error);
  if (top.empty()) return false;
  path_ = cgroup.empty() || cgroup == "/" ? top : top + "/" + cgroup;
  return attachPrograms(error);
}

bool Interceptor::attachPrograms(std::string& error) {
  cgroup_ = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_ < 0 || (made_ && procs_ < 0)) {
    error = errnoText(("cannot open the cgroup " + path_).c_str(), errno);
    close();
    return false;
  }
  skel_ = fwgate_redirect__open_and_load();
  if (skel_ == nullptr) {
    error = errnoText("cannot load the eBPF programs (they need CAP_BPF and CAP_NET_ADMIN)", errno);
    close();
    return false;
  }
  bpf_program* programs[] = {
      skel_->progs.fwgate_connect4,     skel_->progs.fwgate_connect6,
      skel_->progs.fwgate_sockops,      skel_->progs.fwgate_sendmsg4,
      skel_->progs.fwgate_sendmsg6,     skel_->progs.fwgate_recvmsg4,
      skel_->progs.fwgate_recvmsg6,     skel_->progs.fwgate_getpeername4,
      skel_->progs.fwgate_getpeername6,
  };
  bpf_link** links[] = {
      &skel_->links.fwgate_connect4,     &skel_->links.fwgate_connect6,
      &skel_->links.fwgate_sockops,      &skel_->links.fwgate_sendmsg4,
      &skel_->links.fwgate_sendmsg6,     &skel_->links.fwgate_recvmsg4,
      &skel_->links.fwgate_recvmsg6,     &skel_->links.fwgate_getpeername4,
      &skel_->links.fwgate_getpeername6,
  };
  for (std::size_t i = 0; i < std::size(programs); ++i) {
    *links[i] = bpf_program__attach_cgroup(programs[i], cgroup_);
    if (*links[i] == nullptr) {
      error = errnoText(
          ("cannot attach " + std::string(bpf_program__name(programs[i])) + " to " + path_).c_str(),
          errno);
      close();
      return false;
    }
  }
  return true;
}

bool Interceptor::writeSettings(std::string& error) {
  fwgate_settings s{};
  s.helper_ip4 = htonl(INADDR_LOOPBACK);
  s.tcp_port = htons(tcpPort_);
  s.dns_port = htons(dnsPort_);
  s.udp_port = htons(udpPort_);
  s.tcp6_port = htons(tcp6Port_);
  s.refuse = refuse_ ? 1 : 0;
  s.helper_tgid = static_cast<__u32>(::getpid());
  s.netns_cookie = netnsCookie_;
  const std::uint32_t zero = 0;
  if (bpf_map__update_elem(skel_->maps.settings, &zero, sizeof zero, &s, sizeof s, BPF_ANY) != 0) {
    error = errnoText("cannot write the eBPF settings", errno);
    return false;
  }
  return true;
}

bool Interceptor::setPorts(std::uint16_t tcpPort, std::uint16_t dnsPort, std::uint16_t udpPort,
                           std::uint16_t tcp6Port, std::string& error) {
  tcp6Port_ = tcp6Port;
  tcpPort_ = tcpPort;
  dnsPort_ = dnsPort;
  udpPort_ = udpPort;
  return writeSettings(error);
}

bool Interceptor::destinationOfSlot(std::uint32_t slot, protocol::control::Endpoint& out) {
  fwgate_destination d{};
  if (skel_ == nullptr || slot == 0 ||
      bpf_map__lookup_elem(skel_->maps.slot_destination, &slot, sizeof slot, &d, sizeof d, 0) !=
          0 ||
      d.ip4 == 0) {
    return false;
  }
  out.address.family = 4;
  std::memcpy(out.address.bytes.data(), &d.ip4, 4);
  out.port = ntohs(d.port);
  return true;
}

std::uint32_t Interceptor::slotOf(const protocol::control::Endpoint& destination) {
  if (skel_ == nullptr || destination.address.family != 4) return 0;
  std::uint32_t ip4 = 0;
  std::memcpy(&ip4, destination.address.bytes.data(), 4);
  const std::uint16_t port = htons(destination.port);
  const std::uint64_t key = (static_cast<std::uint64_t>(ip4) << 16) | port;
  std::uint32_t slot = 0;
  if (bpf_map__lookup_elem(skel_->maps.destination_slot, &key, sizeof key, &slot, sizeof slot, 0) !=
      0) {
    return 0;
  }
  protocol::control::Endpoint check;
  return destinationOfSlot(slot, check) && check == destination ? slot : 0;
}

bool Interceptor::setScope(const std::vector<std::uint32_t>& exemptUids, bool thisNamespaceOnly,
                           std::string& error) {
  netnsCookie_ = 0;
  if (thisNamespaceOnly) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t length = sizeof netnsCookie_;
    if (fd < 0 || ::getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &netnsCookie_, &length) != 0) {
      error = errnoText("cannot tell this network namespace (SO_NETNS_COOKIE)", errno);
      if (fd >= 0) ::close(fd);
      return false;
    }
    ::close(fd);
  }
  const std::uint8_t one = 1;
  for (const std::uint32_t uid : exemptUids) {
    if (bpf_map__update_elem(skel_->maps.exempt_uids, &uid, sizeof uid, &one, sizeof one,
                             BPF_ANY) != 0) {
      error = errnoText("cannot fill the exempt accounts", errno);
      return false;
    }
  }
  return writeSettings(error);
}

void Interceptor::setRefuse(bool refuse) {
  if (refuse_ == refuse || skel_ == nullptr) return;
  refuse_ = refuse;
  std::string ignored;
  writeSettings(ignored);
}

bool Interceptor::setLocal(const std::vector<protocol::control::AddressRange>& ranges,
                           std::string& error) {
  struct Key {
    std::uint32_t prefixlen;
    std::uint32_t ip4;
  };
  // Empty the table first: a reload replaces it.
  Key key{};
  Key next{};
  while (bpf_map__get_next_key(skel_->maps.local4, nullptr, &next, sizeof next) == 0) {
    bpf_map__delete_elem(skel_->maps.local4, &next, sizeof next, 0);
  }
  const std::uint8_t one = 1;
  struct Key6 {
    std::uint32_t prefixlen;
    std::uint8_t ip6[16];
  };
  Key6 next6{};
  while (bpf_map__get_next_key(skel_->maps.local6, nullptr, &next6, sizeof next6) == 0) {
    bpf_map__delete_elem(skel_->maps.local6, &next6, sizeof next6, 0);
  }
  for (const auto& range : ranges) {
    if (range.first.family == 6 && range.last.family == 6) {
      for (const Prefix6& p : prefixesOf6(range.first.bytes, range.last.bytes)) {
        Key6 key6{p.length, {}};
        std::memcpy(key6.ip6, p.address.data(), 16);
        if (bpf_map__update_elem(skel_->maps.local6, &key6, sizeof key6, &one, sizeof one,
                                 BPF_ANY) != 0) {
          error = errnoText("cannot fill the local address table (IPv6)", errno);
          return false;
        }
      }
      continue;
    }
    if (range.first.family != 4 || range.last.family != 4) continue;
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    std::memcpy(&first, range.first.bytes.data(), 4);
    std::memcpy(&last, range.last.bytes.data(), 4);
    for (const Prefix4& p : prefixesOf(ntohl(first), ntohl(last))) {
      key.prefixlen = p.length;
      key.ip4 = htonl(p.address);
      if (bpf_map__update_elem(skel_->maps.local4, &key, sizeof key, &one, sizeof one, BPF_ANY) !=
          0) {
        error = errnoText("cannot fill the local address table", errno);
        return false;
      }
    }
  }
  return true;
}

bool Interceptor::setResolvers(const std::vector<std::uint32_t>& resolvers, std::string& error) {
  const std::uint8_t one = 1;
  for (const std::uint32_t r : resolvers) {
    if (bpf_map__update_elem(skel_->maps.resolvers4, &r, sizeof r, &one, sizeof one, BPF_ANY) !=
        0) {
      error = errnoText("cannot fill the resolver table", errno);
      return false;
    }
  }
  return true;
}

namespace {

bool take(bpf_map* map, std::uint16_t localPort, Origin& out) {
  const std::uint32_t key = localPort;
  fwgate_origin o{};
  if (bpf_map__lookup_and_delete_elem(map, &key, sizeof key, &o, sizeof o, 0) != 0) return false;
  if (o.ip4 == 0 && o.family == 10) {
    out.destination.address.family = 6;
    std::memcpy(out.destination.address.bytes.data(), o.ip6, 16);
  } else {
    out.destination.address.family = 4;
    std::memcpy(out.destination.address.bytes.data(), &o.ip4, 4);
  }
  out.destination.port = ntohs(o.port);
  out.pid = o.pid;
  out.uid = o.uid;
  out.comm.assign(o.comm, strnlen(o.comm, sizeof o.comm));
  return true;
}

}  // namespace

bool Interceptor::takeOrigin(std::uint16_t localPort, Origin& out) {
  return skel_ != nullptr && take(skel_->maps.by_port, localPort, out);
}

bool Interceptor::takeUdpOrigin(std::uint16_t localPort, Origin& out) {
  return skel_ != nullptr && take(skel_->maps.by_udp_port, localPort, out);
}

void Interceptor::close() {
  if (skel_ != nullptr) {
    fwgate_redirect__destroy(skel_);  // detaches every program
    skel_ = nullptr;
  }
  if (procs_ >= 0) ::close(procs_);
  procs_ = -1;
  if (cgroup_ >= 0) ::close(cgroup_);
  cgroup_ = -1;
  if (!path_.empty() && made_ && killOnClose_) {
    // What the program left running (daemons it started) ends with the run.
    if (const int fd = ::open((path_ + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC); fd >= 0) {
      [[maybe_unused]] const ssize_t n = ::write(fd, "1", 1);
      ::close(fd);
    }
  } else if (!path_.empty() && made_) {
    // The programs that opted in run on, no longer diverted, at the top of the tree.
    std::ifstream procs(path_ + "/cgroup.procs");
    const int to = ::open((top_ + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    for (std::string pid; to >= 0 && std::getline(procs, pid);) {
      pid += "\n";
      [[maybe_unused]] const ssize_t n = ::write(to, pid.data(), pid.size());
    }
    if (to >= 0) ::close(to);
  }
  if (!path_.empty() && made_) {
    // rmdir waits for nothing: a cgroup is busy until its last process is reaped.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::rmdir(path_.c_str()) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  path_.clear();
  made_ = false;
  if (!mount_.empty()) {
    ::umount2(mount_.c_str(), MNT_DETACH);
    ::rmdir(mount_.c_str());
    mount_.clear();
  }
}

}  // namespace fwgate::kernel
