#include "client/discovery.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "client/gateway_link.hpp"

namespace fwgate::client {

namespace {

bool isBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// The next blank-separated word of `s`; `s` continues after it.
std::string_view nextWord(std::string_view& s) {
  std::size_t i = 0;
  while (i < s.size() && isBlank(s[i])) ++i;
  std::size_t j = i;
  while (j < s.size() && !isBlank(s[j])) ++j;
  const std::string_view word = s.substr(i, j - i);
  s.remove_prefix(j);
  return word;
}

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool sameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Calls fn(line) for each line of text.
template <typename Fn>
void eachLine(std::string_view text, Fn fn) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    fn(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

bool parseNameserver(std::string_view text, sockaddr_storage& out, socklen_t& length) {
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf) return false;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  sockaddr_storage s{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&s);
  if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(53);
    out = s;
    length = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&s);
  if (char* scope = std::strchr(buf, '%'); scope != nullptr) {
    *scope++ = '\0';
    char* end = nullptr;
    const unsigned long n = std::strtoul(scope, &end, 10);
    v6->sin6_scope_id =
        *scope != '\0' && *end == '\0' ? static_cast<std::uint32_t>(n) : ::if_nametoindex(scope);
  }
  if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) != 1) return false;
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(53);
  out = s;
  length = sizeof(sockaddr_in6);
  return true;
}

void addressText(const sockaddr_storage& s, char* out, std::size_t size) {
  const void* address =
      s.ss_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&s)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&s)->sin6_addr);
  if (::inet_ntop(s.ss_family, address, out, static_cast<socklen_t>(size)) == nullptr) {
    std::snprintf(out, size, "?");
  }
}

std::uint16_t get16(std::span<const std::uint8_t> m, std::size_t at) {
  return static_cast<std::uint16_t>((m[at] << 8) | m[at + 1]);
}

// The (possibly compressed) name at `pos`, dotted, into out; `after` is where the name ends in
// the message (past its first pointer). Pointers must lead backwards, so every name ends. False for
// a malformed name or one with bytes no host name has (a dot, a blank, a control character).
bool readName(std::span<const std::uint8_t> m, std::size_t pos, char* out, std::size_t size,
              std::size_t& after) {
  std::size_t n = 0;
  std::size_t encoded = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= m.size()) return false;
    const std::uint8_t length = m[pos];
    if ((length & 0xC0) == 0xC0) {
      if (pos + 1 >= m.size()) return false;
      const std::size_t target = (std::size_t{length & 0x3Fu} << 8) | m[pos + 1];
      if (target >= pos) return false;
      if (!jumped) after = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if ((length & 0xC0) != 0) return false;
    if (length == 0) {
      if (!jumped) after = pos + 1;
      out[n] = '\0';
      return true;
    }
    if (pos + 1 + length > m.size()) return false;
    encoded += length + 1u;
    if (encoded > 254) return false;
    if (n != 0) {
      if (n + 1 >= size) return false;
      out[n++] = '.';
    }
    for (std::size_t i = 0; i < length; ++i) {
      const auto c = static_cast<char>(m[pos + 1 + i]);
      if (c == '.' || static_cast<unsigned char>(c) <= ' ' ||
          static_cast<unsigned char>(c) >= 0x7f || n + 1 >= size) {
        return false;
      }
      out[n++] = c;
    }
    pos += 1 + length;
  }
}

}  // namespace

void setSearchList(std::string_view list, ResolverConf& out) {
  out.domainCount = 0;
  for (std::string_view rest = list; out.domainCount < ResolverConf::kMaxDomains;) {
    std::string_view word = nextWord(rest);
    if (word.empty()) break;
    while (!word.empty() && word.back() == '.') word.remove_suffix(1);  // "corp.example." and "."
    if (word.empty() || word.size() >= out.domains[0].size()) continue;
    auto& slot = out.domains[out.domainCount++];
    std::memcpy(slot.data(), word.data(), word.size());
    slot[word.size()] = '\0';
  }
}

