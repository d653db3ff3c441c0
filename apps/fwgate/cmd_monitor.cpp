// `fwgate monitor`: frames from an interface or a capture file as seed-style lines, the
// protocol definitions (and packet filters) a captured program needs, and the gateway log's
// denied attempts with the definition that would allow each.
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "commands.hpp"
#include "config/config.hpp"
#include "monitor/capture.hpp"
#include "monitor/conversations.hpp"
#include "monitor/decode.hpp"
#include "monitor/frame_line.hpp"
#include "monitor/investigate.hpp"
#include "monitor/suggest.hpp"

namespace fwgate::app {
namespace {

monitor::Capture* volatile activeCapture = nullptr;

void onSignal(int) {
  if (monitor::Capture* c = activeCapture) c->stop();
}

void installSignals() {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns and the loop sees stop()
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed pipe ends the output, not the summary
}

std::vector<policy::IpAddress> localAddresses() {
  std::vector<policy::IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      std::array<std::uint8_t, 4> b{};
      std::memcpy(b.data(), &sin->sin_addr, 4);
      out.push_back(policy::IpAddress::fromV4(b));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      policy::IpAddress a;
      a.v6 = true;
      std::memcpy(a.bytes.data(), &sin6->sin6_addr, 16);
      out.push_back(a);
    }
  }
  freeifaddrs(list);
  return out;
}

// Standard output, written in large pieces; a closed pipe ends writing quietly.
class Output {
 public:
  std::string& buffer() { return buffer_; }
  void flushIfLarge() {
    if (buffer_.size() >= (1U << 18)) flush();
  }
  void flush() {
    if (!buffer_.empty() && ok_) {
      ok_ = std::fwrite(buffer_.data(), 1, buffer_.size(), stdout) == buffer_.size() &&
            std::fflush(stdout) == 0;
    }
    buffer_.clear();
  }
  bool ok() const { return ok_; }

 private:
  std::string buffer_;
  bool ok_ = true;
};

bool loadDefinitions(const std::string& path, std::vector<policy::ProtocolDefinition>& definitions,
                     policy::PortRange& dynamic) {
  if (path.empty()) return true;
  const auto loaded = config::loadConfigFile(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}: {}\n", path, e.toString());
    return false;
  }
  definitions = loaded.config->protocols;
  dynamic = loaded.config->bind.dynamicPorts;
  return true;
}

int investigateLog(const MonitorOptions& options) {
  monitor::InvestigateOptions io;
  if (!loadDefinitions(options.configPath, io.definitions, io.dynamicPorts)) return 1;
  if (!options.client.empty()) {
    io.client = policy::IpAddress::parse(options.client);
    if (!io.client) {
      fmt::print(stderr, "fwgate monitor: --client {}: not an IP address\n", options.client);
      return 1;
    }
  }
  io.name = options.name;
  monitor::Investigation result;
  if (options.logPath == "-") {
    result = monitor::investigate(std::cin, io);
  } else {
    std::ifstream in(options.logPath);
    if (!in) {
      fmt::print(stderr, "fwgate monitor: cannot read {}: {}\n", options.logPath,
                 std::strerror(errno));
      return 1;
    }
    result = monitor::investigate(in, io);
  }
  const std::string text = monitor::render(result);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

void reportStats(const monitor::Capture& capture, const MonitorOptions& options) {
  const auto s = capture.stats();
  if (!capture.live()) {
    fmt::print(stderr, "fwgate monitor: {} frames read from {}\n", capture.frames(), options.file);
    return;
  }
  if (!s.available) {
    fmt::print(stderr, "fwgate monitor: {} frames from {}\n", capture.frames(), options.interface);
    return;
  }
  fmt::print(stderr,
             "fwgate monitor: {} frames shown from {}; the kernel received {} and dropped {} "
             "(pcap_stats), the interface dropped {}\n",
             capture.frames(), options.interface, s.received, s.dropped, s.droppedByInterface);
  if (s.dropped > 0) {
    const int mb = options.bufferMegabytes > 0 ? options.bufferMegabytes : 2;
    fmt::print(stderr,
               "fwgate monitor: LOST {} packets: the capture buffer ({} MB) filled faster than "
               "they were read. Raise it with --buffer-size {} (MB), narrow the capture with "
               "--filter, or save with -w FILE and read the file later with -r.\n",
               s.dropped, mb, mb < 64 ? 64 : mb * 4);
  }
}

}  // namespace

