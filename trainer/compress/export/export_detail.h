// Internals shared by the student exports (student_extract.cc,
// qdq_build.cc): graph rewiring helpers.
#pragma once

#include <string>

#include "trainer/graph/graph.h"

namespace slim::compress::detail {

/// Replaces every node input (and graph output) named `from` by `to`.
void renameUses(graph::Graph& g, const std::string& from, const std::string& to);

/// Removes each node of type `op_type` whose input 0 is passed through
/// unchanged at inference (Pact), wiring its readers to that input.
void bypassNodes(graph::Graph& g, const std::string& op_type);

}  // namespace slim::compress::detail
