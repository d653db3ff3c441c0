// Turns the JSON lines of one run.sh run into the Markdown comparison table.
#pragma once

#include <string>

namespace fwgate::bench {

// Reads inPath (JSON lines), prints Markdown to stdout and, if outPath is not empty, writes it
// there.
int runReport(const std::string& inPath, const std::string& outPath);

}  // namespace fwgate::bench
