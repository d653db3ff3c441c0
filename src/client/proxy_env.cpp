#include "client/proxy_env.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

namespace fwgate::client {
namespace {

void addOnce(std::vector<std::string>& out, std::string entry) {
  if (std::find(out.begin(), out.end(), entry) == out.end()) out.push_back(std::move(entry));
}

std::string addressText(const IpAddress& a) {
  char text[64];
  formatAddress(a, text, sizeof text);
  return text;
}

// Bit `index` (0 = the most significant) of an address of `bits` bits.
bool bit(const IpAddress& a, unsigned index) {
  return (a.bytes[index / 8] >> (7 - index % 8)) & 1;
}

// Whether the last `hostBits` bits of `a` are all zero (`zero`) or all one.
bool lowBitsAre(const IpAddress& a, unsigned bits, unsigned hostBits, bool one) {
  for (unsigned i = bits - hostBits; i < bits; ++i) {
    if (bit(a, i) != one) return false;
  }
  return true;
}

void setLowBits(IpAddress& a, unsigned bits, unsigned hostBits) {
  for (unsigned i = bits - hostBits; i < bits; ++i) {
    a.bytes[i / 8] = static_cast<std::uint8_t>(a.bytes[i / 8] | (0x80 >> (i % 8)));
  }
}

int compare(const IpAddress& a, const IpAddress& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.bytes[i] != b.bytes[i]) return a.bytes[i] < b.bytes[i] ? -1 : 1;
  }
  return 0;
}

// a + 1; false when a was the last address of its family.
bool increment(IpAddress& a) {
  for (std::size_t i = a.size(); i-- > 0;) {
    if (++a.bytes[i] != 0) return true;
  }
  return false;
}

}  // namespace

void appendNoProxyRange(const AddressRange& range, std::vector<std::string>& out) {
  IpAddress start = normalise(range.first);
  const IpAddress last = normalise(range.last);
  if (start.family != last.family || (start.family != 4 && start.family != 6) ||
      compare(start, last) > 0) {
    return;
  }
  const unsigned bits = start.family == 4 ? 32 : 128;
  for (;;) {
    // The largest block that starts at `start` and ends at or before `last`.
    unsigned hostBits = bits;
    while (hostBits > 0 && !lowBitsAre(start, bits, hostBits, false)) --hostBits;
    IpAddress end;
    for (;; --hostBits) {
      end = start;
      setLowBits(end, bits, hostBits);
      if (compare(end, last) <= 0 || hostBits == 0) break;
    }
    std::string entry = addressText(start);
    if (hostBits != 0) (entry += '/') += std::to_string(bits - hostBits);
    addOnce(out, std::move(entry));
    if (compare(end, last) == 0) return;
    start = end;
    if (!increment(start)) return;
  }
}

ProxyEnvironment proxyEnvironment(const ClientConfig& config) {
  ProxyEnvironment env;
  const std::string_view proxy(config.webProxy.data());
  if (!proxy.empty()) {
    // [firewall_client] web_proxy is "host:port"; a URL is taken as it is.
    env.proxyUrl = proxy.find("://") == std::string_view::npos ? "http://" : "";
    env.proxyUrl += proxy;
  }
  // Always local, as for the firewall client: this host by name and address.
  for (const char* entry : {"localhost", "127.0.0.1", "::1"}) addOnce(env.noProxy, entry);
  // Both spellings of each domain: node's proxy-from-env matches "example.com" exactly and
  // ".example.com" as a suffix; curl, wget, Python and Go read either as the domain and below.
  for (std::size_t i = 0; i < config.ldt.size(); ++i) {
    const std::string domain(config.ldt[i]);
    addOnce(env.noProxy, domain);
    addOnce(env.noProxy, "." + domain);
  }
  for (std::size_t i = 0; i < config.lat.size(); ++i)
    appendNoProxyRange(config.lat[i], env.noProxy);
  return env;
}

std::string renderProxyEnvironment(const ProxyEnvironment& environment, EnvFormat format) {
  std::string noProxy;
  for (const auto& entry : environment.noProxy) {
    if (!noProxy.empty()) noProxy += ',';
    noProxy += entry;
  }
  const std::array<std::pair<const char*, const std::string*>, 6> variables{{
      {"http_proxy", &environment.proxyUrl},
      {"https_proxy", &environment.proxyUrl},
      {"HTTP_PROXY", &environment.proxyUrl},
      {"HTTPS_PROXY", &environment.proxyUrl},
      {"no_proxy", &noProxy},
      {"NO_PROXY", &noProxy},
  }};
  std::string out;
  for (const auto& [name, value] : variables) {
    if (format == EnvFormat::Shell) {
      // Single quotes: nothing inside is special to the shell ("[::1]" would be a glob).
      out += "export ";
      out += name;
      out += "='";
      for (const char c : *value) {
        if (c == '\'') {
          out += "'\\''";
        } else {
          out += c;
        }
      }
      out += "'\n";
    } else {
      out += name;
      out += '=';
      out += *value;
      out += '\n';
    }
  }
  return out;
}

}  // namespace fwgate::client
