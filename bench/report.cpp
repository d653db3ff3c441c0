#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fwgate::bench {

namespace {

using nlohmann::json;

const std::vector<std::string> kAllTargets{"direct", "fwgate", "dante", "microsocks"};
const std::vector<std::string> kPeers{"dante", "microsocks", "direct"};
const std::string kSubject = "fwgate";

// case name -> round -> record, for one target.
using TargetRuns = std::map<std::string, std::map<int, json>>;

struct Dataset {
  json meta = json::object();
  std::map<std::string, TargetRuns> runs;
  std::map<std::string, std::string> skipped;                // target -> reason
  std::map<std::string, std::vector<std::string>> failures;  // target -> "case round N: reason"
  std::vector<int> idleCounts;
  std::vector<std::string> targets;
};

std::string tag(const json& record, const char* key) {
  if (!record.contains("tags") || !record["tags"].contains(key)) return {};
  const auto& v = record["tags"][key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::vector<std::string> splitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Dataset load(std::istream& in) {
  Dataset data;
  std::string line;
  for (int lineNo = 0; lineNo < 10'000'000 && std::getline(in, line); ++lineNo) {
    if (line.empty() || line.front() != '{') continue;
    json record = json::parse(line, nullptr, false);
    if (record.is_discarded()) continue;
    std::string event = record.value("event", "");
    std::string target = tag(record, "target");
    if (event == "meta") {
      data.meta = record.value("tags", json::object());
      continue;
    }
    if (event == "skip") {
      data.skipped[target] = tag(record, "reason");
      continue;
    }
    if (event == "run_failed") {
      data.failures[target].push_back(fmt::format("{} round {}: {}", tag(record, "case"),
                                                  tag(record, "round"), tag(record, "reason")));
      continue;
    }
    std::string mode = record.value("mode", "");
    if (mode == "idle" && event != "ready") {
      if (record.value("dropped_while_held", 0) > 0) {
        data.failures[target].push_back(
            fmt::format("{} round {}: {} connections dropped while held", tag(record, "case"),
                        tag(record, "round"), record.value("dropped_while_held", 0)));
      }
      if (record.value("not_closed_by_far_end", 0) > 0) {
        data.failures[target].push_back(fmt::format(
            "{} round {}: {} connections did not see the far end's close through the proxy",
            tag(record, "case"), tag(record, "round"), record.value("not_closed_by_far_end", 0)));
      }
      continue;
    }
    if (mode != "bulk" && mode != "sessions" && mode != "idle") continue;
    int round = std::atoi(tag(record, "round").c_str());
    data.runs[target][tag(record, "case")][round] = record;
  }
  for (const auto& n : splitCommas(data.meta.value("idle_counts", "5000,9000"))) {
    data.idleCounts.push_back(std::atoi(n.c_str()));
  }
  auto wanted = splitCommas(data.meta.value("targets", "direct,fwgate,dante,microsocks"));
  for (const auto& t : kAllTargets) {
    if (std::find(wanted.begin(), wanted.end(), t) != wanted.end()) data.targets.push_back(t);
  }
  return data;
}

// Per-round values of one metric for one target, or a reason why there are none.
struct Cell {
  std::vector<double> values;
  std::string problem;  // shown instead of (or next to) the numbers
  std::string text;     // a non-numeric cell
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string formatNumber(double v, int decimals) {
  return fmt::format("{:.{}f}", v, decimals);
}

std::string formatCell(const Cell& cell, int decimals) {
  if (!cell.text.empty()) return cell.text;
  if (cell.values.empty()) return cell.problem.empty() ? "no data" : cell.problem;
  std::string out = formatNumber(median(cell.values), decimals);
  if (cell.values.size() > 1) {
    auto [lo, hi] = std::minmax_element(cell.values.begin(), cell.values.end());
    out += fmt::format(" ({}–{})", formatNumber(*lo, decimals), formatNumber(*hi, decimals));
  }
  if (!cell.problem.empty()) out += " ⚠ " + cell.problem;
  return out;
}

using Extract = std::function<Cell(const TargetRuns&, const std::string& target)>;

struct Row {
  std::string label;
  int decimals = 2;
  bool ratios = true;
  Extract extract;
};

// One numeric field of one case, per round; runs with errors are kept but flagged.
Extract field(const std::string& kase,
              const std::function<std::optional<double>(const json&)>& get) {
  return [kase, get](const TargetRuns& runs, const std::string&) {
    Cell cell;
    auto it = runs.find(kase);
    if (it == runs.end()) return cell;
    std::uint64_t errors = 0;
    for (const auto& [round, record] : it->second) {
      errors += record.value("errors", std::uint64_t{0});
      if (auto v = get(record)) cell.values.push_back(*v);
    }
    if (errors > 0) cell.problem = fmt::format("{} errors", errors);
    return cell;
  };
}

std::optional<double> number(const json& record, const json::json_pointer& ptr) {
  if (!record.contains(ptr) || !record[ptr].is_number()) return std::nullopt;
  return record[ptr].get<double>();
}

// CPU seconds of the proxy per unit of work, summed over the given cases within each round.
Extract cpuPer(std::vector<std::string> cases, const char* workField, double unit) {
  return [cases, workField, unit](const TargetRuns& runs, const std::string& target) {
    Cell cell;
    if (target == "direct") {
      cell.text = "— (no proxy)";
      return cell;
    }
    std::map<int, std::pair<double, double>> perRound;  // cpu, work
    std::map<int, int> parts;
    for (const auto& kase : cases) {
      auto it = runs.find(kase);
      if (it == runs.end()) continue;
      for (const auto& [round, record] : it->second) {
        if (!record.contains("cpu_s") || !record.contains(workField)) continue;
        perRound[round].first += record["cpu_s"].get<double>();
        perRound[round].second += record[workField].get<double>();
        parts[round] += 1;
      }
    }
    for (const auto& [round, cw] : perRound) {
      if (parts[round] == static_cast<int>(cases.size()) && cw.second > 0) {
        cell.values.push_back(cw.first / (cw.second / unit));
      }
    }
    return cell;
  };
}

Extract sessionErrors() {
  return [](const TargetRuns& runs, const std::string&) {
    Cell cell;
    std::uint64_t total = 0;
    std::map<std::string, std::uint64_t> reasons;
    bool any = false;
    for (const char* kase : {"sess64", "sess1"}) {
      auto it = runs.find(kase);
      if (it == runs.end()) continue;
      for (const auto& [round, record] : it->second) {
        any = true;
        total += record.value("errors", std::uint64_t{0});
        const json reasonCounts = record.value("error_reasons", json::object());
        for (const auto& [reason, n] : reasonCounts.items()) {
          reasons[reason] += n.get<std::uint64_t>();
        }
      }
    }
    if (!any) return cell;
    cell.text = std::to_string(total);
    if (total > 0) {
      std::string list;
      for (const auto& [reason, n] : reasons)
        list += fmt::format("{}{}×{}", list.empty() ? "" : ", ", reason, n);
      cell.text += " (" + list + ")";
    }
    return cell;
  };
}

// Memory per held connection; any round that could not hold all N makes the cell a failure.
Extract idleMemory(int n, const char* key) {
  std::string kase = "idle" + std::to_string(n);
  return [kase, key, n](const TargetRuns& runs, const std::string& target) {
    Cell cell;
    if (target == "direct") {
      cell.text = "— (no proxy)";
      return cell;
    }
    auto it = runs.find(kase);
    if (it == runs.end()) return cell;
    for (const auto& [round, record] : it->second) {
      if (!record.value("complete", false)) {
        std::string reasons;
        const json reasonCounts = record.value("error_reasons", json::object());
        for (const auto& [reason, count] : reasonCounts.items()) {
          reasons += fmt::format("{}{}×{}", reasons.empty() ? "" : ", ", reason,
                                 count.get<std::uint64_t>());
        }
        std::uint64_t dropped = record.value("dropped_while_settling", std::uint64_t{0});
        if (dropped > 0) {
          reasons += fmt::format("{}dropped×{}", reasons.empty() ? "" : ", ", dropped);
        }
        cell.values.clear();
        cell.text = fmt::format("**FAIL** {}/{} held ({})", record.value("held", 0), n,
                                reasons.empty() ? "no reason reported" : reasons);
        return cell;
      }
      if (record.contains(key)) cell.values.push_back(record[key].get<double>());
    }
    return cell;
  };
}

Extract processesAt(int n) {
  std::string kase = "idle" + std::to_string(n);
  return [kase](const TargetRuns& runs, const std::string& target) {
    Cell cell;
    if (target == "direct") {
      cell.text = "—";
      return cell;
    }
    auto it = runs.find(kase);
    if (it == runs.end() || it->second.empty()) return cell;
    const json& last = it->second.rbegin()->second;
    if (!last.contains("after")) return cell;
    cell.text = fmt::format("{} / {}", last["after"].value("processes", 0),
                            last["after"].value("threads", 0));
    return cell;
  };
}

// The busiest the load side (generator + sink/echo, sharing one core) was in any run.
Extract loadSideBusiest() {
  return [](const TargetRuns& runs, const std::string&) {
    Cell cell;
    double worst = -1;
    std::string where;
    for (const auto& [kase, rounds] : runs) {
      for (const auto& [round, record] : rounds) {
        if (!record.contains("load_side_busy")) continue;
        double busy = record["load_side_busy"].get<double>() * 100;
        if (busy > worst) {
          worst = busy;
          where = kase;
        }
      }
    }
    if (worst < 0) return cell;
    cell.text = fmt::format("{:.0f}% ({}){}", worst, where, worst >= 90 ? " ⚠ saturated" : "");
    return cell;
  };
}

Extract openSeconds(int n) {
  std::string kase = "idle" + std::to_string(n);
  return [kase](const TargetRuns& runs, const std::string& target) {
    Cell cell;
    if (target == "direct") {
      cell.text = "—";
      return cell;
    }
    auto it = runs.find(kase);
    if (it == runs.end()) return cell;
    for (const auto& [round, record] : it->second) {
      if (record.contains("open_s")) cell.values.push_back(record["open_s"].get<double>());
    }
    return cell;
  };
}

std::vector<Row> buildRows(const Dataset& data) {
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
  rows.push_back({"Session errors (sum over rounds)", 0, false, sessionErrors()});
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

std::string render(const Dataset& data) {
  std::string md;
  md += "# fwgate benchmark: SOCKS5 on loopback, one run\n\n";
  for (const auto& t : data.targets) {
    auto it = data.skipped.find(t);
    if (it != data.skipped.end()) {
      md += fmt::format("> **⚠ {} SKIPPED: {}** — its column has no numbers.\n\n", t, it->second);
    }
  }
  md += "Setup:\n";
  for (const auto& [key, value] : data.meta.items()) {
    md +=
        fmt::format("- {}: {}\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  md += "\nCells: median over rounds (min–max). Ratio columns: fwgate ÷ peer on the median; ";
  md += "↑ higher is better, ↓ lower is better. GB = 10⁹ bytes, KiB = 1024 bytes.\n\n";

  bool subjectPresent =
      std::find(data.targets.begin(), data.targets.end(), kSubject) != data.targets.end();
  std::vector<std::string> peers;
  for (const auto& p : kPeers) {
    if (subjectPresent &&
        std::find(data.targets.begin(), data.targets.end(), p) != data.targets.end()) {
      peers.push_back(p);
    }
  }
  md += "| Metric |";
  for (const auto& t : data.targets) md += " " + t + " |";
  for (const auto& p : peers) md += " " + kSubject + " ÷ " + p + " |";
  md += "\n|---|";
  for (std::size_t i = 0; i < data.targets.size() + peers.size(); ++i) md += "---|";
  md += "\n";

  static const TargetRuns kEmpty;
  for (const auto& row : buildRows(data)) {
    ((md += "| ") += row.label) += " |";
    std::map<std::string, Cell> cells;
    for (const auto& t : data.targets) {
      auto runs = data.runs.find(t);
      Cell cell = row.extract(runs == data.runs.end() ? kEmpty : runs->second, t);
      if (data.skipped.count(t)) {
        cell = Cell{};
        cell.text = "SKIPPED";
      }
      cells[t] = cell;
      ((md += ' ') += formatCell(cell, row.decimals)) += " |";
    }
    for (const auto& p : peers) {
      const Cell& a = cells[kSubject];
      const Cell& b = cells[p];
      bool numeric = row.ratios && a.text.empty() && b.text.empty() && !a.values.empty() &&
                     !b.values.empty() && median(b.values) != 0;
      md += numeric ? fmt::format(" ×{:.2f} |", median(a.values) / median(b.values)) : " n/a |";
    }
    md += "\n";
  }

  std::string notes;
  for (const auto& t : data.targets) {
    auto it = data.failures.find(t);
    if (it == data.failures.end()) continue;
    for (const auto& f : it->second) notes += fmt::format("- **{}**: {}\n", t, f);
  }
  if (!notes.empty()) md += "\nProblems during the run:\n" + notes;
  return md;
}

}  // namespace

int runReport(const std::string& inPath, const std::string& outPath) {
  std::ifstream in(inPath);
  if (!in) {
    std::cerr << "report: cannot read " << inPath << "\n";
    return 2;
  }
  Dataset data = load(in);
  std::string md = render(data);
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
