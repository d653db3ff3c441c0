#include "gateway/web_proxy_session.hpp"

namespace fwgate::gateway {

WebProxySession::WebProxySession(Runtime& runtime, asio::ip::tcp::socket client)
    : runtime_(runtime), snapshot_(runtime.snapshot()), client_(std::move(client)) {}

asio::awaitable<void> WebProxySession::run() {
  co_return;
}

}  // namespace fwgate::gateway