void parseResolvConf(std::string_view text, ResolverConf& out) {
  out = ResolverConf{};
  eachLine(text, [&](std::string_view line) {
    if (!line.empty() && (line.front() == '#' || line.front() == ';')) return;
    const std::string_view keyword = nextWord(line);
    if (keyword == "nameserver") {
      if (out.serverCount < ResolverConf::kMaxServers &&
          parseNameserver(nextWord(line), out.servers[out.serverCount],
                          out.serverLengths[out.serverCount])) {
        ++out.serverCount;
      }
    } else if (keyword == "domain") {
      setSearchList(nextWord(line), out);
      out.searchGiven = true;
    } else if (keyword == "search") {
      setSearchList(line, out);
      out.searchGiven = true;
    }
  });
  if (out.serverCount == 0) {
    parseNameserver("127.0.0.1", out.servers[0], out.serverLengths[0]);
    out.serverCount = 1;
  }
}

bool hostsUseDns(std::string_view nsswitch) {
  bool found = false;
  bool dns = true;
  eachLine(nsswitch, [&](std::string_view line) {
    line = line.substr(0, line.find('#'));
    const std::size_t colon = line.find(':');
    if (found || colon == std::string_view::npos) return;
    std::string_view name = line.substr(0, colon);
    if (nextWord(name) != "hosts" || !nextWord(name).empty()) return;
    found = true;
    dns = false;
    line.remove_prefix(colon + 1);
    for (std::string_view word = nextWord(line); !word.empty(); word = nextWord(line)) {
      if (word == "dns" || word == "resolve") dns = true;
    }
  });
  return dns;
}

std::size_t encodeQuery(std::uint16_t id, std::string_view name, std::uint16_t type,
                        std::span<std::uint8_t> out) {
  if (name.empty() || name.size() > 253) return 0;
  const std::size_t size = 12 + name.size() + 2 + 4;
  if (out.size() < size) return 0;
  const std::uint8_t header[12] = {static_cast<std::uint8_t>(id >> 8),
                                   static_cast<std::uint8_t>(id),
                                   0x01,  // RD
                                   0x00,
                                   0,
                                   1,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0,
                                   0};
  std::memcpy(out.data(), header, sizeof header);
  std::size_t at = 12;
  for (std::string_view rest = name;;) {
    const std::size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63) return 0;
    out[at++] = static_cast<std::uint8_t>(label.size());
    std::memcpy(out.data() + at, label.data(), label.size());
    at += label.size();
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  out[at++] = 0;
  out[at++] = static_cast<std::uint8_t>(type >> 8);
  out[at++] = static_cast<std::uint8_t>(type);
  out[at++] = 0;
  out[at++] = 1;  // IN
  return at;
}

