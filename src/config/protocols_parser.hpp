// [protocols.NAME] definitions, the [bind] keys they depend on and the rules' `protocols` key,
// for the configuration parser (private to config/).
#pragma once

#include <toml++/toml.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/toml_reader.hpp"
#include "policy/protocols.hpp"

namespace fwgate::config::detail {

// Parses the definitions and remembers their names, so that rules parsed later can name them;
// every problem goes to the Reader with its key path.
class ProtocolsParser {
 public:
  explicit ProtocolsParser(Reader& in) : in_(in) {}

  // [bind] dynamic_ports and secondary_peers: the range port 0 of a definition stands for, and
  // who may reach a definition's remoted secondary listens.
  void bindSettings(const toml::table& t, BindSettings& out);

  // [protocols.NAME]: the configuration's definitions in file order, then the catalogue's
  // definitions whose names (case-insensitively) they do not take.
  std::vector<policy::ProtocolDefinition> parse(const toml::table& t);

  // Two of the configuration's definitions (the first ones of `all`, from parse) whose primary
  // connections can be the same connection: the later one could never name it.
  void checkOverlaps(const std::vector<policy::ProtocolDefinition>& all,
                     policy::PortRange dynamicPorts);

  // A rule's `protocols`: names of definitions in `all` or under [protocols], appended to `out`.
  void ruleProtocols(const toml::table& t, const std::string& path,
                     const std::vector<policy::ProtocolDefinition>& all,
                     std::vector<std::string>& out);

 private:
  bool secondaries(const toml::node& list, const std::string& path,
                   std::vector<policy::ConnectionSpec>& out);
  bool connection(const toml::table& t, const std::string& path, std::string_view portKey,
                  policy::ConnectionSpec& out);
  bool definitionPorts(const toml::node& n, const std::string& path, policy::PortRange& out);

  Reader& in_;
  // Every valid name under [protocols], in file order, even of definitions with errors (so rules
  // naming them get no second error).
  std::vector<std::string> names_;
  std::vector<std::uint32_t> lines_;  // line of each of the configuration's own definitions
};

}  // namespace fwgate::config::detail
