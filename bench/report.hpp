// Turns the JSON lines of one run.sh (suite "socks") or run-web.sh (suite "web") run into the
// Markdown comparison table.
#pragma once

#include <string>

#include "report_table.hpp"

namespace fwgate::bench {

// The SOCKS suite (report_socks.cpp).
report::Suite socksSuite();

// The HTTP proxy suite (report_web.cpp).
report::Suite webSuite();

// Reads inPath (JSON lines), prints Markdown to stdout and, if outPath is not empty, writes it
// there.
int runReport(const std::string& inPath, const std::string& outPath,
              const std::string& suite = "socks");

}  // namespace fwgate::bench
