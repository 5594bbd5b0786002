// Serialises a TrainingState to HDF5 bytes and reads it back with full
// validation (schema in schema.h). File placement, atomic commit and
// retention are CheckpointManager's job (checkpoint_manager.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint/training_state.h"
#include "h5/h5.h"

namespace slim::checkpoint {

/// Builds the complete HDF5 file image of `state` in memory.
/// @param name_for_messages the destination file, named in errors
/// @param created_unix value of the created_unix attribute
/// @return the file bytes; equal states give equal dataset bytes
/// @throws CheckpointError on an invalid state (empty or clashing names,
///         undefined tensors) naming the group and tensor
std::vector<char> encodeState(const TrainingState& state, const std::string& name_for_messages,
                              int64_t created_unix);

/// Encodes `state` as encodeState() does, but the file's bytes go to `sink`
/// as HDF5 writes them (h5::StreamFile): no image of the file is held in
/// memory. The sink ends up holding exactly encodeState()'s bytes.
/// @return the file size in bytes
/// @throws CheckpointError as encodeState(); a failing sink's own
///         CheckpointError (e.g. disk full) is rethrown unchanged
uint64_t encodeStateTo(const TrainingState& state, const std::string& name_for_messages,
                       int64_t created_unix, h5::ByteSink& sink);

/// Reads and validates a checkpoint file: magic, format_version, required
/// root attributes and their types, the seven groups, every dataset's type,
/// shape and name attribute; Fletcher32 checksums are verified while reading.
/// @throws CheckpointError "checkpoint <file>, <object>: <expected vs found>"
TrainingState decodeStateFile(const std::string& file);

}  // namespace slim::checkpoint
