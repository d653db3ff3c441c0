// One Web Proxy client connection (RFC 9112): requests read in order (pipelined ones too), each
// decided by the policy, forwarded to its origin over a pooled persistent connection or tunnelled
// (CONNECT, Upgrade), answered, and logged as one line; the automatic configuration script for
// requests to the proxy itself.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/runtime.hpp"
#include "gateway/session_log.hpp"
#include "protocol/http.hpp"

namespace fwgate::gateway {

class WebProxySession {
 public:
  WebProxySession(Runtime& runtime, asio::ip::tcp::socket client);
  asio::awaitable<void> run();

 private:
  Runtime& runtime_;
  std::shared_ptr<const Snapshot> snapshot_;
  asio::ip::tcp::socket client_;
};

}  // namespace fwgate::gateway
