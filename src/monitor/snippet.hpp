// What the monitor proposes, as configuration text `fwgate config check` accepts: protocol
// definitions ([protocols.NAME]) and the existing definition that already covers a connection.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy/protocols.hpp"

namespace fwgate::monitor {

// "[protocols.NAME]\nport = 443\ntransport = \"tcp\"\ndirection = \"outbound\"\n" plus a
// `secondary = [...]` array when there are secondary connections. Names that need it are quoted.
std::string definitionToml(const policy::ProtocolDefinition& definition);

// "{ ports = 0, transport = \"tcp\", direction = \"inbound\" }"
std::string connectionToml(const policy::ConnectionSpec& spec);

// The first of `definitions` (configuration order: the configuration's own, then the catalogue)
// whose primary connection matches `primary` and whose secondary connections cover every one
// of `secondary` (each as a connection of that port); nullptr if none does.
const policy::ProtocolDefinition* findCovering(
    const std::vector<policy::ProtocolDefinition>& definitions,
    const policy::ConnectionSpec& primary, const std::vector<policy::ConnectionSpec>& secondary,
    const policy::PortRange& dynamic);

// Definition and filter names, unique case-insensitively against `taken` and each other:
// "CustomApp", then "CustomApp-2", "CustomApp-3", ...
class UniqueNames {
 public:
  explicit UniqueNames(const std::vector<std::string>& taken = {});
  std::string take(const std::string& base);

 private:
  std::set<std::string> used_;  // lower case
  std::map<std::string, std::size_t> next_;
};

}  // namespace fwgate::monitor
