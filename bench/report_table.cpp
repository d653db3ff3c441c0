#include "report_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

namespace fwgate::bench::report {

namespace {

std::vector<std::string> splitCommas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string formatNumber(double v, int decimals) {
  return fmt::format("{:.{}f}", v, decimals);
}

}  // namespace

std::string tag(const json& record, const char* key) {
  if (!record.contains("tags") || !record["tags"].contains(key)) return {};
  const auto& v = record["tags"][key];
  return v.is_string() ? v.get<std::string>() : v.dump();
}

Dataset load(std::istream& in, const Suite& suite) {
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
    if (event == "case_skipped") {
      data.caseSkipped[target][tag(record, "case")] = tag(record, "reason");
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
    if (mode != "bulk" && mode != "sessions" && mode != "idle" && mode != "requests" &&
        mode != "connects" && mode != "udp") {
      continue;
    }
    int round = std::atoi(tag(record, "round").c_str());
    data.runs[target][tag(record, "case")][round] = record;
  }
  for (const auto& n : splitCommas(data.meta.value("idle_counts", "5000,9000"))) {
    data.idleCounts.push_back(std::atoi(n.c_str()));
  }
  auto wanted = splitCommas(data.meta.value("targets", suite.defaultTargets));
  for (const auto& t : suite.allTargets) {
    if (std::find(wanted.begin(), wanted.end(), t) != wanted.end()) data.targets.push_back(t);
  }
  return data;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

Extract errorsOf(std::vector<std::string> cases) {
  return [cases](const TargetRuns& runs, const std::string&) {
    Cell cell;
    std::uint64_t total = 0;
    std::map<std::string, std::uint64_t> reasons;
    bool any = false;
    for (const auto& kase : cases) {
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

Extract idleMemory(int n, const char* key, const std::string& kasePrefix) {
  std::string kase = kasePrefix + std::to_string(n);
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

Extract processesAt(int n, const std::string& kasePrefix) {
  std::string kase = kasePrefix + std::to_string(n);
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

Extract loadSideBusiest(std::vector<std::string> cases) {
  return [cases](const TargetRuns& runs, const std::string&) {
    Cell cell;
    double worst = -1;
    std::string where;
    for (const auto& [kase, rounds] : runs) {
      if (!cases.empty() && std::find(cases.begin(), cases.end(), kase) == cases.end()) continue;
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

Extract openSeconds(int n, const std::string& kasePrefix) {
  std::string kase = kasePrefix + std::to_string(n);
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

Cell cellOf(const Row& row, const Dataset& data, const std::string& target) {
  static const TargetRuns kEmpty;
  if (data.skipped.count(target)) {
    Cell cell;
    cell.text = "SKIPPED";
    return cell;
  }
  auto runs = data.runs.find(target);
  return row.extract(runs == data.runs.end() ? kEmpty : runs->second, target);
}

Extract othersOnCpu(int cpu, std::vector<std::string> ours) {
  return [cpu, ours](const TargetRuns& runs, const std::string&) {
    Cell cell;
    double worst = -1;
    std::string where;
    for (const auto& [kase, rounds] : runs) {
      for (const auto& [round, record] : rounds) {
        const json busy = record.value("cpus_busy", json::array());
        double window = record.value("window_s", 0.0);
        if (!busy.is_array() || static_cast<int>(busy.size()) <= cpu || window <= 0) continue;
        double used = 0;
        for (const auto& key : ours) used += record.value(key, 0.0);
        double others = (busy[static_cast<std::size_t>(cpu)].get<double>() - used / window) * 100;
        if (others > worst) {
          worst = others;
          where = kase;
        }
      }
    }
    if (worst < 0 && where.empty()) return cell;
    cell.text =
        fmt::format("{:.0f}% ({}){}", std::max(worst, 0.0), where, worst >= 10 ? " ⚠ shared" : "");
    return cell;
  };
}

Extract except(std::vector<std::string> targets, std::string text, Extract extract) {
  return [targets, text, extract](const TargetRuns& runs, const std::string& target) {
    if (std::find(targets.begin(), targets.end(), target) != targets.end()) {
      Cell cell;
      cell.text = text;
      return cell;
    }
    return extract(runs, target);
  };
}

Extract only(std::vector<std::string> targets, std::string text, Extract extract) {
  return [targets, text, extract](const TargetRuns& runs, const std::string& target) {
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
      Cell cell;
      cell.text = text;
      return cell;
    }
    return extract(runs, target);
  };
}

Extract unlessSkipped(const Dataset& data, std::vector<std::string> cases, Extract extract) {
  return [&data, cases, extract](const TargetRuns& runs, const std::string& target) {
    auto it = data.caseSkipped.find(target);
    if (it != data.caseSkipped.end()) {
      for (const auto& kase : cases) {
        if (it->second.count(kase)) {
          Cell cell;
          cell.text = "**SKIPPED**";
          return cell;
        }
      }
    }
    return extract(runs, target);
  };
}

std::string render(const Suite& suite, const Dataset& data) {
  std::string md;
  md += "# " + suite.title + "\n\n";
  for (const auto& t : data.targets) {
    auto it = data.skipped.find(t);
    if (it != data.skipped.end()) {
      md += fmt::format("> **⚠ {} SKIPPED: {}** — its column has no numbers.\n\n", t, it->second);
    }
  }
  for (const auto& t : data.targets) {
    auto it = data.caseSkipped.find(t);
    if (it == data.caseSkipped.end() || data.skipped.count(t)) continue;
    for (const auto& [kase, reason] : it->second) {
      md += fmt::format("> **⚠ {} {} SKIPPED: {}** — its cells say SKIPPED.\n\n", t, kase, reason);
    }
  }
  md += "Setup:\n";
  for (const auto& [key, value] : data.meta.items()) {
    md +=
        fmt::format("- {}: {}\n", key, value.is_string() ? value.get<std::string>() : value.dump());
  }
  md += "\nCells: median over rounds (min–max). Ratio columns: " + suite.subject +
        " ÷ peer on the median; ";
  md += "↑ higher is better, ↓ lower is better. GB = 10⁹ bytes, KiB = 1024 bytes.\n\n";

  const std::string& subject = suite.subject;
  bool subjectPresent =
      std::find(data.targets.begin(), data.targets.end(), subject) != data.targets.end();
  std::vector<std::string> peers;
  for (const auto& p : suite.peers) {
    if (subjectPresent &&
        std::find(data.targets.begin(), data.targets.end(), p) != data.targets.end()) {
      peers.push_back(p);
    }
  }
  md += "| Metric |";
  for (const auto& t : data.targets) md += " " + t + " |";
  for (const auto& p : peers) md += " " + subject + " ÷ " + p + " |";
  md += "\n|---|";
  for (std::size_t i = 0; i < data.targets.size() + peers.size(); ++i) md += "---|";
  md += "\n";

  for (const auto& row : suite.rows(data)) {
    ((md += "| ") += row.label) += " |";
    std::map<std::string, Cell> cells;
    for (const auto& t : data.targets) {
      Cell cell = cellOf(row, data, t);
      cells[t] = cell;
      ((md += ' ') += formatCell(cell, row.decimals)) += " |";
    }
    for (const auto& p : peers) {
      const Cell& a = cells[subject];
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
  if (suite.epilogue) md += suite.epilogue(data);
  return md;
}

}  // namespace fwgate::bench::report
