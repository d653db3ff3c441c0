#include "report.hpp"

#include <fstream>
#include <iostream>
#include <string>

#include "report_table.hpp"

namespace fwgate::bench {

int runReport(const std::string& inPath, const std::string& outPath, const std::string& suiteName) {
  using namespace report;
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
