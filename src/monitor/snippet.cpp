#include "monitor/snippet.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace fwgate::monitor {
namespace {

// A bare TOML key is [A-Za-z0-9_-]+; definition names may also hold '.', which needs quotes.
std::string tomlKey(const std::string& name) {
  const bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
  return bare ? name : fmt::format("\"{}\"", name);
}

std::string portsToml(const policy::ConnectionSpec& spec) {
  if (spec.anyDynamicPort()) return "0";
  if (spec.ports.first == spec.ports.last) return std::to_string(spec.ports.first);
  return fmt::format("\"{}-{}\"", spec.ports.first, spec.ports.last);
}

// `wanted`'s connections are all connections of `have`.
bool specCovers(const policy::ConnectionSpec& have, const policy::ConnectionSpec& wanted,
                const policy::PortRange& dynamic) {
  if (have.transport != wanted.transport) return false;
  if (!policy::directionMatches(have.direction, wanted.direction)) return false;
  const auto h = policy::effectivePorts(have, dynamic);
  const auto w = policy::effectivePorts(wanted, dynamic);
  return h.first <= w.first && w.last <= h.last;
}

}  // namespace

std::string connectionToml(const policy::ConnectionSpec& spec) {
  return fmt::format("{{ ports = {}, transport = \"{}\", direction = \"{}\" }}", portsToml(spec),
                     policy::toString(spec.transport), policy::toString(spec.direction));
}

std::string definitionToml(const policy::ProtocolDefinition& definition) {
  std::string out = fmt::format("[protocols.{}]\n", tomlKey(definition.name));
  out += fmt::format("port = {}\ntransport = \"{}\"\ndirection = \"{}\"\n",
                     portsToml(definition.primary), policy::toString(definition.primary.transport),
                     policy::toString(definition.primary.direction));
  if (!definition.secondary.empty()) {
    out += "secondary = [\n";
    for (const auto& s : definition.secondary) out += "  " + connectionToml(s) + ",\n";
    out += "]\n";
  }
  return out;
}

const policy::ProtocolDefinition* findCovering(
    const std::vector<policy::ProtocolDefinition>& definitions,
    const policy::ConnectionSpec& primary, const std::vector<policy::ConnectionSpec>& secondary,
    const policy::PortRange& dynamic) {
  for (const auto& d : definitions) {
    if (!specCovers(d.primary, primary, dynamic)) continue;
    const bool all = std::all_of(secondary.begin(), secondary.end(), [&](const auto& wanted) {
      return std::any_of(d.secondary.begin(), d.secondary.end(),
                         [&](const auto& have) { return specCovers(have, wanted, dynamic); });
    });
    if (all) return &d;
  }
  return nullptr;
}

namespace {
std::string lowered(std::string s) {
  for (char& c : s) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  return s;
}
}  // namespace

UniqueNames::UniqueNames(const std::vector<std::string>& taken) {
  for (const auto& t : taken) used_.insert(lowered(t));
}

std::string UniqueNames::take(const std::string& base) {
  std::size_t& n = next_[lowered(base)];
  for (;;) {
    std::string name = n == 0 ? base : fmt::format("{}-{}", base, n + 1);
    ++n;
    if (used_.insert(lowered(name)).second) return name;
  }
}

}  // namespace fwgate::monitor
