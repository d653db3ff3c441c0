// The HTTP proxy suite of the report: fwgate's Web Proxy against squid and tinyproxy (and its own
// SOCKS relay for bulk), with the targets of issue 13 checked below the table.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "report.hpp"

namespace fwgate::bench {

namespace {

using namespace report;
using P = json::json_pointer;

const std::string kSocks = "fwgate-socks";  // the same fwgate, its SOCKS listener: bulk only

Extract requestsOnly(Extract extract) {
  return except({kSocks}, "—", std::move(extract));
}

std::vector<Row> webRows(const Dataset& data) {
  std::vector<Row> rows;
  auto perThousand = [](const char* field) {
    return [field](const json& r) -> std::optional<double> {
      auto v = number(r, P(field));
      if (!v) return std::nullopt;
      return *v * 1000;
    };
  };
  for (const auto& [kase, label] : std::vector<std::pair<std::string, std::string>>{
           {"ka64", "keep-alive, 64 concurrent"},
           {"ka1", "keep-alive, 1 at a time"},
           {"nc64", "new connection each, 64 concurrent"},
           {"nc1", "new connection each, 1 at a time"}}) {
    rows.push_back({"GET/s, " + label + " ↑", 0, true, requestsOnly(field(kase, [](const json& r) {
                      return number(r, P("/requests_per_s"));
                    }))});
    rows.push_back(
        {"GET p50 latency, " + label + " (µs) ↓", 0, true,
         requestsOnly(field(kase, [](const json& r) { return number(r, P("/latency_us/p50")); }))});
    rows.push_back(
        {"GET p99 latency, " + label + " (µs) ↓", 0, true,
         requestsOnly(field(kase, [](const json& r) { return number(r, P("/latency_us/p99")); }))});
  }
  rows.push_back({"Client connections per 1,000 GETs, keep-alive 64 ↓", 0, false,
                  requestsOnly(field("ka64", perThousand("/connections_per_request")))});
  rows.push_back(
      {"Requests sent again (kept connection found closed), keep-alive 64, per 1,000 GETs", 0,
       false, requestsOnly(field("ka64", [](const json& r) -> std::optional<double> {
         auto retries = number(r, P("/retries_in_window"));
         auto n = number(r, P("/requests"));
         if (!retries || !n || *n == 0) return std::nullopt;
         return *retries / *n * 1000;
       }))});
  rows.push_back({"Origin connections per 1,000 GETs, keep-alive 64 ↓", 0, false,
                  requestsOnly(field("ka64", perThousand("/origin_connections_per_request")))});
  rows.push_back({"Origin connections per 1,000 GETs, new connection each, 64 ↓", 0, false,
                  requestsOnly(field("nc64", perThousand("/origin_connections_per_request")))});
  rows.push_back({"Proxy CPU s per 1,000 GETs, keep-alive (64 + 1) ↓", 3, true,
                  requestsOnly(cpuPer({"ka64", "ka1"}, "requests", 1000))});
  rows.push_back({"Proxy CPU s per 1,000 GETs, new connection each (64 + 1) ↓", 3, true,
                  requestsOnly(cpuPer({"nc64", "nc1"}, "requests", 1000))});
  rows.push_back({"GET errors (sum over rounds)", 0, false,
                  requestsOnly(errorsOf({"ka64", "ka1", "nc64", "nc1"}))});
  rows.push_back({"CONNECT bulk, 1 stream (GB/s) ↑", 2, true,
                  field("bulk1", [](const json& r) { return number(r, P("/gbytes_per_s")); })});
  rows.push_back({"CONNECT bulk, 8 streams (GB/s) ↑", 2, true,
                  field("bulk8", [](const json& r) { return number(r, P("/gbytes_per_s")); })});
  rows.push_back({"Proxy CPU s per GB relayed (bulk 1 + 8) ↓", 3, true,
                  cpuPer({"bulk1", "bulk8"}, "bytes", 1e9)});
  rows.push_back({"Bulk errors (sum over rounds)", 0, false, errorsOf({"bulk1", "bulk8"})});
  for (int n : data.idleCounts) {
    rows.push_back({fmt::format("RSS per idle keep-alive client conn @ {} (KiB) ↓", n), 1, true,
                    requestsOnly(idleMemory(n, "rss_kb_per_conn"))});
    rows.push_back({fmt::format("PSS per idle keep-alive client conn @ {} (KiB) ↓", n), 1, true,
                    requestsOnly(idleMemory(n, "pss_kb_per_conn"))});
  }
  if (!data.idleCounts.empty()) {
    int n = data.idleCounts.back();
    rows.push_back({fmt::format("Seconds to open {} idle keep-alive conns ↓", n), 1, true,
                    requestsOnly(openSeconds(n))});
    rows.push_back(
        {fmt::format("Proxy processes / threads @ {}", n), 0, false, requestsOnly(processesAt(n))});
  }
  rows.push_back({"Load side CPU, busiest run (% of its one core)", 0, false, loadSideBusiest()});
  int proxyCpu = std::atoi(data.meta.value("proxy_cpu", "0").c_str());
  int loadCpu = std::atoi(data.meta.value("load_cpu", "1").c_str());
  rows.push_back({fmt::format("CPU {} (proxy) busy with other processes, worst run", proxyCpu), 0,
                  false, othersOnCpu(proxyCpu, {"cpu_s"})});
  rows.push_back({fmt::format("CPU {} (load) busy with other processes, worst run", loadCpu), 0,
                  false, othersOnCpu(loadCpu, {"load_cpu_s", "far_cpu_s"})});
  return rows;
}

// The median of one row for one target; -1 when it has no numbers (all metrics here are >= 0).
double medianOf(const Dataset& data, const Row& row, const std::string& target) {
  Cell cell = cellOf(row, data, target);
  if (!cell.text.empty() || cell.values.empty()) return -1;
  return median(cell.values);
}

Row rowNamed(const Dataset& data, const std::string& prefix) {
  for (auto& row : webRows(data)) {
    if (row.label.rfind(prefix, 0) == 0) return row;
  }
  return Row{};
}

bool present(const Dataset& data, const std::string& target) {
  return std::find(data.targets.begin(), data.targets.end(), target) != data.targets.end() &&
         !data.skipped.count(target);
}

// One line per target of issue 13, from the medians.
std::string targets(const Dataset& data) {
  std::string md = "\nTargets (issue 13), from the medians above:\n";
  auto verdict = [](bool met) { return met ? "**met**" : "**not met**"; };
  Row rps = rowNamed(data, "GET/s, keep-alive, 64");
  double fw = present(data, "fwgate") ? medianOf(data, rps, "fwgate") : -1;
  for (const char* peer : {"squid", "tinyproxy"}) {
    double other = present(data, peer) ? medianOf(data, rps, peer) : -1;
    if (fw >= 0 && other > 0) {
      double ratio = fw / other;
      md += fmt::format(
          "- GET/s at concurrency 64, keep-alive: fwgate {:.0f} ÷ {} {:.0f} = ×{:.2f} (target ≥ "
          "×2): {}\n",
          fw, peer, other, ratio, verdict(ratio >= 2));
    } else {
      md += fmt::format("- GET/s at concurrency 64 against {}: no data\n", peer);
    }
  }
  for (const char* label : {"CONNECT bulk, 1 stream", "CONNECT bulk, 8 streams"}) {
    Row row = rowNamed(data, label);
    double web = present(data, "fwgate") ? medianOf(data, row, "fwgate") : -1;
    double socks = present(data, kSocks) ? medianOf(data, row, kSocks) : -1;
    if (web >= 0 && socks > 0) {
      double ratio = web / socks;
      md += fmt::format(
          "- {}: fwgate CONNECT {:.2f} GB/s ÷ fwgate SOCKS {:.2f} GB/s = ×{:.2f} (target ≥ "
          "×0.90): {}\n",
          label, web, socks, ratio, verdict(ratio >= 0.90));
    } else {
      md += fmt::format("- {} against fwgate's SOCKS relay: no data\n", label);
    }
  }
  for (int n : data.idleCounts) {
    Row row = rowNamed(data, fmt::format("RSS per idle keep-alive client conn @ {}", n));
    Cell cell = present(data, "fwgate") ? cellOf(row, data, "fwgate") : Cell{};
    if (cell.text.empty() && !cell.values.empty()) {
      double kib = median(cell.values);
      md += fmt::format(
          "- RSS per idle keep-alive client connection @ {}: fwgate {:.1f} KiB (target ≤ 8 "
          "KiB): {}\n",
          n, kib, verdict(kib <= 8));
    } else {
      md += fmt::format("- RSS per idle keep-alive client connection @ {}: {}\n", n,
                        cell.text.empty() ? "no data" : cell.text);
    }
  }
  return md;
}

}  // namespace

report::Suite webSuite() {
  Suite suite;
  suite.title = "fwgate benchmark: the Web Proxy (HTTP/1.1 and CONNECT) on loopback, one run";
  suite.allTargets = {"direct", "fwgate", kSocks, "squid", "tinyproxy"};
  suite.defaultTargets = "direct,fwgate,fwgate-socks,squid,tinyproxy";
  suite.subject = "fwgate";
  suite.peers = {"squid", "tinyproxy", kSocks, "direct"};
  suite.rows = webRows;
  suite.epilogue = targets;
  return suite;
}

}  // namespace fwgate::bench
