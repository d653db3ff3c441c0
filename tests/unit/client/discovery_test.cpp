// DNS detection of the gateway: reading resolv.conf and nsswitch.conf, the DNS messages, and the
// search itself against a name server of the test's own on 127.0.0.1 (a thread), including one
// that never answers (the bound) and one that is not there (ICMP: at once).
#include "client/discovery.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client/gateway_link.hpp"

namespace fwgate::client {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::string serverText(const ResolverConf& c, std::size_t i) {
  char text[INET6_ADDRSTRLEN] = {};
  const auto& s = c.servers[i];
  const void* a =
      s.ss_family == AF_INET
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&s)->sin_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&s)->sin6_addr);
  inet_ntop(s.ss_family, a, text, sizeof text);
  const std::uint16_t port = ntohs(reinterpret_cast<const sockaddr_in*>(&s)->sin_port);
  return std::string(text) + "#" + std::to_string(port);
}

std::vector<std::string> domains(const ResolverConf& c) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < c.domainCount; ++i) out.emplace_back(c.domains[i].data());
  return out;
}

TEST(ResolvConf, ServersAndTheLastSearchOrDomainLine) {
  ResolverConf c;
  parseResolvConf(
      "# comment\n; another\nnameserver 10.0.0.53\nnameserver\t2001:db8::53\n"
      "domain first.example\nsearch corp.example. lab.example  .\n"
      "nameserver fe80::1%3\nnameserver 10.0.0.54\noptions timeout:9 attempts:9\n",
      c);
  ASSERT_EQ(c.serverCount, 3u);  // the fourth is past the resolver's limit, as there
  EXPECT_EQ(serverText(c, 0), "10.0.0.53#53");
  EXPECT_EQ(serverText(c, 1), "2001:db8::53#53");
  EXPECT_EQ(serverText(c, 2), "fe80::1#53");
  EXPECT_EQ(reinterpret_cast<const sockaddr_in6*>(&c.servers[2])->sin6_scope_id, 3u);
  EXPECT_TRUE(c.searchGiven);
  EXPECT_EQ(domains(c), (std::vector<std::string>{"corp.example", "lab.example"}));

  parseResolvConf("search a.example b.example\ndomain only.example\n", c);
  EXPECT_EQ(domains(c), (std::vector<std::string>{"only.example"}));
  // No server: the resolver's default, this host.
  ASSERT_EQ(c.serverCount, 1u);
  EXPECT_EQ(serverText(c, 0), "127.0.0.1#53");

  parseResolvConf("nameserver not-an-address\nsearch 1 2 3 4 5 6 7 8\n", c);
  EXPECT_EQ(c.domainCount, ResolverConf::kMaxDomains);
  EXPECT_EQ(serverText(c, 0), "127.0.0.1#53");

  parseResolvConf("", c);
  EXPECT_FALSE(c.searchGiven);
  EXPECT_EQ(c.domainCount, 0u);
}

TEST(NsSwitch, WhetherHostNamesGoToDns) {
  EXPECT_TRUE(hostsUseDns("hosts: files dns\n"));
  EXPECT_TRUE(
      hostsUseDns("passwd: files\nhosts:          files mdns4_minimal [NOTFOUND=return] dns"));
  EXPECT_TRUE(hostsUseDns("hosts: files mymachines resolve [!UNAVAIL=return] myhostname\n"));
  EXPECT_TRUE(hostsUseDns("hosts :files dns\n"));
  EXPECT_FALSE(hostsUseDns("# fwgate tests\nhosts: files\nnetworks: files dns\n"));
  EXPECT_FALSE(hostsUseDns("hosts: files # dns\n"));
  EXPECT_FALSE(hostsUseDns("hosts: files\nhosts: dns\n"));  // the first hosts line
  EXPECT_TRUE(hostsUseDns("passwd: files\n"));              // none: the C library's default
  EXPECT_TRUE(hostsUseDns(""));
}

