// [packet_filters] and its [[packet_filters.filter]] tables, for the configuration parser
// (private to config/).
#pragma once

#include <toml++/toml.h>
#include <vector>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace fwgate::config::detail {

// Parses the section; every problem goes to the Reader with its key path, and a filter with
// errors is left out. `networks` (parsed before) give the local address table: the ranges of the
// networks with firewall_clients = true, where internal computers are.
PacketFilterSettings parsePacketFilters(Reader& in, const toml::table& t,
                                        const std::vector<policy::Network>& networks);

}  // namespace fwgate::config::detail
