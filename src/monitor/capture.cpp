#include "monitor/capture.hpp"

#include <fmt/format.h>
#include <pcap/pcap.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <stdexcept>

namespace fwgate::monitor {
namespace {

std::runtime_error failure(pcap_t* p, const std::string& what) {
  return std::runtime_error(fmt::format("{}: {}", what, pcap_geterr(p)));
}

struct Delivery {
  const std::function<void(const CapturedFrame&)>* onFrame;
  pcap_dumper_t* dumper;
  std::uint64_t* frames;
};

void deliver(u_char* user, const pcap_pkthdr* header, const u_char* bytes) {
  auto* d = reinterpret_cast<Delivery*>(user);
  if (d->dumper != nullptr) pcap_dump(reinterpret_cast<u_char*>(d->dumper), header, bytes);
  CapturedFrame frame;
  frame.number = ++*d->frames;
  frame.seconds = header->ts.tv_sec;
  frame.micros = static_cast<std::uint32_t>(header->ts.tv_usec);
  frame.wireLength = header->len;
  frame.bytes = {bytes, header->caplen};
  (*d->onFrame)(frame);
}

}  // namespace

void Capture::Deleter::operator()(pcap* p) const {
  pcap_close(p);
}
void Capture::Deleter::operator()(pcap_dumper* d) const {
  pcap_dump_close(d);
}

Capture::Capture(const CaptureOptions& options) {
  char error[PCAP_ERRBUF_SIZE] = {};
  if (!options.file.empty()) {
    handle_.reset(pcap_open_offline_with_tstamp_precision(options.file.c_str(),
                                                          PCAP_TSTAMP_PRECISION_MICRO, error));
    if (!handle_) throw std::runtime_error(fmt::format("{}: {}", options.file, error));
  } else {
    live_ = true;
    handle_.reset(pcap_create(options.interface.c_str(), error));
    if (!handle_) throw std::runtime_error(fmt::format("{}: {}", options.interface, error));
    pcap_t* p = handle_.get();
    pcap_set_snaplen(p, options.snapLength);
    pcap_set_promisc(p, options.promiscuous ? 1 : 0);
    // Not immediate mode: that makes libpcap use TPACKET_V2, whose ring slots are each as large
    // as the biggest frame, so the default 2 MB holds a few dozen frames and a burst is lost.
    // TPACKET_V3 packs frames into blocks, handed over when full or after this timeout.
    pcap_set_timeout(p, 100);
    if (options.bufferMegabytes > 0) {
      const std::int64_t bytes = std::int64_t{options.bufferMegabytes} << 20;
      pcap_set_buffer_size(p, static_cast<int>(std::min<std::int64_t>(bytes, INT_MAX)));
    }
    const int rc = pcap_activate(p);
    if (rc < 0) {
      const std::string detail = rc == PCAP_ERROR ? pcap_geterr(p) : pcap_statustostr(rc);
      throw std::runtime_error(fmt::format(
          "{}: {}{}", options.interface, detail,
          rc == PCAP_ERROR_PERM_DENIED ? " (capturing needs root or CAP_NET_RAW)" : ""));
    }
    if (rc > 0) warning_ = fmt::format("{}: {}", options.interface, pcap_statustostr(rc));
  }
  pcap_t* p = handle_.get();
  linkType_ = pcap_datalink(p);
  if (!options.filter.empty()) {
    bpf_program program{};
    if (pcap_compile(p, &program, options.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      throw failure(p, fmt::format("filter \"{}\"", options.filter));
    }
    const int rc = pcap_setfilter(p, &program);
    pcap_freecode(&program);
    if (rc != 0) throw failure(p, fmt::format("filter \"{}\"", options.filter));
  }
  if (!options.writeFile.empty()) {
    dumper_.reset(pcap_dump_open(p, options.writeFile.c_str()));
    if (!dumper_) throw failure(p, "write " + options.writeFile);
  }
}

Capture::~Capture() = default;

void Capture::stop() {
  stopped_ = 1;
  if (handle_) pcap_breakloop(handle_.get());
}

std::string Capture::run(const std::function<void(const CapturedFrame&)>& onFrame,
                         const std::function<void()>& idle, std::uint64_t count, int seconds,
                         int watchFd) {
  pcap_t* p = handle_.get();
  Delivery delivery{&onFrame, dumper_.get(), &frames_};
  auto* user = reinterpret_cast<u_char*>(&delivery);
  const auto remaining = [&]() -> int {
    if (count == 0) return -1;
    const auto left = count - frames_;
    return left > 1'000'000 ? 1'000'000 : static_cast<int>(left);
  };
  if (!live_) {
    while (stopped_ == 0 && (count == 0 || frames_ < count)) {
      const int n = pcap_dispatch(p, remaining(), deliver, user);
      // A damaged record (a capture cut short when tcpdump was killed): what came before it
      // stands; the caller reports the rest.
      if (n == PCAP_ERROR) return finish(pcap_geterr(p));
      if (n <= 0) break;  // end of file, or stop()
    }
    return finish({});
  }
  char nonblockError[PCAP_ERRBUF_SIZE] = {};
  if (pcap_setnonblock(p, 1, nonblockError) != 0) return finish(nonblockError);
  const int fd = pcap_get_selectable_fd(p);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string error;
  while (stopped_ == 0 && (count == 0 || frames_ < count)) {
    if (seconds > 0 && std::chrono::steady_clock::now() >= deadline) break;
    const int n = pcap_dispatch(p, remaining(), deliver, user);
    if (n == PCAP_ERROR) {
      error = pcap_geterr(p);
      break;
    }
    if (n == PCAP_ERROR_BREAK) break;
    if (n > 0) continue;
    if (dumper_ && pcap_dump_flush(dumper_.get()) != 0) {
      error = "writing the capture file failed";
      break;
    }
    idle();
    // The reader of our output went away (a closed pipe reports POLLERR): nobody is listening.
    pollfd pfds[2] = {{fd, POLLIN, 0}, {watchFd, 0, 0}};
    poll(pfds, watchFd >= 0 ? 2 : 1, 100);  // a signal (stop) interrupts it
    if (watchFd >= 0 && (pfds[1].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) break;
  }
  idle();
  return finish(error);
}

std::string Capture::finish(std::string error) {
  if (dumper_ && pcap_dump_flush(dumper_.get()) != 0 && error.empty()) {
    error = "writing the capture file failed";
  }
  return error;
}

CaptureStats Capture::stats() const {
  CaptureStats out;
  if (!live_) return out;
  pcap_stat s{};
  if (pcap_stats(handle_.get(), &s) != 0) return out;
  out.available = true;
  out.received = s.ps_recv;
  out.dropped = s.ps_drop;
  out.droppedByInterface = s.ps_ifdrop;
  return out;
}

}  // namespace fwgate::monitor