TEST(DnsMessage, Query) {
  std::uint8_t out[300];
  const std::size_t n = encodeQuery(0xBEEF, "wspad.corp.test", dns::kTypeAaaa, out);
  const Bytes expected = {0xBE, 0xEF, 0x01, 0x00, 0,   1,   0,   0, 0,   0,   0,
                          0,    5,    'w',  's',  'p', 'a', 'd', 4, 'c', 'o', 'r',
                          'p',  4,    't',  'e',  's', 't', 0,   0, 28,  0,   1};
  EXPECT_EQ(Bytes(out, out + n), expected);
  EXPECT_EQ(encodeQuery(1, "a..b", 1, out), 0u);
  EXPECT_EQ(encodeQuery(1, std::string(64, 'x') + ".test", 1, out), 0u);
  EXPECT_EQ(encodeQuery(1, "", 1, out), 0u);
  EXPECT_EQ(encodeQuery(1, "wspad.corp.test", 1, {out, 20}), 0u);  // does not fit
}

// A reply to `query` written by hand: rcode, and answers each (type, rdata) owned by the question's
// name (a pointer to offset 12).
struct Rr {
  std::uint16_t type;
  Bytes data;
};
Bytes reply(const Bytes& query, std::uint8_t rcode, const std::vector<Rr>& answers,
            std::uint16_t extraFlags = 0) {
  Bytes m(query);
  m[2] = static_cast<std::uint8_t>(0x81 | (extraFlags >> 8));
  m[3] = static_cast<std::uint8_t>(0x80 | rcode | (extraFlags & 0xff));
  m[6] = 0;
  m[7] = static_cast<std::uint8_t>(answers.size());
  for (const Rr& rr : answers) {
    const Bytes head = {0xC0,
                        12,
                        static_cast<std::uint8_t>(rr.type >> 8),
                        static_cast<std::uint8_t>(rr.type),
                        0,
                        1,
                        0,
                        0,
                        0,
                        60,
                        static_cast<std::uint8_t>(rr.data.size() >> 8),
                        static_cast<std::uint8_t>(rr.data.size())};
    for (std::uint8_t b : head) m.push_back(b);
    for (std::uint8_t b : rr.data) m.push_back(b);
  }
  return m;
}

