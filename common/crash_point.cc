#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ocs::common {
namespace {

struct Armed {
  std::string point;  // empty: no crash point armed in this process
  int pass = 1;
  std::atomic<int> passes{0};
};

// Read once: the environment of a running process does not change under it.
Armed& ArmedPoint() {
  static Armed* armed = [] {
    auto* a = new Armed;
    const char* value = std::getenv("OCS_CRASH_AT");
    if (value == nullptr || *value == '\0') return a;
    const std::pair<std::string, std::string> parts = absl::StrSplit(value, '@');
    a->point = parts.first;
    if (!parts.second.empty() && (!absl::SimpleAtoi(parts.second, &a->pass) || a->pass < 1)) {
      a->pass = 1;
    }
    return a;
  }();
  return *armed;
}

}  // namespace

void CrashPoint(absl::string_view point) {
  Armed& armed = ArmedPoint();
  if (armed.point.empty() || armed.point != point) return;
  const int pass = armed.passes.fetch_add(1) + 1;
  if (pass != armed.pass) return;
  // Said on stderr, unbuffered, so a test can tell this crash from any other.
  const std::string line = absl::StrCat("crash point ", point, " (pass ", pass, "): SIGKILL\n");
  (void)!write(STDERR_FILENO, line.data(), line.size());
  kill(getpid(), SIGKILL);
}

}  // namespace ocs::common
