// The SOCKS suite of the report (run.sh): fwgate against Dante and microsocks; fwgate's workers
// unpinned; the firewall client's path against Dante's socksify; UDP ASSOCIATE; the targets of
// issue 14 checked below the table.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "report.hpp"

namespace fwgate::bench {

namespace {

using namespace report;
using P = json::json_pointer;

const std::vector<std::string> kSocksTcpCases{"bulk1", "bulk8", "sess64", "sess1"};
const std::vector<std::string> kWorkerCases{"sess64-w1", "sess64-w2"};
const std::vector<std::string> kClientCases{"fwc-connect", "fwc-bulk1", "fwc-bulk8"};
const std::vector<std::string> kUdpCases{"udp64", "udp1400"};

Extract numberOf(const std::string& kase, const char* pointer) {
  std::string ptr = pointer;
  return field(kase, [ptr](const json& r) { return number(r, P(ptr)); });
}

// CPU seconds of the proxy per second of the window: how many cores it kept busy.
Extract coresUsed(const std::string& kase) {
  return field(kase, [](const json& r) -> std::optional<double> {
    auto cpu = number(r, P("/cpu_s"));
    auto window = number(r, P("/window_s"));
    if (!cpu || !window || *window <= 0) return std::nullopt;
    return *cpu / *window;
  });
}

// The cases of the run (run.sh --cases), from its Setup record; all of them when it names none.
bool inRun(const Dataset& data, const std::vector<std::string>& cases) {
  std::string list = "," + data.meta.value("cases", std::string()) + ",";
  if (list == ",,") return true;
  for (const auto& kase : cases) {
    std::string name = kase.rfind("idle", 0) == 0 ? "idle" : kase;
    if (list.find("," + name + ",") != std::string::npos) return true;
  }
  return false;
}

std::vector<Row> allRows(const Dataset& data);

// The table's rows, without those of cases this run did not select.
std::vector<Row> socksRows(const Dataset& data) {
  std::vector<Row> rows;
  for (auto& row : allRows(data)) {
    if (row.cases.empty() || inRun(data, row.cases)) rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<Row> allRows(const Dataset& data) {
  std::vector<Row> rows;
  auto add = [&rows](std::vector<std::string> cases, Row row) {
    row.cases = std::move(cases);
    rows.push_back(std::move(row));
  };
  add({"bulk1"}, {"Bulk, 1 stream (GB/s) ↑", 2, true, numberOf("bulk1", "/gbytes_per_s")});
  add({"bulk8"}, {"Bulk, 8 streams (GB/s) ↑", 2, true, numberOf("bulk8", "/gbytes_per_s")});
  add({"bulk1", "bulk8"}, {"Proxy CPU s per GB relayed (bulk runs) ↓", 3, true,
                           cpuPer({"bulk1", "bulk8"}, "bytes", 1e9)});
  for (const auto& [kase, label] : std::vector<std::pair<std::string, std::string>>{
           {"sess64", "64 concurrent"}, {"sess1", "1 at a time"}}) {
    add({kase}, {"Sessions/s, " + label + " ↑", 0, true, numberOf(kase, "/sessions_per_s")});
    add({kase},
        {"Session p50 latency, " + label + " (µs) ↓", 0, true, numberOf(kase, "/latency_us/p50")});
    add({kase},
        {"Session p99 latency, " + label + " (µs) ↓", 0, true, numberOf(kase, "/latency_us/p99")});
  }
  add({"sess64", "sess1"},
      {"Proxy CPU s per 1,000 sessions ↓", 3, true, cpuPer({"sess64", "sess1"}, "sessions", 1000)});
  add({"sess64", "sess1"},
      {"Session errors (sum over rounds)", 0, false, errorsOf({"sess64", "sess1"})});

  // fwgate alone, not pinned, with 1 and 2 workers.
  auto fwgateOnly = [&data](std::vector<std::string> cases, Extract e) {
    return only({"fwgate"}, "—", unlessSkipped(data, std::move(cases), std::move(e)));
  };
  const std::vector<std::pair<std::string, int>> workers{{"sess64-w1", 1}, {"sess64-w2", 2}};
  for (const auto& [kase, n] : workers) {
    add({kase}, {fmt::format("Sessions/s, 64 concurrent, fwgate --workers {}, unpinned ↑", n), 0,
                 false, fwgateOnly({kase}, numberOf(kase, "/sessions_per_s"))});
  }
  for (const auto& [kase, n] : workers) {
    add({kase}, {fmt::format("Proxy cores busy (CPU s ÷ window), --workers {}", n), 2, false,
                 fwgateOnly({kase}, coresUsed(kase))});
  }
  for (const auto& [kase, n] : workers) {
    add({kase}, {fmt::format("Proxy CPU s per 1,000 sessions, --workers {} ↓", n), 3, false,
                 fwgateOnly({kase}, cpuPer({kase}, "sessions", 1000))});
  }
  add(kWorkerCases, {"Load side CPU, workers rows, busiest (% of CPU 1)", 0, false,
                     fwgateOnly(kWorkerCases, loadSideBusiest(kWorkerCases))});
  add(kWorkerCases, {"Session errors, workers rows (sum over rounds)", 0, false,
                     fwgateOnly(kWorkerCases, errorsOf(kWorkerCases))});

  // The firewall client's path: direct, libfwgate-client.so, Dante's socksify.
  auto client = [&data](std::vector<std::string> cases, Extract e) {
    return except({"microsocks"}, "— (no client library)",
                  unlessSkipped(data, std::move(cases), std::move(e)));
  };
  const std::vector<std::string> connect{"fwc-connect"};
  add(connect, {"Client path: connect() p50 (µs) ↓", 1, true,
                client(connect, numberOf("fwc-connect", "/connect_us/p50"))});
  add(connect, {"Client path: connect() p99 (µs) ↓", 1, true,
                client(connect, numberOf("fwc-connect", "/connect_us/p99"))});
  add(connect, {"Client path: first 64-byte echo after connect(), p50 (µs) ↓", 1, true,
                client(connect, numberOf("fwc-connect", "/echo_us/p50"))});
  add(connect, {"Client path: first 64-byte echo after connect(), p99 (µs) ↓", 1, true,
                client(connect, numberOf("fwc-connect", "/echo_us/p99"))});
  add(connect, {"Client path: connects/s, 1 at a time (connect, echo, far end's close) ↑", 0, true,
                client(connect, numberOf("fwc-connect", "/connects_per_s"))});
  add(connect, {"Client path: proxy CPU s per 1,000 connects ↓", 3, true,
                client(connect, cpuPer(connect, "connects", 1000))});
  add({"fwc-bulk1"}, {"Client path: bulk, 1 stream (GB/s) ↑", 2, true,
                      client({"fwc-bulk1"}, numberOf("fwc-bulk1", "/gbytes_per_s"))});
  add({"fwc-bulk8"}, {"Client path: bulk, 8 streams (GB/s) ↑", 2, true,
                      client({"fwc-bulk8"}, numberOf("fwc-bulk8", "/gbytes_per_s"))});
  add({"fwc-bulk1", "fwc-bulk8"},
      {"Client path: proxy CPU s per GB relayed (bulk 1 + 8) ↓", 3, true,
       client({"fwc-bulk1", "fwc-bulk8"}, cpuPer({"fwc-bulk1", "fwc-bulk8"}, "bytes", 1e9))});
  add(kClientCases, {"Client path errors (sum over rounds)", 0, false,
                     client(kClientCases, errorsOf(kClientCases))});
  add(kClientCases, {"Load side CPU, client path, busiest (% of its one core)", 0, false,
                     client(kClientCases, loadSideBusiest(kClientCases))});

  // SOCKS5 UDP ASSOCIATE.
  auto udp = [&data](std::vector<std::string> cases, Extract e) {
    return except({"microsocks"}, "— (no UDP ASSOCIATE)",
                  unlessSkipped(data, std::move(cases), std::move(e)));
  };
  for (const auto& [kase, bytes] :
       std::vector<std::pair<std::string, int>>{{"udp64", 64}, {"udp1400", 1400}}) {
    add({kase},
        {fmt::format("UDP echoes/s, {} B, 64 in flight (each datagram crosses the proxy twice) ↑",
                     bytes),
         0, true, udp({kase}, numberOf(kase, "/echoes_per_s"))});
    add({kase}, {fmt::format("UDP echo p99 round trip, {} B (µs) ↓", bytes), 0, true,
                 udp({kase}, numberOf(kase, "/rtt_us/p99"))});
    add({kase}, {fmt::format("Proxy CPU µs per datagram relayed, {} B ↓", bytes), 2, true,
                 udp({kase}, cpuPer({kase}, "datagrams_relayed", 1e6))});
  }
  add(kUdpCases, {"UDP errors (sum over rounds; udp_lost: not echoed within 1 s)", 0, false,
                  udp(kUdpCases, errorsOf(kUdpCases))});
  add(kUdpCases, {"Load side CPU, UDP, busiest (% of its one core)", 0, false,
                  udp(kUdpCases, loadSideBusiest(kUdpCases))});

  for (int n : data.idleCounts) {
    add({"idle"}, {fmt::format("RSS per idle relayed conn @ {} (KiB) ↓", n), 1, true,
                   idleMemory(n, "rss_kb_per_conn")});
  }
  for (int n : data.idleCounts) {
    add({"idle"}, {fmt::format("PSS per idle relayed conn @ {} (KiB) ↓", n), 1, true,
                   idleMemory(n, "pss_kb_per_conn")});
  }
  if (!data.idleCounts.empty()) {
    int n = data.idleCounts.back();
    add({"idle"}, {fmt::format("Seconds to open {} idle conns ↓", n), 1, true, openSeconds(n)});
    add({"idle"}, {fmt::format("Proxy processes / threads @ {}", n), 0, false, processesAt(n)});
  }
  add(kSocksTcpCases, {"Load side CPU, busiest SOCKS TCP run (% of its one core)", 0, false,
                       loadSideBusiest(kSocksTcpCases)});
  return rows;
}

// ---------------------------------------------------------------- targets (issue 14)

bool present(const Dataset& data, const std::string& target) {
  return std::find(data.targets.begin(), data.targets.end(), target) != data.targets.end() &&
         !data.skipped.count(target);
}

// The median of one extractor for one target; nullopt when it has no numbers.
std::optional<double> medianOf(const Dataset& data, const Extract& extract,
                               const std::string& target) {
  if (!present(data, target)) return std::nullopt;
  auto runs = data.runs.find(target);
  if (runs == data.runs.end()) return std::nullopt;
  Cell cell = extract(runs->second, target);
  if (!cell.text.empty() || cell.values.empty()) return std::nullopt;
  return median(cell.values);
}

std::string verdict(bool met) {
  return met ? "**met**" : "**not met**";
}

std::string workersTarget(const Dataset& data) {
  auto w1 = medianOf(data, numberOf("sess64-w1", "/sessions_per_s"), "fwgate");
  auto w2 = medianOf(data, numberOf("sess64-w2", "/sessions_per_s"), "fwgate");
  if (!w1 || !w2 || *w1 <= 0) {
    std::string why = "no data";
    auto it = data.caseSkipped.find("fwgate");
    if (it != data.caseSkipped.end() && it->second.count("sess64-w2")) {
      why = "SKIPPED: " + it->second.at("sess64-w2");
    }
    return fmt::format("- Workers 1 → 2, sessions/s at 64 concurrent, unpinned: {}\n", why);
  }
  auto c1 = medianOf(data, coresUsed("sess64-w1"), "fwgate");
  auto c2 = medianOf(data, coresUsed("sess64-w2"), "fwgate");
  // The load side's share of the machine in the workers 2 windows (generator + echo server).
  auto load2 = medianOf(data, numberOf("sess64-w2", "/load_side_busy"), "fwgate");
  std::string md = fmt::format(
      "- Workers 1 → 2, sessions/s at 64 concurrent, unpinned: {:.0f} → {:.0f} = ×{:.2f}", *w1, *w2,
      *w2 / *w1);
  if (c1 && c2) md += fmt::format("; the proxy kept {:.2f} → {:.2f} cores busy", *c1, *c2);
  if (load2) {
    // One worker can keep at most one core busy; two at most what the load side leaves.
    double left = 2.0 - *load2;
    md += fmt::format(
        ". On these 2 CPUs the load side itself took {:.2f} of a core in the workers-2 windows, "
        "so at most {:.2f} cores were left for the proxy: against one worker filling one core, "
        "the ceiling here is about ×{:.2f}, not ×2",
        *load2, left, std::min(2.0, left));
    if (c1 && *c1 < 0.9) {
      md += fmt::format(
          "; with 1 worker the proxy kept only {:.2f} of a core busy, so its core was not what "
          "limited that row (the load side, the 64 clients' round trips, or other processes "
          "on the machine were)",
          *c1);
    }
  }
  return md + "\n";
}

std::string clientTargets(const Dataset& data) {
  std::string md;
  // One gateway round trip: what passing through the gateway once each way adds to a 64-byte
  // echo on an open connection, typical (p50) case; the yardstick for both percentiles.
  auto echoFwc = medianOf(data, numberOf("fwc-connect", "/echo_us/p50"), "fwgate");
  auto echoDirect = medianOf(data, numberOf("fwc-connect", "/echo_us/p50"), "direct");
  for (const char* q : {"p50", "p99"}) {
    std::string connectPtr = fmt::format("/connect_us/{}", q);
    auto fwc = medianOf(data, numberOf("fwc-connect", connectPtr.c_str()), "fwgate");
    auto direct = medianOf(data, numberOf("fwc-connect", connectPtr.c_str()), "direct");
    auto socksify = medianOf(data, numberOf("fwc-connect", connectPtr.c_str()), "dante");
    if (fwc && direct && echoFwc && echoDirect) {
      double extra = *fwc - *direct;
      double roundTrip = *echoFwc - *echoDirect;
      md += fmt::format(
          "- Client connect() {}: fwgate {:.1f} µs − direct {:.1f} µs = {:.1f} µs more; one "
          "gateway round trip (p50 of the first echo through the gateway {:.1f} µs − direct "
          "{:.1f} µs) = {:.1f} µs (target: at most one more): {}\n",
          q, *fwc, *direct, extra, *echoFwc, *echoDirect, roundTrip, verdict(extra <= roundTrip));
    } else {
      md += fmt::format("- Client connect() {} against direct: no data\n", q);
    }
    if (fwc && socksify) {
      md += fmt::format(
          "- Client connect() {}: fwgate {:.1f} µs against socksify {:.1f} µs = ×{:.2f} "
          "(target: lower): {}\n",
          q, *fwc, *socksify, *fwc / *socksify, verdict(*fwc < *socksify));
    } else {
      md += fmt::format("- Client connect() {} against socksify: no data\n", q);
    }
  }
  for (const auto& [kase, socks, label] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"fwc-bulk1", "bulk1", "1 stream"}, {"fwc-bulk8", "bulk8", "8 streams"}}) {
    auto fwc = medianOf(data, numberOf(kase, "/gbytes_per_s"), "fwgate");
    auto s = medianOf(data, numberOf(socks, "/gbytes_per_s"), "fwgate");
    if (fwc && s && *s > 0) {
      double ratio = *fwc / *s;
      md += fmt::format(
          "- Bulk, {}: the control-channel relay {:.2f} GB/s ÷ fwgate's SOCKS relay {:.2f} GB/s "
          "= ×{:.2f} (target: equal to SOCKS, read as at least ×0.90: bulk rounds here spread by "
          "±10 % and more): {}\n",
          label, *fwc, *s, ratio, verdict(ratio >= 0.90));
    } else {
      md += fmt::format("- Bulk, {}, control channel against SOCKS: no data\n", label);
    }
  }
  auto cpuFwc = medianOf(data, cpuPer({"fwc-bulk1", "fwc-bulk8"}, "bytes", 1e9), "fwgate");
  auto cpuSocks = medianOf(data, cpuPer({"bulk1", "bulk8"}, "bytes", 1e9), "fwgate");
  if (cpuFwc && cpuSocks && *cpuSocks > 0) {
    double ratio = *cpuFwc / *cpuSocks;
    md += fmt::format(
        "- Proxy CPU per GB: control-channel relay {:.3f} s ÷ SOCKS relay {:.3f} s = ×{:.2f} "
        "(target: equal to SOCKS, read as at most ×1.10): {}\n",
        *cpuFwc, *cpuSocks, ratio, verdict(ratio <= 1.10));
  } else {
    md += "- Proxy CPU per GB, control channel against SOCKS: no data\n";
  }
  return md;
}

std::string udpRatios(const Dataset& data) {
  std::string md;
  for (const auto& kase : kUdpCases) {
    auto fw = medianOf(data, numberOf(kase, "/echoes_per_s"), "fwgate");
    auto dante = medianOf(data, numberOf(kase, "/echoes_per_s"), "dante");
    auto cpuFw = medianOf(data, cpuPer({kase}, "datagrams_relayed", 1e6), "fwgate");
    auto cpuDante = medianOf(data, cpuPer({kase}, "datagrams_relayed", 1e6), "dante");
    std::string bytes = kase.substr(3);
    if (fw && dante && *dante > 0) {
      md += fmt::format("- UDP ASSOCIATE, {} B: fwgate {:.0f} echoes/s ÷ Dante {:.0f} = ×{:.2f}",
                        bytes, *fw, *dante, *fw / *dante);
      if (cpuFw && cpuDante && *cpuDante > 0) {
        md += fmt::format("; CPU per datagram {:.2f} µs ÷ {:.2f} µs = ×{:.2f}", *cpuFw, *cpuDante,
                          *cpuFw / *cpuDante);
      }
      md += " (no target set)\n";
    } else {
      md += fmt::format("- UDP ASSOCIATE, {} B, fwgate against Dante: no data\n", bytes);
    }
  }
  return md;
}

std::string targets(const Dataset& data) {
  std::string md = "\nTargets (issue 14), from the medians above:\n";
  if (inRun(data, kWorkerCases)) md += workersTarget(data);
  if (inRun(data, kClientCases)) md += clientTargets(data);
  if (inRun(data, kUdpCases)) md += udpRatios(data);
  return md;
}

}  // namespace

report::Suite socksSuite() {
  Suite suite;
  suite.title = "fwgate benchmark: SOCKS5 on loopback, one run";
  suite.allTargets = {"direct", "fwgate", "dante", "microsocks"};
  suite.defaultTargets = "direct,fwgate,dante,microsocks";
  suite.subject = "fwgate";
  suite.peers = {"dante", "microsocks", "direct"};
  suite.rows = socksRows;
  suite.epilogue = targets;
  return suite;
}

}  // namespace fwgate::bench