int runMonitor(const MonitorOptions& options) {
  if (!options.logPath.empty()) return investigateLog(options);
  if (options.interface.empty() == options.file.empty()) {
    fmt::print(stderr, "fwgate monitor: give one of -i INTERFACE, -r FILE or --log FILE\n");
    return 2;
  }
  monitor::SuggestOptions so;
  if (!loadDefinitions(options.configPath, so.definitions, so.dynamicPorts)) return 1;
  if (!options.client.empty()) {
    so.client = policy::IpAddress::parse(options.client);
    if (!so.client) {
      fmt::print(stderr, "fwgate monitor: --client {}: not an IP address\n", options.client);
      return 1;
    }
  }
  so.name = options.name;
  so.gatewayHost = options.gatewayHost;
  so.localAddresses = localAddresses();
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) {
    unsigned first = 0, last = 0;
    if (range >> first >> last && first >= 1 && first <= last && last <= 65535) {
      so.ephemeralPorts = {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
    }
  }

  monitor::CaptureOptions co;
  co.interface = options.interface;
  co.file = options.file;
  co.filter = options.filter;
  co.bufferMegabytes = options.bufferMegabytes;
  co.promiscuous = options.promiscuous;
  co.writeFile = options.writeFile;
  std::unique_ptr<monitor::Capture> capture;
  try {
    capture = std::make_unique<monitor::Capture>(co);
  } catch (const std::exception& e) {
    fmt::print(stderr, "fwgate monitor: {}\n", e.what());
    return 1;
  }
  if (!capture->warning().empty()) fmt::print(stderr, "fwgate monitor: {}\n", capture->warning());
  const int linkType = capture->linkType();
  if (!monitor::supportedLinkType(linkType)) {
    fmt::print(stderr,
               "fwgate monitor: link type {} is not one fwgate decodes (Ethernet, Linux cooked "
               "capture, raw IP, BSD loopback)\n",
               linkType);
    return 1;
  }
  if (capture->live()) {
    fmt::print(stderr, "fwgate monitor: capturing on {}{}; Ctrl-C ends it\n", options.interface,
               options.filter.empty() ? "" : fmt::format(" ({})", options.filter));
  }

  Output out;
  monitor::ConversationTable table;
  const bool showFrames = !options.suggest || options.frames;
  const bool live = capture->live();
  activeCapture = capture.get();
  installSignals();
  try {
    capture->run(
        [&](const monitor::CapturedFrame& f) {
          const auto frame = monitor::decode(linkType, f.bytes, f.wireLength);
          if (options.suggest) table.add(f.number, f.seconds, frame);
          if (!showFrames) return;
          monitor::appendFrameLine(out.buffer(), f.number, f.seconds, f.micros, frame);
          if (live) {
            out.flushIfLarge();
          } else if (out.buffer().size() >= (1U << 18)) {
            out.flush();
          }
          if (!out.ok() && !options.suggest) capture->stop();
        },
        [&] { out.flush(); }, options.count, options.durationSeconds);
  } catch (const std::exception& e) {
    activeCapture = nullptr;
    out.flush();
    fmt::print(stderr, "fwgate monitor: {}\n", e.what());
    return 1;
  }
  activeCapture = nullptr;
  out.flush();
  if (options.suggest) {
    const auto suggestion = monitor::suggest(table, so);
    out.buffer() = (showFrames ? "\n" : "") + suggestion.text;
    out.flush();
  }
  reportStats(*capture, options);
  return 0;
}

}  // namespace fwgate::app