bool readReply(std::span<const std::uint8_t> m, std::uint16_t id, std::string_view name,
               std::uint16_t type, DnsReply& out) {
  if (m.size() < 12 || get16(m, 0) != id) return false;
  const std::uint16_t flags = get16(m, 2);
  if ((flags & 0x8000) == 0 || ((flags >> 11) & 0xF) != 0 || get16(m, 4) != 1) return false;
  char qname[256];
  std::size_t pos = 0;
  if (!readName(m, 12, qname, sizeof qname, pos) || pos + 4 > m.size() || !sameName(qname, name) ||
      get16(m, pos) != type || get16(m, pos + 2) != 1) {
    return false;
  }
  pos += 4;
  out = DnsReply{};
  const unsigned rcode = flags & 0xF;
  out.rcode = static_cast<std::uint8_t>(rcode);
  if (rcode == 3) {  // NXDOMAIN
    out.outcome = DnsOutcome::Absent;
    return true;
  }
  if (rcode != 0) {
    out.outcome = DnsOutcome::Failed;
    return true;
  }
  const bool truncated = (flags & 0x0200) != 0;
  bool found = false;
  bool broken = false;
  std::uint16_t bestPriority = 0;
  std::uint16_t bestWeight = 0;
  for (std::uint16_t i = 0, count = get16(m, 6); i < count; ++i) {
    char owner[256];
    if (!readName(m, pos, owner, sizeof owner, pos) || pos + 10 > m.size()) {
      broken = true;
      break;
    }
    const std::uint16_t rtype = get16(m, pos);
    const std::uint16_t rclass = get16(m, pos + 2);
    const std::size_t length = get16(m, pos + 8);
    const std::size_t data = pos + 10;
    if (data + length > m.size()) {
      broken = true;
      break;
    }
    pos = data + length;
    if (rclass != 1 || rtype != type) continue;  // a CNAME on the way, or another class
    if (type == dns::kTypeA || type == dns::kTypeAaaa) {
      if (length == (type == dns::kTypeA ? 4u : 16u)) found = true;
      continue;
    }
    if (type != dns::kTypeSrv || length < 7) continue;
    char target[256];
    std::size_t end = 0;
    if (!readName(m.first(data + length), data + 6, target, sizeof target, end) ||
        target[0] == '\0' || std::strlen(target) >= out.srvTarget.size()) {
      continue;  // "." (no such service here) or unusable
    }
    const std::uint16_t priority = get16(m, data);
    const std::uint16_t weight = get16(m, data + 2);
    if (!found || priority < bestPriority || (priority == bestPriority && weight > bestWeight)) {
      found = true;
      bestPriority = priority;
      bestWeight = weight;
      out.srvPort = get16(m, data + 4);
      std::memcpy(out.srvTarget.data(), target, std::strlen(target) + 1);
    }
  }
  if (type == dns::kTypeSrv && found && out.srvPort == 0) found = false;
  out.outcome = found                 ? DnsOutcome::Found
                : broken || truncated ? DnsOutcome::Failed
                                      : DnsOutcome::Absent;
  return true;
}

namespace {

constexpr std::size_t kPerDomain = 3;  // SRV, A, AAAA
constexpr std::uint16_t kTypes[kPerDomain] = {dns::kTypeSrv, dns::kTypeA, dns::kTypeAaaa};

struct Query {
  DnsOutcome outcome = DnsOutcome::Pending;
  std::uint8_t failedOn = 0;  // one bit per server that could not answer it
};

struct Search {
  const ResolverConf& conf;
  std::uint16_t firstId = 0;
  std::size_t count = 0;
  Query queries[ResolverConf::kMaxDomains * kPerDomain];
  DnsReply srv[ResolverConf::kMaxDomains];
  int fds[ResolverConf::kMaxServers] = {-1, -1, -1};
  int serverError[ResolverConf::kMaxServers] = {};  // errno, or -1 - RCODE after an error reply
  std::uint8_t allServers = 0;

  void name(std::size_t q, char* out, std::size_t size) const {
    std::snprintf(out, size, "%s.%s",
                  q % kPerDomain == 0 ? kDetectService.data() : kDetectHost.data(),
                  conf.domains[q / kPerDomain].data());
  }

  void failOn(std::size_t q, std::size_t server) {
    Query& query = queries[q];
    if (query.outcome != DnsOutcome::Pending) return;
    query.failedOn = static_cast<std::uint8_t>(query.failedOn | (1u << server));
    if ((query.failedOn & allServers) == allServers) query.outcome = DnsOutcome::Failed;
  }

  void serverDown(std::size_t server, int error) {
    if (fds[server] >= 0) ::close(fds[server]);
    fds[server] = -1;
    serverError[server] = error;
    for (std::size_t q = 0; q < count; ++q) failOn(q, server);
  }

