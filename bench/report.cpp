#include "report.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "report_table.hpp"

namespace fwgate::bench {

namespace {

using namespace report;

std::vector<Row> socksRows(const Dataset& data) {
  using P = json::json_pointer;
  std::vector<Row> rows;
  rows.push_back({"Bulk, 1 stream (GB/s) ↑", 2, true,
                  field("bulk1", [](const json& r) { return number(r, P("/gbytes_per_s")); })});
  rows.push_back({"Bulk, 8 streams (GB/s) ↑", 2, true,
                  field("bulk8", [](const json& r) { return number(r, P("/gbytes_per_s")); })});
  rows.push_back({"Proxy CPU s per GB relayed (bulk runs) ↓", 3, true,
                  cpuPer({"bulk1", "bulk8"}, "bytes", 1e9)});
  for (const auto& [kase, label] : std::vector<std::pair<std::string, std::string>>{
           {"sess64", "64 concurrent"}, {"sess1", "1 at a time"}}) {
    rows.push_back({"Sessions/s, " + label + " ↑", 0, true,
                    field(kase, [](const json& r) { return number(r, P("/sessions_per_s")); })});
    rows.push_back({"Session p50 latency, " + label + " (µs) ↓", 0, true,
                    field(kase, [](const json& r) { return number(r, P("/latency_us/p50")); })});
    rows.push_back({"Session p99 latency, " + label + " (µs) ↓", 0, true,
                    field(kase, [](const json& r) { return number(r, P("/latency_us/p99")); })});
  }
  rows.push_back(
      {"Proxy CPU s per 1,000 sessions ↓", 3, true, cpuPer({"sess64", "sess1"}, "sessions", 1000)});
  rows.push_back({"Session errors (sum over rounds)", 0, false, errorsOf({"sess64", "sess1"})});
  for (int n : data.idleCounts) {
    rows.push_back({fmt::format("RSS per idle relayed conn @ {} (KiB) ↓", n), 1, true,
                    idleMemory(n, "rss_kb_per_conn")});
  }
  for (int n : data.idleCounts) {
    rows.push_back({fmt::format("PSS per idle relayed conn @ {} (KiB) ↓", n), 1, true,
                    idleMemory(n, "pss_kb_per_conn")});
  }
  if (!data.idleCounts.empty()) {
    int n = data.idleCounts.back();
    rows.push_back({fmt::format("Seconds to open {} idle conns ↓", n), 1, true, openSeconds(n)});
    rows.push_back({fmt::format("Proxy processes / threads @ {}", n), 0, false, processesAt(n)});
  }
  rows.push_back({"Load side CPU, busiest run (% of its one core)", 0, false, loadSideBusiest()});
  return rows;
}

Suite socksSuite() {
  Suite suite;
  suite.title = "fwgate benchmark: SOCKS5 on loopback, one run";
  suite.allTargets = {"direct", "fwgate", "dante", "microsocks"};
  suite.defaultTargets = "direct,fwgate,dante,microsocks";
  suite.subject = "fwgate";
  suite.peers = {"dante", "microsocks", "direct"};
  suite.rows = socksRows;
  return suite;
}

}  // namespace

int runReport(const std::string& inPath, const std::string& outPath, const std::string& suiteName) {
  Suite suite;
  if (suiteName == "socks") {
    suite = socksSuite();
  } else if (suiteName == "web") {
    suite = webSuite();
  } else {
    std::cerr << "report: unknown suite " << suiteName << " (socks or web)\n";
    return 2;
  }
  std::ifstream in(inPath);
  if (!in) {
    std::cerr << "report: cannot read " << inPath << "\n";
    return 2;
  }
  Dataset data = load(in, suite);
  std::string md = render(suite, data);
  std::cout << md;
  if (!outPath.empty()) {
    std::ofstream out(outPath);
    out << md;
    if (!out) {
      std::cerr << "report: cannot write " << outPath << "\n";
      return 2;
    }
  }
  return 0;
}

}  // namespace fwgate::bench
