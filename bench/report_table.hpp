// The comparison table shared by the benchmark suites: a run's JSON lines by target, case and
// round; cells as the median over rounds with (min–max); ratio columns against each peer.
#pragma once

#include <functional>
#include <istream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fwgate::bench::report {

using nlohmann::json;

// case name -> round -> record, for one target.
using TargetRuns = std::map<std::string, std::map<int, json>>;

struct Dataset {
  json meta = json::object();
  std::map<std::string, TargetRuns> runs;
  std::map<std::string, std::string> skipped;                // target -> reason
  std::map<std::string, std::vector<std::string>> failures;  // target -> "case round N: reason"
  std::map<std::string, std::map<std::string, std::string>> caseSkipped;  // target -> case -> why
  std::vector<int> idleCounts;
  std::vector<std::string> targets;  // those of the run, in the suite's order
};

// Per-round values of one metric for one target, or a reason why there are none.
struct Cell {
  std::vector<double> values;
  std::string problem;  // shown instead of (or next to) the numbers
  std::string text;     // a non-numeric cell
};

using Extract = std::function<Cell(const TargetRuns&, const std::string& target)>;

struct Row {
  std::string label;
  int decimals = 2;
  bool ratios = true;
  Extract extract;
  std::vector<std::string> cases;  // the cases it reads; a suite may leave out rows of cases
                                   // its run did not select (empty: always shown)
};

struct Suite {
  std::string title;                    // the Markdown heading
  std::vector<std::string> allTargets;  // column order
  std::string defaultTargets;           // when the meta record names none
  std::string subject;                  // the target the ratio columns divide
  std::vector<std::string> peers;       // a ratio column each, when in the run
  std::function<std::vector<Row>(const Dataset&)> rows;
  // Text after the table and its problems (the targets section); may be empty.
  std::function<std::string(const Dataset&)> epilogue;
};

std::string tag(const json& record, const char* key);
Dataset load(std::istream& in, const Suite& suite);
double median(std::vector<double> v);
std::string formatCell(const Cell& cell, int decimals);
std::string render(const Suite& suite, const Dataset& data);

// The cell of one row for one target (empty when the target has no runs).
Cell cellOf(const Row& row, const Dataset& data, const std::string& target);

// Extractors.
std::optional<double> number(const json& record, const json::json_pointer& ptr);
// One numeric field of one case, per round; runs with errors are kept but flagged.
Extract field(const std::string& kase,
              const std::function<std::optional<double>(const json&)>& get);
// CPU seconds of the proxy per unit of work, summed over the given cases within each round.
Extract cpuPer(std::vector<std::string> cases, const char* workField, double unit);
// Errors of the given cases summed over rounds, with their reasons.
Extract errorsOf(std::vector<std::string> cases);
// Memory per held connection; any round that could not hold all N makes the cell a failure.
Extract idleMemory(int n, const char* key, const std::string& kasePrefix = "idle");
Extract processesAt(int n, const std::string& kasePrefix = "idle");
Extract openSeconds(int n, const std::string& kasePrefix = "idle");
// The busiest the load side (generator + far end, sharing one core) was in any run (of the
// given cases only, when some are given).
Extract loadSideBusiest(std::vector<std::string> cases = {});
// How busy one CPU was with anything but the processes measured on it, in the worst run:
// cpus_busy[cpu] less the CPU seconds per second of `ours` (cpu_s for the proxy's CPU; load_cpu_s
// and far_cpu_s for the load side's), in percent.
Extract othersOnCpu(int cpu, std::vector<std::string> ours);
// `text` for the listed targets, the extractor for the others.
Extract except(std::vector<std::string> targets, std::string text, Extract extract);
// Only for the listed targets; `text` for the others.
Extract only(std::vector<std::string> targets, std::string text, Extract extract);
// "SKIPPED" for a target whose cases (any of them) the run skipped, the extractor otherwise.
Extract unlessSkipped(const Dataset& data, std::vector<std::string> cases, Extract extract);

}  // namespace fwgate::bench::report