  void send(std::size_t server) {
    std::uint8_t packet[300];
    char qname[300];
    for (std::size_t q = 0; q < count && fds[server] >= 0; ++q) {
      if (queries[q].outcome != DnsOutcome::Pending || (queries[q].failedOn & (1u << server))) {
        continue;
      }
      name(q, qname, sizeof qname);
      const std::size_t size = encodeQuery(static_cast<std::uint16_t>(firstId + q), qname,
                                           kTypes[q % kPerDomain], packet);
      if (size == 0) {
        queries[q].outcome = DnsOutcome::Absent;  // no such name can exist
        continue;
      }
      if (::send(fds[server], packet, size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
          errno != EWOULDBLOCK && errno != EINTR) {
        serverDown(server, errno);
      }
    }
  }

  void receive(std::size_t server) {
    std::uint8_t message[dns::kMaxMessage];
    for (int i = 0; i < 64 && fds[server] >= 0; ++i) {
      const ssize_t n = ::recv(fds[server], message, sizeof message, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) serverDown(server, errno);
        return;
      }
      if (n < 2) continue;
      const std::size_t q = static_cast<std::uint16_t>(((message[0] << 8) | message[1]) - firstId);
      if (q >= count || queries[q].outcome != DnsOutcome::Pending) continue;
      char qname[300];
      name(q, qname, sizeof qname);
      DnsReply reply;
      if (!readReply({message, static_cast<std::size_t>(n)},
                     static_cast<std::uint16_t>(firstId + q), qname, kTypes[q % kPerDomain],
                     reply)) {
        continue;
      }
      if (reply.outcome == DnsOutcome::Failed) {
        if (serverError[server] == 0) serverError[server] = -1 - reply.rcode;
        failOn(q, server);
        continue;
      }
      queries[q].outcome = reply.outcome;
      if (q % kPerDomain == 0) srv[q / kPerDomain] = reply;
    }
  }

  // The winning query's index, kUndecided, or kNone. `final`: at the deadline, pending is absent.
  static constexpr std::size_t kUndecided = ~std::size_t{0};
  static constexpr std::size_t kNone = kUndecided - 1;
  std::size_t decide(bool final) const {
    for (std::size_t d = 0; d * kPerDomain < count; ++d) {
      const Query* q = &queries[d * kPerDomain];
      if (q[0].outcome == DnsOutcome::Found) return d * kPerDomain;
      if (q[0].outcome == DnsOutcome::Pending && !final) return kUndecided;
      if (q[1].outcome == DnsOutcome::Found) return d * kPerDomain + 1;
      if (q[2].outcome == DnsOutcome::Found) return d * kPerDomain + 2;
      if ((q[1].outcome == DnsOutcome::Pending || q[2].outcome == DnsOutcome::Pending) && !final) {
        return kUndecided;
      }
    }
    return kNone;
  }
};

const char* rcodeText(int rcode) {
  switch (rcode) {
    case 0:
      return "a truncated or malformed reply";
    case 1:
      return "FORMERR";
    case 2:
      return "SERVFAIL";
    case 4:
      return "NOTIMP";
    case 5:
      return "REFUSED";
    default:
      return "an error reply";
  }
}

// "10.0.0.1, 10.0.0.2" into out.
void serverList(const ResolverConf& conf, char* out, std::size_t size) {
  std::size_t n = 0;
  out[0] = '\0';
  for (std::size_t i = 0; i < conf.serverCount && n + 1 < size; ++i) {
    char text[INET6_ADDRSTRLEN];
    addressText(conf.servers[i], text, sizeof text);
    n += static_cast<std::size_t>(std::snprintf(out + n, size - n, "%s%s", i ? ", " : "", text));
  }
}

}  // namespace

