// The gateway's external side for incoming connections, shared by SOCKS BIND and the firewall
// client's remoted listens: which address remote peers should use, and a listening socket on a
// port of the configured dynamic range.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <optional>
#include <system_error>

#include "config/config.hpp"
#include "policy/address.hpp"

namespace fwgate::gateway {

// `[bind] external_address` when set; else the local address of this host's route toward `peer`;
// else `fallback`.
asio::ip::address externalAddressToward(const config::Config& config, asio::io_context& io,
                                        const std::optional<asio::ip::address>& peer,
                                        const asio::ip::address& fallback);

// Opens and binds `acceptor` on `address`: on `port` when it is not 0, else on a random free port
// of `range` (the seed's Port_Any). Does not listen yet. The error is the last bind's.
std::error_code openInbound(asio::ip::tcp::acceptor& acceptor, const asio::ip::address& address,
                            std::uint16_t port, policy::PortRange range);

}  // namespace fwgate::gateway
