// Whole-file reads and crash-safe writes. write_file_atomic writes a temporary file in the same
// folder, fsyncs it, renames it over the target and fsyncs the folder, so a killed process leaves
// either the old file or the new one, never a torn one (checkpoints, result.json, corpus files).
#pragma once

#include <string>
#include <string_view>

namespace moecast::train {

// Throws sim::InputError(path, ...) when the file cannot be read.
std::string read_file(const std::string& path);
// Throws sim::IoError naming the path and the OS's reason when any step fails (the temporary
// file is removed).
void write_file_atomic(const std::string& path, std::string_view bytes);
// Removes the temporary files (NAME.tmp.PID) in `dir` that a killed writer left: those whose
// process is gone. Returns how many were removed.
int remove_stale_temporaries(const std::string& dir);
// Appends and fsyncs one line (metrics.jsonl); a torn last line is dropped on resume.
void append_line(const std::string& path, std::string_view line);

}  // namespace moecast::train
