// Summary statistics of samples (medians of measured times, means of errors). Plain functions on
// vectors; fitting lives in sim/laws and sim/calib.
#pragma once

#include <vector>

namespace moecast::sim {

// The middle value (the mean of the two middle values for an even count); 0 for no samples.
double median(std::vector<double> v);
// The arithmetic mean; 0 for no samples.
double mean(const std::vector<double>& v);

}  // namespace moecast::sim
