// Name resolution at the gateway: getaddrinfo and the gethostbyname family. A remote name never
// produces a query from this host (no DNS leak) and the program gets the real addresses the
// gateway resolved (no fake ones). Local names — single labels by default, the local domain
// table, /etc/hosts, NameResolution=L — go to the real resolver.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "client/preload/library.hpp"

using namespace fwgate::client;
using namespace fwgate::client::preload;
namespace control = fwgate::protocol::control;

namespace {

bool isNumeric(const char* name) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, name, buf) == 1 || ::inet_pton(AF_INET6, name, buf) == 1;
}

bool endsWith(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = s[s.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

// Whether one line of /etc/hosts names `name` (after its address).
bool lineNames(std::string_view line, std::string_view name) {
  if (const std::size_t hash = line.find('#'); hash != std::string_view::npos) {
    line = line.substr(0, hash);
  }
  bool first = true;  // the address
  while (!line.empty()) {
    const std::size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos) break;
    line = line.substr(start);
    const std::size_t stop = line.find_first_of(" \t\r");
    const std::string_view word = line.substr(0, stop);
    line = stop == std::string_view::npos ? std::string_view{} : line.substr(stop);
    if (!first && word.size() == name.size() && endsWith(word, name)) return true;
    first = false;
  }
  return false;
}

// /etc/hosts names are the host administrator's: they stay local. Read in small pieces on the
// stack, line by line: no lock (nothing a fork can leave held), no allocation, 1 KiB of stack.
bool inHostsFile(std::string_view name) {
  const int fd = ::open("/etc/hosts", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[1024];
  std::size_t held = 0;   // the start of a line whose end is not read yet
  bool skipping = false;  // inside a line longer than the buffer (not a name anyone can use)
  bool found = false;
  for (int rounds = 0; rounds < 65536 && !found; ++rounds) {
    const ssize_t n = real().read(fd, buffer + held, sizeof buffer - held);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      found = !skipping && held > 0 && lineNames({buffer, held}, name);
      break;
    }
    std::string_view text(buffer, held + static_cast<std::size_t>(n));
    for (std::size_t end = text.find('\n'); end != std::string_view::npos && !found;
         end = text.find('\n')) {
      found = !skipping && lineNames(text.substr(0, end), name);
      skipping = false;
      text.remove_prefix(end + 1);
    }
    if (text.size() == sizeof buffer) {
      skipping = true;
      text = {};
    }
    held = text.size();
    if (held != 0) std::memmove(buffer, text.data(), held);
  }
  ::close(fd);
  return found;
}

// Whether `name` is resolved by the gateway for this program.
bool remoteName(const Global& g, const char* name) {
  std::string_view n(name);
  while (!n.empty() && n.back() == '.') n.remove_suffix(1);
  return !resolvedLocally(g.config, n) && !inHostsFile(n);
}

struct Lookup {
  int error = 0;  // an errno when the gateway could not be asked
  control::Status status = control::Status::GeneralFailure;
  control::Resolved resolved;
  char canonical[256] = {};
};

void resolveAtGateway(const Global& g, const char* name, int family, Lookup& out) {
  Inside inside;
  std::uint8_t request[600];
  const std::size_t size =
      control::encodeResolve(request, {name, static_cast<std::uint8_t>(family)});
  // Mapped for the call: neither per-thread storage in every thread of the host nor 8 KiB of
  // the caller's stack.
  constexpr std::size_t kReplySize = 8192;
  ScratchArray<std::uint8_t, 1> buffer(kReplySize);
  Reply reply;
  out.error = size == 0 ? ENAMETOOLONG
              : buffer.data() == nullptr
                  ? ENOMEM
                  : exchange(g.gateway, g.identity, {request, size}, {buffer.data(), kReplySize},
                             g.gatewayTimeoutMs + 10000, reply);
  char server[300];
  formatServer(g.config.server, server, sizeof server);
  if (out.error != 0) {
    debugLine(1, "resolve %s: gateway %s unreachable: %s", name, server, std::strerror(out.error));
    return;
  }
  if (reply.welcome.status != control::Status::Ok) {
    out.status = reply.welcome.status;
    debugLine(1, "resolve %s: gateway %s refused: %s%s%.*s", name, server,
              std::string_view(control::statusText(reply.welcome.status)).data(),
              reply.welcome.message.empty() ? "" : " — ",
              static_cast<int>(reply.welcome.message.size()), reply.welcome.message.data());
    return;
  }
  if (reply.type != static_cast<std::uint8_t>(control::MessageType::Resolved) ||
      !control::decodeResolved(reply.body, out.resolved)) {
    out.error = EPROTO;
    return;
  }
  out.status = out.resolved.status;
  const std::size_t n = out.resolved.canonical.size() < sizeof out.canonical - 1
                            ? out.resolved.canonical.size()
                            : sizeof out.canonical - 1;
  std::memcpy(out.canonical, out.resolved.canonical.data(), n);
  for (std::size_t i = 0; i < out.resolved.count; ++i) {
    rememberName(out.resolved.addresses[i], name);
  }
  debugLine(2, "resolve %s: %zu addresses from gateway %s (%s)", name, out.resolved.count, server,
            std::string_view(control::statusText(out.status)).data());
}

int eaiFor(const Lookup& l) {
  if (l.error != 0) return EAI_AGAIN;
  switch (l.status) {
    case control::Status::Ok:
      return 0;
    case control::Status::NameNotFound:
      return EAI_NONAME;
    case control::Status::NameTemporaryFailure:
    case control::Status::TimedOut:
      return EAI_AGAIN;
    case control::Status::AddressFamilyNotSupported:
      return EAI_ADDRFAMILY;
    default:
      return EAI_FAIL;
  }
}

bool servicePort(const char* service, int socktype, const addrinfo* hints, std::uint16_t& out) {
  out = 0;
  if (service == nullptr) return true;
  char* end = nullptr;
  const long n = std::strtol(service, &end, 10);
  if (*service != '\0' && *end == '\0') {
    if (n < 0 || n > 65535) return false;
    out = static_cast<std::uint16_t>(n);
    return true;
  }
  if (hints != nullptr && (hints->ai_flags & AI_NUMERICSERV) != 0) return false;
  servent entry{};
  servent* found = nullptr;
  char buffer[1024];
  const char* proto = socktype == SOCK_DGRAM ? "udp" : "tcp";
  if (::getservbyname_r(service, proto, &entry, buffer, sizeof buffer, &found) != 0 ||
      found == nullptr) {
    return false;
  }
  out = ntohs(static_cast<std::uint16_t>(found->s_port));
  return true;
}

addrinfo* makeNode(int family, int socktype, const control::IpAddress& a, std::uint16_t port,
                   bool mapToV6) {
  // One allocation per node, the address inside it, as glibc's own getaddrinfo does: the
  // program's freeaddrinfo() frees it.
  const std::size_t addressSize = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  auto* node = static_cast<addrinfo*>(std::calloc(1, sizeof(addrinfo) + addressSize));
  if (node == nullptr) return nullptr;
  node->ai_family = family;
  node->ai_socktype = socktype;
  node->ai_protocol = socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP;
  node->ai_addrlen = static_cast<socklen_t>(addressSize);
  node->ai_addr = reinterpret_cast<sockaddr*>(node + 1);
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(node->ai_addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(node->ai_addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    if (mapToV6) {
      sin6->sin6_addr.s6_addr[10] = 0xff;
      sin6->sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&sin6->sin6_addr.s6_addr[12], a.bytes.data(), 4);
    } else {
      std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
    }
  }
  return node;
}

int buildList(const Lookup& l, const char* name, std::uint16_t port, const addrinfo* hints,
              addrinfo** result) {
  const int family = hints != nullptr ? hints->ai_family : AF_UNSPEC;
  const int flags = hints != nullptr ? hints->ai_flags : 0;
  const int wanted = hints != nullptr ? hints->ai_socktype : 0;
  const int socktypes[2] = {wanted != 0 ? wanted : SOCK_STREAM, wanted != 0 ? 0 : SOCK_DGRAM};
  bool haveV6 = false;
  for (std::size_t i = 0; i < l.resolved.count; ++i) haveV6 |= l.resolved.addresses[i].family == 6;
  addrinfo* head = nullptr;
  addrinfo** tail = &head;
  for (std::size_t i = 0; i < l.resolved.count; ++i) {
    const control::IpAddress& a = l.resolved.addresses[i];
    int nodeFamily = 0;
    bool mapped = false;
    if (a.family == 4 && (family == AF_UNSPEC || family == AF_INET)) {
      nodeFamily = AF_INET;
    } else if (a.family == 6 && (family == AF_UNSPEC || family == AF_INET6)) {
      nodeFamily = AF_INET6;
    } else if (a.family == 4 && family == AF_INET6 && (flags & AI_V4MAPPED) != 0 &&
               (!haveV6 || (flags & AI_ALL) != 0)) {
      nodeFamily = AF_INET6;
      mapped = true;
    }
    if (nodeFamily == 0) continue;
    for (int socktype : socktypes) {
      if (socktype == 0) continue;
      addrinfo* node = makeNode(nodeFamily, socktype, a, port, mapped);
      if (node == nullptr) {
        ::freeaddrinfo(head);
        return EAI_MEMORY;
      }
      *tail = node;
      tail = &node->ai_next;
    }
  }
  if (head == nullptr) return family == AF_UNSPEC ? EAI_NONAME : EAI_ADDRFAMILY;
  if ((flags & AI_CANONNAME) != 0) {
    head->ai_canonname = ::strdup(l.canonical[0] != '\0' ? l.canonical : name);
    if (head->ai_canonname == nullptr) {
      ::freeaddrinfo(head);
      return EAI_MEMORY;
    }
  }
  *result = head;
  return 0;
}

// --- gethostbyname family: filled from a gateway answer into the caller's buffer. -------------

int fillHostent(const Lookup& l, const char* name, int family, hostent* out, char* buffer,
                std::size_t size, hostent** result, int* herr) {
  *result = nullptr;
  const std::size_t addressSize = family == AF_INET ? 4 : 16;
  std::size_t count = 0;
  for (std::size_t i = 0; i < l.resolved.count; ++i) {
    if (l.resolved.addresses[i].family == (family == AF_INET ? 4 : 6)) ++count;
  }
  if (count == 0) {
    *herr = HOST_NOT_FOUND;
    return 0;
  }
  const std::size_t nameSize = std::strlen(name) + 1;
  const std::size_t need =
      (count + 1) * sizeof(char*) + sizeof(char*) + count * addressSize + nameSize + 16;
  if (size < need) {
    *herr = NETDB_INTERNAL;
    return ERANGE;
  }
  // Layout: aligned pointer arrays first, then addresses, then the name.
  auto base = reinterpret_cast<std::uintptr_t>(buffer);
  const std::uintptr_t aligned = (base + alignof(char*) - 1) & ~(alignof(char*) - 1);
  char** addresses = reinterpret_cast<char**>(aligned);
  char** aliases = addresses + count + 1;
  char* data = reinterpret_cast<char*>(aliases + 1);
  std::size_t k = 0;
  for (std::size_t i = 0; i < l.resolved.count; ++i) {
    const auto& a = l.resolved.addresses[i];
    if (a.family != (family == AF_INET ? 4 : 6)) continue;
    std::memcpy(data, a.bytes.data(), addressSize);
    addresses[k++] = data;
    data += addressSize;
  }
  addresses[k] = nullptr;
  aliases[0] = nullptr;
  std::memcpy(data, name, nameSize);
  out->h_name = data;
  out->h_aliases = aliases;
  out->h_addrtype = family;
  out->h_length = static_cast<int>(addressSize);
  out->h_addr_list = addresses;
  *result = out;
  *herr = 0;
  return 0;
}

int hostentHerr(const Lookup& l) {
  if (l.error != 0) return TRY_AGAIN;
  switch (l.status) {
    case control::Status::NameNotFound:
      return HOST_NOT_FOUND;
    case control::Status::NameTemporaryFailure:
    case control::Status::TimedOut:
      return TRY_AGAIN;
    default:
      return NO_RECOVERY;
  }
}

int byName2r(const char* name, int family, hostent* out, char* buffer, size_t size,
             hostent** result, int* herr, bool& handled) {
  handled = false;
  if (t_inside != 0 || name == nullptr || isNumeric(name) ||
      (family != AF_INET && family != AF_INET6)) {
    return 0;
  }
  const Global& g = global();
  if (!g.active || !remoteName(g, name)) return 0;
  handled = true;
  Lookup l;
  resolveAtGateway(g, name, family == AF_INET ? 4 : 6, l);
  if (l.error != 0 || l.status != control::Status::Ok) {
    *result = nullptr;
    *herr = hostentHerr(l);
    return l.error != 0 ? EAGAIN : 0;
  }
  return fillHostent(l, name, family, out, buffer, size, result, herr);
}

struct StaticHost {
  hostent entry{};
  char buffer[4096];
};

hostent* byName2Static(const char* name, int family, bool& handled) {
  // gethostbyname is not reentrant by contract: one result area per process, as glibc's.
  static StaticHost storage;
  hostent* result = nullptr;
  int herr = 0;
  byName2r(name, family, &storage.entry, storage.buffer, sizeof storage.buffer, &result, &herr,
           handled);
  if (handled) h_errno = herr;
  return result;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int getaddrinfo(const char* node, const char* service,
                                                       const addrinfo* hints, addrinfo** result) {
  const auto& r = real();
  if (r.getaddrinfo == nullptr) return EAI_SYSTEM;
  if (t_inside != 0 || node == nullptr || result == nullptr || isNumeric(node) ||
      (hints != nullptr && (hints->ai_flags & AI_NUMERICHOST) != 0) ||
      (hints != nullptr && hints->ai_family != AF_UNSPEC && hints->ai_family != AF_INET &&
       hints->ai_family != AF_INET6)) {
    return r.getaddrinfo(node, service, hints, result);
  }
  const Global& g = global();
  if (!g.active || !remoteName(g, node)) {
    debugLine(2, "resolve %s: local", node);
    return r.getaddrinfo(node, service, hints, result);
  }
  const int socktype = hints != nullptr ? hints->ai_socktype : 0;
  std::uint16_t port = 0;
  if (!servicePort(service, socktype, hints, port)) return EAI_SERVICE;
  const int family = hints != nullptr ? hints->ai_family : AF_UNSPEC;
  Lookup l;
  // AI_V4MAPPED may need the IPv4 answers of an AF_INET6 query: ask for both then.
  const bool mapped = family == AF_INET6 && hints != nullptr && (hints->ai_flags & AI_V4MAPPED);
  resolveAtGateway(g, node, family == AF_INET ? 4 : family == AF_INET6 && !mapped ? 6 : 0, l);
  if (const int e = eaiFor(l); e != 0) return e;
  return buildList(l, node, port, hints, result);
}

__attribute__((visibility("default"))) hostent* gethostbyname(const char* name) {
  bool handled = false;
  hostent* h = byName2Static(name, AF_INET, handled);
  return handled ? h : real().gethostbyname(name);
}

__attribute__((visibility("default"))) hostent* gethostbyname2(const char* name, int family) {
  bool handled = false;
  hostent* h = byName2Static(name, family, handled);
  return handled ? h : real().gethostbyname2(name, family);
}

__attribute__((visibility("default"))) int gethostbyname_r(const char* name, hostent* out,
                                                           char* buffer, size_t size,
                                                           hostent** result, int* herr) {
  bool handled = false;
  const int rc = byName2r(name, AF_INET, out, buffer, size, result, herr, handled);
  return handled ? rc : real().gethostbyname_r(name, out, buffer, size, result, herr);
}

__attribute__((visibility("default"))) int gethostbyname2_r(const char* name, int family,
                                                            hostent* out, char* buffer, size_t size,
                                                            hostent** result, int* herr) {
  bool handled = false;
  const int rc = byName2r(name, family, out, buffer, size, result, herr, handled);
  return handled ? rc : real().gethostbyname2_r(name, family, out, buffer, size, result, herr);
}

}  // extern "C"
