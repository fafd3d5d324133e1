#include "hldlab/runtime/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hldlab/runtime/results.hpp"

namespace hldlab {
namespace {

double wall_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::size_t terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) return ws.ws_col;
  return 100;
}

/// "12.3s", "4m10s".
std::string clock(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s / 60) % 60);
  return buf;
}

std::string count(double n) {
  char buf[32];
  if (n >= 1e9)
    std::snprintf(buf, sizeof buf, "%.1fG", n / 1e9);
  else if (n >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  else if (n >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", n / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

/// Columns `s` takes (UTF-8 continuation bytes and ANSI escapes take none).
std::size_t columns(const std::string& s) {
  std::size_t n = 0;
  bool escape = false;
  for (unsigned char c : s) {
    if (escape) {
      escape = c != 'm';
      continue;
    }
    if (c == 0x1b) {
      escape = true;
      continue;
    }
    n += (c & 0xC0) != 0x80;
  }
  return n;
}

}  // namespace

bool Progress::wanted(bool quiet) {
  if (quiet || !isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

Progress::Progress(double pace)
    : pace_(pace), color_(!std::getenv("NO_COLOR") || !*std::getenv("NO_COLOR")) {
  thread_ = std::thread([this] { loop(); });
}

Progress::~Progress() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    clear();
  }
  cv_.notify_all();
  thread_.join();
}

void Progress::start(const std::shared_ptr<Experiment>& e) {
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = e;
  started_ = wall_now();
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  current_.reset();
  clear();
}

void Progress::clear() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

void Progress::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!done_) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (done_ || !current_ || !current_->running()) continue;
    const std::string text =
        line(*current_, wall_now() - started_, pace_, terminal_width() - 1, color_);
    std::fputs(("\r" + text + "\033[K").c_str(), stderr);
    std::fflush(stderr);
    drawn_ = true;
  }
}

std::string Progress::line(const Experiment& e, double wall, double pace, std::size_t width,
                           bool color) {
  const double now = to_seconds(e.now()), duration = to_seconds(e.config().duration);
  const double done = std::clamp(now / duration, 0.0, 1.0);
  constexpr int kBar = 20;
  const int full = static_cast<int>(std::lround(done * kBar));
  std::string bar;
  for (int i = 0; i < kBar; ++i) bar += i < full ? "█" : "░";
  if (color) bar = "\033[36m" + bar + "\033[0m";
  double requests = 0;
  for (const auto& s : e.systems())
    if (e.active(*s)) requests += static_cast<double>(s->recorder().arrived());
  const double x = wall > 0 ? now / wall : 0;
  char speed[32];
  if (x >= 100)
    std::snprintf(speed, sizeof speed, "%sx", count(x).c_str());
  else
    std::snprintf(speed, sizeof speed, "%.1fx", x);
  std::string text = e.config().name + "  " + clock(now) + "/" + clock(duration) + " " + bar + " " +
                     std::to_string(static_cast<int>(done * 100)) + "%  " + speed + "  " +
                     count(requests) + " req";
  if (pace > 0)
    for (const auto& s : e.systems()) {
      if (!e.active(*s)) continue;
      const auto& r = s->recorder();
      const double window = to_seconds(r.window());
      text += " | " + s->label() + " p99 " + format_seconds(r.recent_quantile(1)) + " " +
              count(window > 0 ? static_cast<double>(r.recent_count()) / window : 0) + "/s";
    }
  // Cut to the terminal, a whole character at a time.
  while (columns(text) > width) {
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80)
      text.pop_back();
    if (!text.empty()) text.pop_back();
  }
  if (color) text += "\033[0m";
  return text;
}

}  // namespace hldlab
