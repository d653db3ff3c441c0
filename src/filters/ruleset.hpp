// The gateway's packet filters as an nftables table of its own, `table inet fwgate` (the seed's
// "Custom Static Packet Filters", in the kernel): rendering the script, the dynamic set's
// element commands, and reading the counters back. Sans-I/O: text in, text out; nft.hpp runs it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace fwgate::filters {

inline constexpr std::string_view kFamily = "inet";
inline constexpr std::string_view kTable = "fwgate";
// TCP ports the gateway opened on its external side (remoted listens, SOCKS BIND), admitted
// while they are open; each element has a timeout as a safety net should the gateway die.
inline constexpr std::string_view kDynamicSet = "dynamic_tcp";
// The UDP ports the gateway opened (published UDP associations: RemoteBindUdpPorts).
inline constexpr std::string_view kDynamicUdpSet = "dynamic_udp";

// The comments of the table's own counters, beside the filters' names. Filter names cannot be
// one of these (config rejects "invalid", "dynamic" and "outbound"; the others hold a space).
inline constexpr std::string_view kCounterInvalid = "invalid";  // ct state invalid, dropped
inline constexpr std::string_view kCounterNeighbourDiscovery = "neighbour discovery";  // ICMPv6
inline constexpr std::string_view kCounterDynamic = "dynamic";           // the dynamic set's rule
inline constexpr std::string_view kCounterDynamicUdp = "dynamic udp";    // the UDP set's rule
inline constexpr std::string_view kCounterNotAdmitted = "not admitted";  // input drops
inline constexpr std::string_view kCounterNotAdmittedForward = "not admitted (forward)";
inline constexpr std::string_view kCounterOutbound = "outbound";         // outbound = "accept"
inline constexpr std::string_view kCounterGatewayUser = "gateway user";  // outbound = "drop"
inline constexpr std::string_view kCounterOutboundNotAdmitted = "outbound not admitted";
inline constexpr std::string_view kCounterOutboundNotAdmittedForward =
    "outbound not admitted (forward)";

struct RenderOptions {
  // The gateway's own user id ([gateway] user, else the user it runs as): with
  // `outbound = "drop"` its own connections (made for clients) still go out.
  std::uint32_t gatewayUid = 0;
};

// One nft script that replaces the table in one transaction: creates it if missing, deletes it,
// and defines it again (sets, chains input/forward/output with a counter and a comment per
// filter, the final drop counters). Never touches another table. Without `interfaces` the
// chains are empty: nothing is filtered (there is no telling the external side).
std::string renderRuleset(const config::PacketFilterSettings& settings,
                          const RenderOptions& options);

// Removes only `table inet fwgate` (and succeeds when it does not exist).
std::string flushScript();

// "add element inet fwgate dynamic_tcp { 4000 timeout 3600s }\n". The removal adds the port
// first (without a timeout) and then deletes it, in one transaction, so removing a port whose
// element already timed out is not an error. The refresh does the same for every open port:
// add, delete, add again with a fresh timeout (an element's timeout cannot be renewed in place).
// No ports: an empty script.
// `udp`: the same for the set dynamic_udp.
std::string addDynamicPortScript(std::uint16_t port, std::chrono::seconds timeout,
                                 bool udp = false);
std::string removeDynamicPortScript(std::uint16_t port, bool udp = false);
std::string refreshDynamicPortsScript(const std::vector<std::uint16_t>& ports,
                                      std::chrono::seconds timeout, bool udp = false);

// A counter of the table, from `nft --json list table inet fwgate`: each filter's rules (by
// their comment, the filter's name; both directions summed), "dynamic" (the dynamic set's
// rule), "not admitted" (inbound drops) and the other fixed rules by their comments.
struct Counter {
  std::string name;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};
// In the table's rule order; names appear once. Unparseable input gives an empty list.
std::vector<Counter> parseCounters(std::string_view nftJson);

}  // namespace fwgate::filters
