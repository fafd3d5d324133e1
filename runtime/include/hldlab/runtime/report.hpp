/// @file report.hpp
/// @brief The self-contained HTML report of `run --report` and `tour --report`: one file with
/// inline CSS and inline SVG charts (no JavaScript, no network). Per experiment: a line chart
/// per figure over virtual time (one line per system, fault injections as labelled markers), a
/// latency CDF, bars of the lesson's figures, the claims with ✓/✗ and the space-time diagram of
/// every traced system. Hovering a point shows its value (SVG `<title>`). In a space-time
/// diagram, a message whose label contains "lost" or "dropped" is drawn as one that never
/// arrived (dashed, stopping at an ×).
#pragma once

#include <string>
#include <vector>

#include "hldlab/runtime/script.hpp"

namespace hldlab {

/// One script's results as a section of the report.
struct ReportSection {
  std::string name;      ///< lesson (or script) name: the section's anchor
  std::string title;     ///< one line shown next to the name (the lesson's title)
  std::string verdict;   ///< "PASS", "FAIL", "ERROR" (the tour's), or empty
  std::string claims;    ///< "3/3" (the tour's), or empty
  std::string headline;  ///< the claim the tour shows, or empty
  const ScriptResult* result = nullptr;
};

/// The whole page. With more than one section (the tour) a summary table comes first.
std::string render_report(const std::string& title, const std::vector<ReportSection>& sections);

}  // namespace hldlab
