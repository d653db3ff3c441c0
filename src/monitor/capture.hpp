// Frames from libpcap: a live interface or a capture file (pcap or pcapng). The one part of the
// monitor that does I/O; the frames go to a callback as bytes, for decode().
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

struct pcap;
struct pcap_dumper;

namespace fwgate::monitor {

struct CaptureOptions {
  std::string interface;    // live capture (-i); exclusive with `file`
  std::string file;         // capture file (-r); "-" is standard input
  std::string filter;       // BPF expression (tcpdump syntax), empty: every frame
  int bufferMegabytes = 0;  // kernel capture buffer; 0: libpcap's default (2 MB)
  int snapLength = 262144;
  bool promiscuous = false;
  std::string writeFile;  // -w: also save every frame that passes the filter (pcap)
};

struct CapturedFrame {
  std::uint64_t number = 0;  // 1-based, counting frames that passed the filter
  std::int64_t seconds = 0;
  std::uint32_t micros = 0;
  std::uint32_t wireLength = 0;
  std::span<const std::uint8_t> bytes;
};

// What the kernel reported at the end of a live capture (pcap_stats).
struct CaptureStats {
  bool available = false;  // files have none
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;  // by the kernel: the buffer was full
  std::uint64_t droppedByInterface = 0;
};

class Capture {
 public:
  // Opens and activates; throws std::runtime_error with libpcap's words on failure (no such
  // interface, no permission, bad filter, not a capture file).
  explicit Capture(const CaptureOptions& options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  int linkType() const { return linkType_; }
  bool live() const { return live_; }
  // Warnings libpcap gave at activation (e.g. promiscuous mode not supported).
  const std::string& warning() const { return warning_; }

  // Delivers frames until the end of the file, `count` frames (0: no limit), `seconds` of a
  // live capture (0: no limit), stop(), or an error on `watchFd` (the output; -1: none).
  // `idle` runs whenever a live capture has nothing pending (the caller flushes its output
  // there). Returns libpcap's words for a read or write error that ended it early, else "".
  std::string run(const std::function<void(const CapturedFrame&)>& onFrame,
                  const std::function<void()>& idle, std::uint64_t count, int seconds,
                  int watchFd = -1);

  // Ends run() soon; safe to call from a signal handler.
  void stop();

  CaptureStats stats() const;
  std::uint64_t frames() const { return frames_; }

 private:
  std::string finish(std::string error);

  struct Deleter {
    void operator()(pcap* p) const;
    void operator()(pcap_dumper* d) const;
  };
  std::unique_ptr<pcap, Deleter> handle_;
  std::unique_ptr<pcap_dumper, Deleter> dumper_;
  int linkType_ = 0;
  bool live_ = false;
  std::string warning_;
  std::uint64_t frames_ = 0;
  volatile std::sig_atomic_t stopped_ = 0;
};

}  // namespace fwgate::monitor