Bytes labels(const std::string& name) {
  Bytes out;
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out.push_back(static_cast<std::uint8_t>(dot - start));
    out.insert(out.end(), name.begin() + static_cast<long>(start),
               name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

Bytes srv(std::uint16_t priority, std::uint16_t weight, std::uint16_t port, const Bytes& target) {
  Bytes d = {static_cast<std::uint8_t>(priority >> 8), static_cast<std::uint8_t>(priority),
             static_cast<std::uint8_t>(weight >> 8),   static_cast<std::uint8_t>(weight),
             static_cast<std::uint8_t>(port >> 8),     static_cast<std::uint8_t>(port)};
  for (std::uint8_t b : target) d.push_back(b);  // (insert: GCC 12's -Warray-bounds misfires)
  return d;
}

Bytes query(std::uint16_t id, const std::string& name, std::uint16_t type) {
  std::uint8_t out[300];
  const std::size_t n = encodeQuery(id, name, type, out);
  return Bytes(out, out + n);
}

TEST(DnsMessage, AddressReplies) {
  const Bytes q = query(7, "wspad.corp.test", dns::kTypeA);
  DnsReply r;
  ASSERT_TRUE(
      readReply(reply(q, 0, {{dns::kTypeA, {10, 0, 0, 1}}}), 7, "WSPAD.Corp.Test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Found);
  // A CNAME on the way, then the address.
  ASSERT_TRUE(readReply(reply(q, 0, {{5, labels("gw.corp.test")}, {dns::kTypeA, {10, 0, 0, 1}}}), 7,
                        "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Found);
  ASSERT_TRUE(readReply(reply(q, 3, {}), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);  // NXDOMAIN
  ASSERT_TRUE(readReply(reply(q, 0, {}), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);  // no record of this type
  ASSERT_TRUE(readReply(reply(q, 2, {}), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Failed);  // SERVFAIL
  ASSERT_TRUE(readReply(reply(q, 5, {}), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Failed);  // REFUSED
  ASSERT_TRUE(readReply(reply(q, 0, {}, 0x0200), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Failed);  // truncated, nothing in it
  ASSERT_TRUE(
      readReply(reply(q, 0, {{dns::kTypeA, {10, 0, 0}}}), 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);  // a 3-byte "address" is none
  Bytes cut = reply(q, 0, {{dns::kTypeA, {10, 0, 0, 1}}});
  cut.resize(cut.size() - 2);
  ASSERT_TRUE(readReply(cut, 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Failed);  // cut short
}

TEST(DnsMessage, NotTheReplyToThisQuery) {
  const Bytes q = query(7, "wspad.corp.test", dns::kTypeA);
  const Bytes good = reply(q, 0, {{dns::kTypeA, {10, 0, 0, 1}}});
  DnsReply r;
  EXPECT_FALSE(readReply(good, 8, "wspad.corp.test", dns::kTypeA, r));     // another id
  EXPECT_FALSE(readReply(good, 7, "wspad.lab.test", dns::kTypeA, r));      // another name
  EXPECT_FALSE(readReply(good, 7, "wspad.corp.test", dns::kTypeAaaa, r));  // another type
  EXPECT_FALSE(readReply(q, 7, "wspad.corp.test", dns::kTypeA, r));        // the query itself
  EXPECT_FALSE(
      readReply(Bytes(good.begin(), good.begin() + 11), 7, "wspad.corp.test", dns::kTypeA, r));
  Bytes loop = good;
  loop[12] = 0xC0;  // the question's name a pointer to itself
  loop[13] = 12;
  EXPECT_FALSE(readReply(loop, 7, "wspad.corp.test", dns::kTypeA, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Pending);
}

TEST(DnsMessage, ServiceReplies) {
  const Bytes q = query(9, "_fwgate._tcp.corp.test", dns::kTypeSrv);
  DnsReply r;
  // Lowest priority first, then the highest weight; the target may point into the question
  // ("gw" + pointer to "corp.test" at offset 12 + 1 + 7 + 1 + 4).
  Bytes compressed = {2, 'g', 'w', 0xC0, 12 + 13};
  ASSERT_TRUE(readReply(reply(q, 0,
                              {{dns::kTypeSrv, srv(20, 0, 1800, labels("backup.corp.test"))},
                               {dns::kTypeSrv, srv(10, 5, 1761, labels("light.corp.test"))},
                               {dns::kTypeSrv, srv(10, 50, 1760, compressed)}}),
                        9, "_fwgate._tcp.corp.test", dns::kTypeSrv, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Found);
  EXPECT_STREQ(r.srvTarget.data(), "gw.corp.test");
  EXPECT_EQ(r.srvPort, 1760);
  // A target of ".": no such service in this domain.
  ASSERT_TRUE(readReply(reply(q, 0, {{dns::kTypeSrv, srv(0, 0, 1745, {0})}}), 9,
                        "_fwgate._tcp.corp.test", dns::kTypeSrv, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);
  // A target name with a blank in it is no host name.
  ASSERT_TRUE(readReply(reply(q, 0, {{dns::kTypeSrv, srv(0, 0, 1745, labels("g w.test"))}}), 9,
                        "_fwgate._tcp.corp.test", dns::kTypeSrv, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);
  ASSERT_TRUE(readReply(reply(q, 0, {{dns::kTypeSrv, srv(0, 0, 0, labels("gw.test"))}}), 9,
                        "_fwgate._tcp.corp.test", dns::kTypeSrv, r));
  EXPECT_EQ(r.outcome, DnsOutcome::Absent);  // port 0
}

// A name server of the test's own: answers with `answer(name, type)` (rcode 0 with those records,
// or the rcode when the vector holds one Rr of type 0), or stays silent when `silent`.
class FakeDns {
 public:
  using Answer = std::function<std::vector<Rr>(const std::string&, std::uint16_t)>;
  explicit FakeDns(Answer answer, bool silent = false)
      : answer_(std::move(answer)), silent_(silent) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDns() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  int queries() const { return queries_; }

 private:
  void serve() {
    for (int i = 0; i < 100000 && !stop_; ++i) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      std::uint8_t buf[512];
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 17) continue;
      ++queries_;
      if (silent_) continue;
      std::string name;
      std::size_t at = 12;
      while (at < static_cast<std::size_t>(n) && buf[at] != 0) {
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<char*>(buf + at + 1), buf[at]);
        at += 1 + buf[at];
      }
      const std::uint16_t type = static_cast<std::uint16_t>((buf[at + 1] << 8) | buf[at + 2]);
      const Bytes q(buf, buf + at + 5);
      const std::vector<Rr> rrs = answer_(name, type);
      const Bytes m = rrs.size() == 1 && rrs[0].type == 0 ? reply(q, rrs[0].data[0], {})
                      : rrs.empty()                       ? reply(q, 3, {})
                                                          : reply(q, 0, rrs);
      ::sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }

  Answer answer_;
  bool silent_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

ResolverConf confFor(std::initializer_list<std::uint16_t> ports,
                     std::initializer_list<const char*> search) {
  ResolverConf c;
  std::string text;
  for (std::size_t i = 0; i < ports.size(); ++i) text += "nameserver 127.0.0.1\n";
  text += "search";
  for (const char* d : search) (text += ' ') += d;
  parseResolvConf(text, c);
  std::size_t i = 0;
  for (std::uint16_t port : ports) {
    reinterpret_cast<sockaddr_in*>(&c.servers[i++])->sin_port = htons(port);
  }
  return c;
}

std::int64_t elapsedSince(std::int64_t start) {
  return monotonicMs() - start;
}

TEST(Detect, TheFirstDomainOfTheSearchListWinsAndSrvBeforeAddress) {
  FakeDns dns([](const std::string& name, std::uint16_t type) -> std::vector<Rr> {
    if (name == "wspad.one.test" && type == dns::kTypeA) return {{dns::kTypeA, {10, 0, 0, 1}}};
    if (name == "wspad.one.test" && type == dns::kTypeAaaa) return {{0, {0}}};  // NODATA
    if (name == "_fwgate._tcp.two.test" && type == dns::kTypeSrv) {
      return {{dns::kTypeSrv, srv(0, 0, 1760, labels("gw.two.test"))}};
    }
    if (name == "wspad.three.test" && type == dns::kTypeAaaa) {
      return {{dns::kTypeAaaa, Bytes(16, 1)}};
    }
    if (name == "_fwgate._tcp.three.test" && type == dns::kTypeSrv) return {{0, {2}}};  // SERVFAIL
    return {};
  });
  Detected d;
  ASSERT_TRUE(detectServer(confFor({dns.port()}, {"one.test", "two.test"}), 2000, d))
      << d.problem.data();
  EXPECT_STREQ(d.server.host.data(), "wspad.one.test");
  EXPECT_EQ(d.server.port, 1745);
  EXPECT_STREQ(d.server.detectedBy.data(), "wspad.one.test A");
  EXPECT_FALSE(d.srv);

  ASSERT_TRUE(detectServer(confFor({dns.port()}, {"none.test", "two.test", "one.test"}), 2000, d));
  EXPECT_STREQ(d.server.host.data(), "gw.two.test");
  EXPECT_EQ(d.server.port, 1760);
  EXPECT_STREQ(d.server.detectedBy.data(), "_fwgate._tcp.two.test SRV");
  EXPECT_TRUE(d.srv);

  // The SRV query failing (SERVFAIL) does not hide the address record.
  ASSERT_TRUE(detectServer(confFor({dns.port()}, {"three.test"}), 2000, d));
  EXPECT_STREQ(d.server.detectedBy.data(), "wspad.three.test AAAA");
}

TEST(Detect, NoRecordSaysWhereItLooked) {
  FakeDns dns([](const std::string&, std::uint16_t) { return std::vector<Rr>{}; });
  Detected d;
  const std::int64_t start = monotonicMs();
  EXPECT_FALSE(detectServer(confFor({dns.port()}, {"corp.test", "lab.test"}), 2000, d));
  EXPECT_LT(elapsedSince(start), 1000);  // every question answered: no waiting for the bound
  EXPECT_STREQ(d.problem.data(),
               "no _fwgate._tcp SRV or wspad A/AAAA record in corp.test, lab.test");
  EXPECT_EQ(dns.queries(), 6);
}

TEST(Detect, ANameServerThatRefusesSaysHow) {
  FakeDns dns([](const std::string&, std::uint16_t) { return std::vector<Rr>{{0, {5}}}; });
  Detected d;
  EXPECT_FALSE(detectServer(confFor({dns.port()}, {"corp.test"}), 2000, d));
  EXPECT_STREQ(d.problem.data(), "the name server 127.0.0.1 could not answer (REFUSED)");
}

TEST(Detect, ASilentNameServerCostsTheBoundOnly) {
  FakeDns silent([](const std::string&, std::uint16_t) { return std::vector<Rr>{}; }, true);
  Detected d;
  const std::int64_t start = monotonicMs();
  EXPECT_FALSE(detectServer(confFor({silent.port()}, {"corp.test"}), 400, d));
  const std::int64_t took = elapsedSince(start);
  EXPECT_GE(took, 390);
  EXPECT_LT(took, 1500);
  EXPECT_STREQ(d.problem.data(), "no answer from the name server 127.0.0.1 within 400 ms");
  EXPECT_EQ(silent.queries(), 6);  // three questions, asked again half way
}

TEST(Detect, ANameServerThatIsNotThereEndsAtOnce) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // nothing listens there now: ICMP port unreachable
  Detected d;
  const std::int64_t start = monotonicMs();
  EXPECT_FALSE(detectServer(confFor({ntohs(a.sin_port)}, {"corp.test"}), 5000, d));
  EXPECT_LT(elapsedSince(start), 1000);
  EXPECT_STREQ(d.problem.data(), "the name server 127.0.0.1 could not answer (Connection refused)");
}

TEST(Detect, TheSecondNameServerAnswersWhenTheFirstIsSilent) {
  FakeDns silent([](const std::string&, std::uint16_t) { return std::vector<Rr>{}; }, true);
  FakeDns dns([](const std::string& name, std::uint16_t type) -> std::vector<Rr> {
    if (name == "wspad.corp.test" && type == dns::kTypeA) return {{dns::kTypeA, {10, 0, 0, 1}}};
    return {};
  });
  Detected d;
  const std::int64_t start = monotonicMs();
  ASSERT_TRUE(detectServer(confFor({silent.port(), dns.port()}, {"corp.test"}), 3000, d));
  EXPECT_LT(elapsedSince(start), 1000);  // asked together, not one after the other
  EXPECT_STREQ(d.server.detectedBy.data(), "wspad.corp.test A");
}

TEST(Detect, FromTheFiles) {
  char dir[] = "/tmp/fwgate-detect-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string resolv = std::string(dir) + "/resolv.conf";
  const std::string nss = std::string(dir) + "/nsswitch.conf";
  auto write = [](const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  };
  Paths paths;
  std::snprintf(paths.resolvConf.data(), paths.resolvConf.size(), "%s", resolv.c_str());
  std::snprintf(paths.nsswitchConf.data(), paths.nsswitchConf.size(), "%s", nss.c_str());
  std::vector<char> scratch(4096);
  Detected d;
  write(nss, "hosts: files\n");
  write(resolv, "nameserver 127.0.0.1\nsearch corp.test\n");
  EXPECT_FALSE(detectServer(paths, scratch, d));
  EXPECT_EQ(std::string(d.problem.data()),
            "DNS detection is off: the hosts line of " + nss + " does not use DNS");
  write(nss, "hosts: files dns\n");
  write(resolv, "nameserver 127.0.0.1\nsearch\n");
  EXPECT_FALSE(detectServer(paths, scratch, d));
  EXPECT_STREQ(d.problem.data(), "no DNS domain to look in (the search list is empty)");
  ::setenv("FWGATE_DETECT_TIMEOUT", "0", 1);
  EXPECT_FALSE(detectServer(paths, scratch, d));
  EXPECT_STREQ(d.problem.data(), "DNS detection is off (FWGATE_DETECT_TIMEOUT=0)");
  ::unsetenv("FWGATE_DETECT_TIMEOUT");
  paths.resolvConf[0] = '\0';
  EXPECT_FALSE(detectServer(paths, scratch, d));
  EXPECT_STREQ(d.problem.data(), "DNS detection is off");
  std::remove(resolv.c_str());
  std::remove(nss.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace fwgate::client
