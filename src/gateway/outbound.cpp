#include "gateway/outbound.hpp"

#include <netdb.h>

#include <algorithm>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <cstring>

#include "gateway/net.hpp"
#include "gateway/offload.hpp"

namespace fwgate::gateway {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

struct Answer {
  int status = 0;
  std::vector<asio::ip::address> addresses;
};

Answer lookup(const std::string& host, int family) {
  Answer a;
  addrinfo hints{};
  hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  a.status = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (a.status != 0) return a;
  for (addrinfo* i = list; i != nullptr; i = i->ai_next) {
    asio::ip::address address;
    if (i->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ai_addr);
      asio::ip::address_v4::bytes_type b;
      std::memcpy(b.data(), &sin->sin_addr, 4);
      address = asio::ip::address_v4(b);
    } else if (i->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ai_addr);
      asio::ip::address_v6::bytes_type b;
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      address = asio::ip::address_v6(b, sin6->sin6_scope_id);
    } else {
      continue;
    }
    if (std::find(a.addresses.begin(), a.addresses.end(), address) == a.addresses.end()) {
      a.addresses.push_back(address);
    }
  }
  ::freeaddrinfo(list);
  return a;
}

}  // namespace

policy::Request policyRequest(const Runtime& runtime, const Requester& requester,
                              policy::Command command,
                              const std::optional<asio::ip::address>& address, std::uint16_t port,
                              const std::string& name,
                              const std::optional<policy::ConnectionFacts>& connection,
                              const std::string& secondaryOf) {
  policy::Request request;
  request.client = toPolicy(requester.client);
  request.clientIsLocal = runtime.isHostAddress(requester.client);
  request.user = requester.user;
  request.canAskForUser = requester.canAskForUser;
  request.command = command;
  if (address) {
    request.destinationAddress = toPolicy(*address);
    request.destinationIsProtected = runtime.isProtectedDestination(*address, port);
  }
  request.destinationName = name;
  request.destinationPort = port;
  request.connection = connection;
  request.secondaryOf = secondaryOf;
  return request;
}

policy::Decision decide(const Runtime& runtime, const Snapshot& snapshot,
                        const Requester& requester, policy::Command command,
                        const std::optional<asio::ip::address>& address, std::uint16_t port,
                        const std::string& name,
                        const std::optional<policy::ConnectionFacts>& connection,
                        const std::string& secondaryOf) {
  return snapshot.engine->decide(
      policyRequest(runtime, requester, command, address, port, name, connection, secondaryOf));
}

Allowed allowedAddresses(const Runtime& runtime, const Snapshot& snapshot,
                         const Requester& requester,
                         const std::vector<asio::ip::address>& candidates, std::uint16_t port,
                         const std::string& name, policy::Command command) {
  Allowed out;
  std::optional<policy::Decision> denying;  // the first address's denial
  for (const auto& a : candidates) {
    auto decision = decide(runtime, snapshot, requester, command, a, port, name);
    if (decision.allowed) {
      if (out.addresses.empty()) {
        out.rule = decision.ruleName;
        out.protocol = decision.protocol;
        out.reason = decision.reason;
      }
      out.addresses.push_back(a);
    } else if (!denying) {
      denying = std::move(decision);
    }
  }
  if (out.addresses.empty() && denying) {
    out.rule = denying->ruleName;
    out.protocol = denying->protocol;
    out.reason = denying->reason;
    out.needsUser = denying->needsUser;
  }
  return out;
}

asio::awaitable<std::vector<asio::ip::address>> resolveHost(Runtime& runtime, std::string host,
                                                            int family, config::Duration timeout,
                                                            std::error_code& ec) {
  // getaddrinfo blocks: it runs on the resolver pool, never on the event loop.
  // Named, not a temporary in the co_await expression: GCC 12 destroys such temporaries twice.
  auto work = [host = std::move(host), family] { return lookup(host, family); };
  auto answer = co_await offload<Answer>(runtime.resolverPool(), std::move(work), timeout);
  if (!answer) {
    ec = asio::error::timed_out;
    co_return std::vector<asio::ip::address>{};
  }
  if (answer->status != 0) {
    ec = std::error_code(answer->status, asio::error::get_addrinfo_category());
    co_return std::vector<asio::ip::address>{};
  }
  if (answer->addresses.empty()) ec = asio::error::host_not_found;
  co_return std::move(answer->addresses);
}

asio::awaitable<std::error_code> connectAny(tcp::socket& out,
                                            const std::vector<asio::ip::address>& candidates,
                                            std::uint16_t port, config::Duration timeout,
                                            asio::ip::address& connected,
                                            const std::optional<asio::ip::address>& source) {
  asio::steady_timer deadline(out.get_executor());
  deadline.expires_after(timeout);
  std::error_code lastError = asio::error::host_unreachable;
  for (const auto& a : candidates) {
    tcp::socket attempt(out.get_executor());
    std::error_code ec;
    attempt.open(a.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec && source && source->is_v4() == a.is_v4()) attempt.bind({*source, 0}, ec);
    if (ec) {
      lastError = ec;
      continue;
    }
    const tcp::endpoint endpoint{a, port};
    auto outcome =
        co_await (attempt.async_connect(endpoint, kNoThrow) || deadline.async_wait(kNoThrow));
    if (outcome.index() == 1) {
      lastError = asio::error::timed_out;
      break;
    }
    auto [connectEc] = std::get<0>(outcome);
    if (!connectEc) {
      out = std::move(attempt);
      connected = a;
      co_return std::error_code{};
    }
    lastError = connectEc;
  }
  co_return lastError;
}

}  // namespace fwgate::gateway