bool detectServer(const ResolverConf& conf, int timeoutMs, Detected& out) {
  out = Detected{};
  if (conf.domainCount == 0 || conf.serverCount == 0) {
    std::snprintf(out.problem.data(), out.problem.size(),
                  conf.domainCount == 0 ? "no DNS domain to look in" : "no name server");
    return false;
  }
  Search s{conf};
  s.count = conf.domainCount * kPerDomain;
  if (::getrandom(&s.firstId, sizeof s.firstId, GRND_NONBLOCK) != sizeof s.firstId) {
    s.firstId =
        static_cast<std::uint16_t>(monotonicMs() ^ (static_cast<unsigned>(::getpid()) << 4));
  }
  s.allServers = static_cast<std::uint8_t>((1u << conf.serverCount) - 1);
  const std::int64_t start = monotonicMs();
  const std::int64_t deadline = start + timeoutMs;
  for (std::size_t i = 0; i < conf.serverCount; ++i) {
    const int fd =
        ::socket(conf.servers[i].ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    s.fds[i] = fd;
    if (fd < 0) {
      s.serverDown(i, errno);
      continue;
    }
    // Connected: only this server's datagrams arrive, and an ICMP error ends the wait at once.
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&conf.servers[i]), conf.serverLengths[i]) !=
        0) {
      s.serverDown(i, errno);
      continue;
    }
    s.send(i);
  }
  // Once more to every server, half way, for a datagram lost on the way.
  std::int64_t resendAt = start + timeoutMs / 2;
  std::size_t winner = s.decide(false);
  while (winner == Search::kUndecided) {
    const std::int64_t now = monotonicMs();
    if (now >= deadline) break;
    if (resendAt != 0 && now >= resendAt) {
      for (std::size_t i = 0; i < conf.serverCount; ++i) s.send(i);
      resendAt = 0;
    }
    pollfd fds[ResolverConf::kMaxServers];
    std::size_t index[ResolverConf::kMaxServers];
    nfds_t n = 0;
    for (std::size_t i = 0; i < conf.serverCount; ++i) {
      if (s.fds[i] < 0) continue;
      fds[n] = pollfd{s.fds[i], POLLIN, 0};
      index[n++] = i;
    }
    if (n == 0) break;
    const std::int64_t until = resendAt != 0 && resendAt < deadline ? resendAt : deadline;
    const int rc = ::poll(fds, n, static_cast<int>(until - now > 0 ? until - now : 0));
    if (rc < 0 && errno != EINTR) break;
    for (nfds_t i = 0; rc > 0 && i < n; ++i) {
      if (fds[i].revents != 0) s.receive(index[i]);
    }
    winner = s.decide(false);
  }
  if (winner == Search::kUndecided) winner = s.decide(true);
  for (int fd : s.fds) {
    if (fd >= 0) ::close(fd);
  }

  if (winner != Search::kNone) {
    const std::size_t d = winner / kPerDomain;
    const char* domain = conf.domains[d].data();
    auto& server = out.server;
    if (winner % kPerDomain == 0) {
      std::snprintf(server.host.data(), server.host.size(), "%s", s.srv[d].srvTarget.data());
      server.port = s.srv[d].srvPort;
      std::snprintf(server.detectedBy.data(), server.detectedBy.size(), "%s.%s SRV",
                    kDetectService.data(), domain);
      out.srv = true;
    } else {
      std::snprintf(server.host.data(), server.host.size(), "%s.%s", kDetectHost.data(), domain);
      server.port = protocol::control::kDefaultPort;
      std::snprintf(server.detectedBy.data(), server.detectedBy.size(), "%s.%s %s",
                    kDetectHost.data(), domain, winner % kPerDomain == 1 ? "A" : "AAAA");
    }
    return true;
  }

  // Why not: every question answered "no such record", or which servers did not answer.
  bool pending = false;
  bool failed = false;
  for (std::size_t q = 0; q < s.count; ++q) {
    pending = pending || s.queries[q].outcome == DnsOutcome::Pending;
    failed = failed || s.queries[q].outcome == DnsOutcome::Failed;
  }
  char servers[160];
  serverList(conf, servers, sizeof servers);
  char* p = out.problem.data();
  const std::size_t size = out.problem.size();
  if (pending) {
    std::snprintf(p, size, "no answer from the name server %s within %d ms", servers, timeoutMs);
  } else if (failed) {
    int error = 0;
    for (int e : s.serverError) error = error != 0 ? error : e;
    std::snprintf(p, size, "the name server %s could not answer (%s)", servers,
                  error > 0 ? std::strerror(error) : rcodeText(-1 - error));
  } else {
    int n = std::snprintf(p, size, "no %s SRV or %s A/AAAA record in ", kDetectService.data(),
                          kDetectHost.data());
    for (std::size_t d = 0; d < conf.domainCount && n > 0 && static_cast<std::size_t>(n) < size;
         ++d) {
      n += std::snprintf(p + n, size - static_cast<std::size_t>(n), "%s%s", d ? ", " : "",
                         conf.domains[d].data());
    }
  }
  return false;
}

