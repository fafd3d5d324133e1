/// @file progress.hpp
/// @brief The live progress line of `run` and `tour` on a terminal: one line on stderr,
/// redrawn in place about ten times a second, with the experiment's virtual time against its
/// duration, a bar, the simulation speed and the requests so far; in paced runs also each
/// system's P99 and throughput over its last timeline window. A thread reads the running
/// experiment's atomics (Experiment::now(), the recorders); the simulation is not touched.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "hldlab/runtime/experiment.hpp"

namespace hldlab {

class Progress {
 public:
  /// Whether to draw: stderr is a terminal (not "dumb") and not --quiet.
  static bool wanted(bool quiet);
  /// Starts the drawing thread. `pace`: the run's pace (0: as fast as possible).
  explicit Progress(double pace);
  ~Progress();  ///< stops the thread and clears the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// An experiment starts running: draw it from now on.
  void start(const std::shared_ptr<Experiment>& e);
  /// It ended: clear the line (before anything else prints).
  void finish();

  /// The line for `e` after `wall` seconds of running, at most `width` columns (exposed for
  /// tests). `color`: ANSI colours (off with NO_COLOR).
  static std::string line(const Experiment& e, double wall, double pace, std::size_t width,
                          bool color);

 private:
  void loop();
  void clear();  // with mutex_ held

  double pace_;
  bool color_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::shared_ptr<Experiment> current_;
  double started_ = 0;  // wall seconds
  bool drawn_ = false, done_ = false;
  std::thread thread_;
};

}  // namespace hldlab
