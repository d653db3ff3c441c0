// What a captured program needs (the seed's "Analyze Network Traffic"): its conversations
// grouped into protocol definitions (primary connection, secondary connections with port 0 where
// the ports are dynamic) and, for a program on the gateway host itself, static packet filters.
// The result is configuration text: every explanation is a TOML comment, so the whole output
// can go into the gateway's configuration and pass `fwgate config check`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "monitor/conversations.hpp"
#include "policy/protocols.hpp"

namespace fwgate::monitor {

struct SuggestOptions {
  std::optional<policy::IpAddress> client;  // else the host that opened the first conversation
  std::string name = "CustomApp";           // of new definitions (CustomApp-2, ... for more)
  // Existing definitions (the configuration's, then the catalogue), reused where they cover.
  std::vector<policy::ProtocolDefinition> definitions = policy::builtinProtocols();
  policy::PortRange dynamicPorts = policy::kDefaultDynamicPorts;
  // The program runs on the gateway host: static packet filters too. Set when the client is
  // one of `localAddresses` or by --gateway-host.
  bool gatewayHost = false;
  std::vector<policy::IpAddress> localAddresses;
  // The ports this host's programs pick for themselves (net.ipv4.ip_local_port_range): an
  // inbound packet filter for a connection back to such a port covers the whole range.
  policy::PortRange ephemeralPorts{32768, 60999};
  std::vector<std::string> filterNames;  // the configuration's packet filters, not to reuse
  std::size_t listLimit = 40;            // conversations listed by name before "... and N more"
  std::size_t definitionLimit = 50;      // definitions printed (a port scan is not one program)
  std::size_t filterLimit = 100;         // packet filters printed
};

// One proposed definition, for tests and for the text.
struct SuggestedDefinition {
  policy::ProtocolDefinition definition;   // name set only when `existing` is empty
  std::string existing;                    // the definition that already covers it
  std::vector<std::size_t> conversations;  // indexes into the table's conversations
};

struct Suggestion {
  std::optional<policy::IpAddress> client;
  std::string clientFrom;  // "--client", "opened the first conversation"
  std::vector<SuggestedDefinition> definitions;
  std::string text;  // the configuration snippet with its explanations
};

Suggestion suggest(const ConversationTable& table, const SuggestOptions& options);

// The [[packet_filters.filter]] tables (with their explanations) for a program on the gateway
// host at `client`, from the table's conversations `mine` and its ICMP echo exchanges.
std::string packetFiltersToml(const ConversationTable& table, const policy::IpAddress& client,
                              const std::vector<std::size_t>& mine, const SuggestOptions& options);

}  // namespace fwgate::monitor
