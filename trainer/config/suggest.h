// "Did you mean" helpers: nearest names by edit distance. Used by the config
// parser for misspelled keys and by later layers (node names, op types) that
// validate config values against a model.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace slim::config {

/// Case-insensitive optimal-string-alignment distance (insert, delete,
/// substitute, swap of two adjacent characters each cost 1).
/// @return the number of edits turning `a` into `b`.
size_t editDistance(const std::string& a, const std::string& b);

/// The `k` candidates closest to `want`, nearest first (ties keep the
/// candidates' order). No distance cut-off: meant for "closest names are ..."
/// listings.
/// @param want the name that was not found
/// @param candidates the names that exist
/// @param k how many to return at most
std::vector<std::string> closestNames(const std::string& want,
                                      const std::vector<std::string>& candidates,
                                      size_t k);

/// " (did you mean 'X'?)" when the nearest candidate is close enough to be a
/// plausible typo (distance <= max(2, len/3)), else "". Meant to be appended
/// to an error message.
/// @param want the misspelled name
/// @param candidates the valid names
std::string didYouMean(const std::string& want,
                       const std::vector<std::string>& candidates);

}  // namespace slim::config