bool detectServer(const Paths& paths, std::span<char> scratch, Detected& out) {
  out = Detected{};
  int timeoutMs = kDefaultDetectTimeoutMs;
  if (const char* v = std::getenv("FWGATE_DETECT_TIMEOUT"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end == '\0' && n >= 0)
      timeoutMs = n > kMaxDetectTimeoutMs ? kMaxDetectTimeoutMs : static_cast<int>(n);
  }
  if (timeoutMs == 0 || paths.resolvConf[0] == '\0') {
    std::snprintf(out.problem.data(), out.problem.size(), "DNS detection is off%s",
                  timeoutMs == 0 ? " (FWGATE_DETECT_TIMEOUT=0)" : "");
    return false;
  }
  // Only where the host looks names up in DNS at all.
  if (const long n = readWholeFile(paths.nsswitchConf.data(), scratch.data(), scratch.size());
      n > 0 && !hostsUseDns({scratch.data(), static_cast<std::size_t>(n)})) {
    std::snprintf(out.problem.data(), out.problem.size(),
                  "DNS detection is off: the hosts line of %.120s does not use DNS",
                  paths.nsswitchConf.data());
    return false;
  }
  ResolverConf conf;
  const long n = readWholeFile(paths.resolvConf.data(), scratch.data(), scratch.size());
  parseResolvConf(
      n > 0 ? std::string_view(scratch.data(), static_cast<std::size_t>(n)) : std::string_view(),
      conf);
  if (const char* local = std::getenv("LOCALDOMAIN"); local != nullptr) {
    setSearchList(local, conf);
    conf.searchGiven = true;
  }
  char host[256] = {};
  if (!conf.searchGiven && ::gethostname(host, sizeof host - 1) == 0) {
    if (const char* dot = std::strchr(host, '.'); dot != nullptr) setSearchList(dot + 1, conf);
  }
  if (conf.domainCount == 0) {
    if (conf.searchGiven) {
      std::snprintf(out.problem.data(), out.problem.size(),
                    "no DNS domain to look in (the search list is empty)");
    } else {
      std::snprintf(
          out.problem.data(), out.problem.size(),
          "no DNS domain to look in (no search or domain line in %.100s, and the host name "
          "%.64s has no domain)",
          paths.resolvConf.data(), host);
    }
    return false;
  }
  return detectServer(conf, timeoutMs, out);
}

namespace {

// The server found last in this process. Only a thread that gets `busy` reads or writes it (no
// waiting, no lock to inherit across fork): one that does not just asks DNS.
struct DetectMemo {
  std::atomic<bool> busy{false};
  ServerAddress server;
  std::int64_t at = 0;  // monotonicMs(); 0: none
};
constinit DetectMemo g_detectMemo;
constexpr std::int64_t kDetectMemoMs = 30'000;

}  // namespace

bool detectServerRemembered(const Paths& paths, std::span<char> scratch, Detected& out,
                            bool reuse) {
  if (reuse && paths.resolvConf[0] != '\0' &&
      !g_detectMemo.busy.exchange(true, std::memory_order_acquire)) {
    const bool fresh = g_detectMemo.at != 0 && monotonicMs() - g_detectMemo.at < kDetectMemoMs;
    if (fresh) {
      out = Detected{};
      out.server = g_detectMemo.server;
      out.srv = std::string_view(out.server.detectedBy.data()).ends_with(" SRV");
    }
    g_detectMemo.busy.store(false, std::memory_order_release);
    if (fresh) return true;
  }
  if (!detectServer(paths, scratch, out)) return false;
  if (!g_detectMemo.busy.exchange(true, std::memory_order_acquire)) {
    g_detectMemo.server = out.server;
    g_detectMemo.at = monotonicMs();
    g_detectMemo.busy.store(false, std::memory_order_release);
  }
  return true;
}

}  // namespace fwgate::client
