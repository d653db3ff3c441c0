// CPU time and memory of a process and all its descendants, read from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace fwgate::bench {

struct TreeSample {
  bool found = false;          // the root process existed
  int processes = 0;           // root + live descendants
  int threads = 0;             // sum of num_threads
  std::uint64_t cpuTicks = 0;  // utime+stime+cutime+cstime summed (dead reaped children included)
  double cpuSeconds = 0;
  std::uint64_t rssKb = 0;  // sum of VmRSS (shared pages counted once per process)
  std::uint64_t pssKb = 0;  // sum of Pss from smaps_rollup (shared pages divided); 0 if not asked
};

TreeSample sampleProcessTree(pid_t root, bool withPss);

nlohmann::json toJson(const TreeSample& sample);

// Busy and total clock ticks of each CPU since boot, from /proc/stat (busy: all but idle and
// iowait); index = CPU number.
struct CpuTicks {
  std::vector<std::uint64_t> busy, total;
};
CpuTicks sampleCpus();

// CPU used during a measured window by the proxy (with its children), by this load generator,
// and by the far-end server, so a report can tell whether the load side was the bottleneck; and
// how busy each CPU of the machine was, so that it can tell whether something else ran.
class WindowCpu {
 public:
  WindowCpu(std::optional<pid_t> proxy, std::optional<pid_t> farEnd)
      : proxy_(proxy), farEnd_(farEnd) {}
  void start();
  void stop();
  // Adds cpu_s (proxy), load_cpu_s, far_cpu_s, load_side_busy (share of one core) and
  // cpus_busy (share of each CPU, whoever used it) to out.
  void addTo(nlohmann::json& out, double windowSeconds) const;

 private:
  std::optional<pid_t> proxy_, farEnd_;
  TreeSample proxy0_, proxy1_, far0_, far1_;
  CpuTicks cpus0_, cpus1_;
  double self0_ = 0, self1_ = 0;
};

}  // namespace fwgate::bench
