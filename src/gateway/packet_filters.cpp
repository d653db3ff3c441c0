#include "gateway/packet_filters.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "filters/nft.hpp"
#include "filters/ruleset.hpp"

namespace fwgate::gateway {

AdmittedPort::~AdmittedPort() {
  if (owner_ != nullptr) owner_->release(port_, udp_);
}

PacketFilters::PacketFilters() = default;

PacketFilters::~PacketFilters() = default;

std::string PacketFilters::apply(const config::Config& config, std::string& summary) {
  const std::lock_guard lock(mutex_);
  const auto& settings = config.packetFilters;
  if (!settings.enabled) {
    if (enabled_) {
      // Turned off by a reload: the table goes, and with it every filter.
      run(filters::flushScript(), "flush");
      summary = "packet filters: disabled; table inet fwgate removed";
    } else {
      summary = "packet filters: not enabled (packet_filters.enabled = false)";
    }
    enabled_ = false;
    return {};
  }
  if (!nft_) {
    try {
      nft_ = std::make_unique<filters::Nft>();
    } catch (const std::exception& e) {
      return e.what();
    }
  }
  filters::RenderOptions options;
  options.gatewayUid = ::geteuid();
  if (!config.runAsUser.empty()) {
    if (const passwd* pw = ::getpwnam(config.runAsUser.c_str())) options.gatewayUid = pw->pw_uid;
  }
  timeout_ = std::chrono::duration_cast<std::chrono::seconds>(settings.dynamicTimeout);
  std::string script = filters::renderRuleset(settings, options);
  // The new table starts with an empty set: the ports open now go back in, in the same
  // transaction.
  for (const auto& [key, holders] : open_) {
    script += filters::addDynamicPortScript(key.second, timeout_, key.first);
  }
  if (auto error = nft_->run(script); !error.empty()) return error;
  enabled_ = true;
  std::string interfaces;
  for (const auto& i : settings.interfaces) interfaces += (interfaces.empty() ? "" : ", ") + i;
  summary = fmt::format(
      "packet filters: applied table inet fwgate ({} filters; external interfaces {}; "
      "outbound {}; dynamic ports for {}s)",
      settings.filters.size(), interfaces, settings.outboundDrop ? "filtered" : "not filtered",
      timeout_.count());
  return {};
}

AdmittedPort PacketFilters::admit(std::uint16_t port, bool udp) {
  const std::lock_guard lock(mutex_);
  if (!enabled_) return {};
  if (open_[{udp, port}]++ == 0) {
    run(filters::addDynamicPortScript(port, timeout_, udp), "admit port");
  }
  return AdmittedPort(this, port, udp);
}

void PacketFilters::release(std::uint16_t port, bool udp) {
  const std::lock_guard lock(mutex_);
  const auto it = open_.find({udp, port});
  if (it == open_.end() || --it->second > 0) return;
  open_.erase(it);
  if (enabled_) run(filters::removeDynamicPortScript(port, udp), "close port");
}

void PacketFilters::refresh() {
  const std::lock_guard lock(mutex_);
  if (!enabled_ || open_.empty()) return;
  for (const bool udp : {false, true}) {
    std::vector<std::uint16_t> ports;
    for (const auto& [key, holders] : open_) {
      if (key.first == udp) ports.push_back(key.second);
    }
    if (!ports.empty()) run(filters::refreshDynamicPortsScript(ports, timeout_, udp), "refresh");
  }
}

void PacketFilters::run(const std::string& script, const char* what) {
  if (!nft_) return;
  if (const auto error = nft_->run(script); !error.empty()) {
    spdlog::warn("packet filters: {}: {}", what, error);
  }
}

}  // namespace fwgate::gateway
