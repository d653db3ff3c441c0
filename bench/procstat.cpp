#include "procstat.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fwgate::bench {

namespace {

struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::uint64_t ticks = 0;
  int threads = 0;
};

// Fields after the ")" that closes comm: state is field 3, so index i here is field i + 3.
bool readStat(pid_t pid, ProcStat& out) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream fields(line.substr(close + 2));
  std::vector<std::string> f;
  std::string token;
  for (int i = 0; i < 20 && fields >> token; ++i) f.push_back(token);
  if (f.size() < 18) return false;
  out.pid = pid;
  out.ppid = static_cast<pid_t>(std::strtol(f[1].c_str(), nullptr, 10));
  for (int field = 14; field <= 17; ++field) {  // utime stime cutime cstime
    out.ticks += std::strtoull(f[static_cast<std::size_t>(field - 3)].c_str(), nullptr, 10);
  }
  out.threads = static_cast<int>(std::strtol(f[17].c_str(), nullptr, 10));  // field 20
  return true;
}

// The value in kB of a "Key:   123 kB" line, 0 if absent.
std::uint64_t readKbField(const char* path, const char* key) {
  std::ifstream in(path);
  std::string line;
  std::size_t keyLen = std::strlen(key);
  for (int guard = 0; guard < 200 && std::getline(in, line); ++guard) {
    if (line.compare(0, keyLen, key) == 0) {
      return std::strtoull(line.c_str() + keyLen, nullptr, 10);
    }
  }
  return 0;
}

std::vector<ProcStat> allProcesses() {
  std::vector<ProcStat> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    ProcStat stat;
    if (readStat(static_cast<pid_t>(pid), stat)) out.push_back(stat);
  }
  ::closedir(dir);
  return out;
}

}  // namespace

TreeSample sampleProcessTree(pid_t root, bool withPss) {
  TreeSample sample;
  auto procs = allProcesses();
  std::multimap<pid_t, const ProcStat*> children;
  const ProcStat* rootStat = nullptr;
  for (const auto& p : procs) {
    children.emplace(p.ppid, &p);
    if (p.pid == root) rootStat = &p;
  }
  if (rootStat == nullptr) return sample;
  sample.found = true;
  std::vector<const ProcStat*> todo{rootStat};
  for (std::size_t i = 0; i < todo.size() && i < procs.size(); ++i) {
    const ProcStat* p = todo[i];
    auto [first, last] = children.equal_range(p->pid);
    for (auto it = first; it != last; ++it) todo.push_back(it->second);
    sample.processes += 1;
    sample.threads += p->threads;
    sample.cpuTicks += p->ticks;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(p->pid));
    sample.rssKb += readKbField(path, "VmRSS:");
    if (withPss) {
      std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", static_cast<int>(p->pid));
      sample.pssKb += readKbField(path, "Pss:");
    }
  }
  sample.cpuSeconds =
      static_cast<double>(sample.cpuTicks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  return sample;
}

nlohmann::json toJson(const TreeSample& s) {
  return {{"found", s.found},      {"processes", s.processes}, {"threads", s.threads},
          {"cpu_s", s.cpuSeconds}, {"rss_kb", s.rssKb},        {"pss_kb", s.pssKb}};
}

namespace {
double selfCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}
}  // namespace

CpuTicks sampleCpus() {
  CpuTicks out;
  std::ifstream in("/proc/stat");
  std::string line;
  for (int guard = 0; guard < 4096 && std::getline(in, line); ++guard) {
    // "cpuN user nice system idle iowait irq softirq steal ..."; the first line ("cpu ") is the
    // sum.
    if (line.compare(0, 3, "cpu") != 0 || line.size() < 4 || line[3] == ' ') continue;
    std::istringstream fields(line.substr(3));
    std::size_t cpu = 0;
    fields >> cpu;
    std::uint64_t value = 0, total = 0, idle = 0;
    for (int i = 0; i < 8 && fields >> value; ++i) {
      total += value;
      if (i == 3 || i == 4) idle += value;
    }
    if (cpu >= 4096) continue;
    if (out.total.size() <= cpu) {
      out.total.resize(cpu + 1);
      out.busy.resize(cpu + 1);
    }
    out.total[cpu] = total;
    out.busy[cpu] = total - idle;
  }
  return out;
}

void WindowCpu::start() {
  cpus0_ = sampleCpus();
  if (proxy_) proxy0_ = sampleProcessTree(*proxy_, false);
  if (farEnd_) far0_ = sampleProcessTree(*farEnd_, false);
  self0_ = selfCpuSeconds();
}

void WindowCpu::stop() {
  self1_ = selfCpuSeconds();
  if (proxy_) proxy1_ = sampleProcessTree(*proxy_, false);
  if (farEnd_) far1_ = sampleProcessTree(*farEnd_, false);
  cpus1_ = sampleCpus();
}

void WindowCpu::addTo(nlohmann::json& out, double windowSeconds) const {
  if (proxy_) {
    out["watched_pid"] = *proxy_;
    out["watched_found"] = proxy0_.found && proxy1_.found;
    out["cpu_s"] = proxy1_.cpuSeconds - proxy0_.cpuSeconds;
  }
  double load = self1_ - self0_;
  out["load_cpu_s"] = load;
  if (farEnd_) {
    double far = far1_.cpuSeconds - far0_.cpuSeconds;
    out["far_cpu_s"] = far;
    load += far;
  }
  if (windowSeconds > 0) out["load_side_busy"] = load / windowSeconds;
  nlohmann::json busy = nlohmann::json::array();
  for (std::size_t cpu = 0; cpu < cpus1_.total.size() && cpu < cpus0_.total.size(); ++cpu) {
    auto total = cpus1_.total[cpu] - cpus0_.total[cpu];
    auto used = cpus1_.busy[cpu] - cpus0_.busy[cpu];
    busy.push_back(total > 0 ? static_cast<double>(used) / static_cast<double>(total) : 0.0);
  }
  out["cpus_busy"] = busy;
}

}  // namespace fwgate::bench
