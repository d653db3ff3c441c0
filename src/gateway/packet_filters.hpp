// The gateway's side of its packet filters (table inet fwgate): applying the configuration's
// ruleset at start and on reload, and admitting the ports the gateway itself opens while they are
// open (the dynamic sets: TCP for remoted listens and SOCKS BIND, UDP for published UDP
// associations), refreshed before the elements' timeouts run out.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"

namespace fwgate::filters {
class Nft;
}

namespace fwgate::gateway {

class PacketFilters;

// Admits one port while it lives.
class AdmittedPort {
 public:
  AdmittedPort() = default;
  AdmittedPort(PacketFilters* owner, std::uint16_t port, bool udp)
      : owner_(owner), port_(port), udp_(udp) {}
  ~AdmittedPort();
  AdmittedPort(AdmittedPort&& other) noexcept
      : owner_(other.owner_), port_(other.port_), udp_(other.udp_) {
    other.owner_ = nullptr;
  }
  AdmittedPort& operator=(AdmittedPort&&) = delete;
  AdmittedPort(const AdmittedPort&) = delete;

 private:
  PacketFilters* owner_ = nullptr;
  std::uint16_t port_ = 0;
  bool udp_ = false;
};

// No Asio object inside: it lives in the SharedState, which outlives every io_context and the
// sessions they destroy (whose AdmittedPorts come back here). The first event loop calls
// refresh() every refreshInterval(). Safe from any thread: one lock, held while nft runs (on a
// listen's opening or closing, never on the data path).
class PacketFilters {
 public:
  PacketFilters();
  ~PacketFilters();

  // Applies `config`'s [packet_filters] when enabled (replacing the table in one transaction,
  // then putting back the ports open now); when not enabled, leaves the kernel alone. Returns
  // "" or the error; `summary` gets the start-up line.
  std::string apply(const config::Config& config, std::string& summary);
  bool enabled() const {
    const std::lock_guard lock(mutex_);
    return enabled_;
  }

  // The port (TCP, or `udp`) is admitted from outside until the returned object is destroyed.
  // Does nothing (and costs nothing) when filtering is off.
  AdmittedPort admit(std::uint16_t port, bool udp = false);

  // Renews the open ports' elements before their timeout runs out.
  void refresh();
  std::chrono::seconds refreshInterval() const {
    const std::lock_guard lock(mutex_);
    return std::max(std::chrono::seconds(3), timeout_ / 3);
  }

 private:
  friend class AdmittedPort;
  void release(std::uint16_t port, bool udp);
  void run(const std::string& script, const char* what);

  mutable std::mutex mutex_;
  std::unique_ptr<filters::Nft> nft_;
  bool enabled_ = false;
  std::chrono::seconds timeout_{3600};
  std::map<std::pair<bool, std::uint16_t>, int> open_;  // (udp, port) -> how many hold it
};

}  // namespace fwgate::gateway
