// Whole-file reads and crash-safe writes. write_file_atomic writes a temporary file in the same
// folder, fsyncs it, renames it over the target and fsyncs the folder, so a killed process leaves
// either the old file or the new one, never a torn one (checkpoints, result.json, corpus files).
#pragma once

#include <string>
#include <string_view>

namespace moecast::train {

// Throws sim::InputError(path, ...) when the file cannot be read.
std::string read_file(const std::string& path);
// Throws std::runtime_error naming the path when any step fails.
void write_file_atomic(const std::string& path, std::string_view bytes);
// Appends and fsyncs one line (metrics.jsonl); a torn last line is dropped on resume.
void append_line(const std::string& path, std::string_view line);

}  // namespace moecast::train
