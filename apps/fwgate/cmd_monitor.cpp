// `fwgate monitor`: frames from an interface or a capture file as seed-style lines, the
// protocol definitions (and packet filters) a captured program needs, and the gateway log's
// denied attempts with the definition that would allow each.
#include <fmt/format.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
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

constexpr int kMaxBufferMegabytes = 2047;    // libpcap takes the size as an int of bytes
constexpr std::size_t kMaxNameLength = 100;  // room for "-filter-NNN" within 128

monitor::Capture* volatile activeCapture = nullptr;
volatile std::sig_atomic_t stopRequested = 0;

void onSignal(int) {
  stopRequested = 1;
  if (monitor::Capture* c = activeCapture) c->stop();
}

// SIGINT, SIGTERM and (for --duration) SIGALRM end the capture; once it has ended they have
// their default effect again, so a second Ctrl-C during a long suggestion ends the program.
void installSignals(int durationSeconds) {
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() and a blocked write() return, and the loop stops
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGALRM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed pipe ends the output, not the summary
  if (durationSeconds > 0) alarm(static_cast<unsigned>(durationSeconds));
}

void restoreSignals() {
  alarm(0);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGALRM, SIG_DFL);
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
  // write(2) itself, not stdio: a signal that asks to stop ends a write blocked on a full pipe
  // (stdio would retry it), and then the rest of the buffer is dropped.
  void flush() {
    std::size_t done = 0;
    while (ok_ && done < buffer_.size()) {
      const ssize_t n = ::write(STDOUT_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        if (stopRequested != 0) break;
      } else {
        ok_ = false;  // EPIPE: the reader is gone
      }
    }
    buffer_.clear();
  }
  bool ok() const { return ok_; }

 private:
  std::string buffer_;
  bool ok_ = true;
};

bool loadDefinitions(const std::string& path, std::vector<policy::ProtocolDefinition>& definitions,
                     policy::PortRange& dynamic, std::vector<std::string>* filterNames = nullptr) {
  if (path.empty()) return true;
  const auto loaded = config::loadConfigFile(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) fmt::print(stderr, "{}: {}\n", path, e.toString());
    return false;
  }
  definitions = loaded.config->protocols;
  dynamic = loaded.config->bind.dynamicPorts;
  if (filterNames != nullptr) {
    for (const auto& f : loaded.config->packetFilters.filters) filterNames->push_back(f.name);
  }
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

// Standard output goes to a pipe or a terminal, which the reader may not drain fast enough.
bool stdoutIsSlow() {
  struct stat st {};
  return fstat(STDOUT_FILENO, &st) == 0 &&
         (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode));
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
    const int advice = std::min(kMaxBufferMegabytes, mb < 64 ? 64 : mb * 4);
    fmt::print(stderr,
               "fwgate monitor: LOST {} packets: the capture buffer ({} MB) filled faster than "
               "they were read{}. {} narrow the capture with --filter, or save with -w FILE and "
               "read the file later with -r.\n",
               s.dropped, mb, stdoutIsSlow() ? " (or the output was not read fast enough)" : "",
               advice > mb ? fmt::format("Raise it with --buffer-size {} (MB),", advice)
                           : std::string("The buffer is at its largest:"));
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
  if (!loadDefinitions(options.configPath, so.definitions, so.dynamicPorts, &so.filterNames)) {
    return 1;
  }
  if (!options.client.empty()) {
    so.client = policy::IpAddress::parse(options.client);
    if (!so.client) {
      fmt::print(stderr, "fwgate monitor: --client {}: not an IP address\n", options.client);
      return 1;
    }
  }
  if (!policy::isValidProtocolName(options.name) || options.name.size() > kMaxNameLength) {
    fmt::print(stderr,
               "fwgate monitor: --name {}: a definition name is letters, digits, '_', '.' and "
               "'-', at most {} characters\n",
               options.name, kMaxNameLength);
    return 2;
  }
  if (options.writeFile == "-") {
    fmt::print(stderr,
               "fwgate monitor: -w -: standard output carries the frame lines; give a "
               "file name\n");
    return 2;
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
  installSignals(live ? options.durationSeconds : 0);
  struct stat st {};
  const int watch = fstat(STDOUT_FILENO, &st) == 0 ? STDOUT_FILENO : -1;
  const std::string error = capture->run(
      [&](const monitor::CapturedFrame& f) {
        const auto frame = monitor::decode(linkType, f.bytes, f.wireLength);
        if (options.suggest) table.add(f.number, f.seconds, frame);
        if (!showFrames) return;
        monitor::appendFrameLine(out.buffer(), f.number, f.seconds, f.micros, frame);
        out.flushIfLarge();
        if (!out.ok() && !options.suggest) capture->stop();
      },
      [&] { out.flush(); }, options.count, options.durationSeconds, watch);
  activeCapture = nullptr;
  restoreSignals();
  out.flush();
  if (!error.empty()) {
    fmt::print(stderr, "fwgate monitor: {}: {} (after {} frames; what came before is shown)\n",
               live ? options.interface : options.file, error, capture->frames());
  }
  if (options.suggest) {
    const auto suggestion = monitor::suggest(table, so);
    out.buffer() = (showFrames ? "\n" : "") + suggestion.text;
    out.flush();
  }
  reportStats(*capture, options);
  return error.empty() ? 0 : 1;
}

}  // namespace fwgate::app
