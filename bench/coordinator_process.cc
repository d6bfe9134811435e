#include "bench/coordinator_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace ocs::bench {

CoordinatorProcess::CoordinatorProcess(const std::string& binary, int port,
                                       const std::string& data_dir,
                                       const std::vector<std::string>& extra_flags,
                                       const std::string& seed_store) {
  std::filesystem::remove_all(data_dir);
  if (!seed_store.empty()) {
    std::filesystem::create_directories(data_dir);
    std::filesystem::copy_file(seed_store, data_dir + "/ocs.db");
  }
  std::vector<std::string> args{binary,       "--listen", absl::StrCat("127.0.0.1:", port),
                                "--data-dir", data_dir,   "--rendezvous-port-base",
                                "40000"};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  std::fflush(stdout);  // or the child would flush our buffered table a second time
  pid_ = fork();
  if (pid_ == 0) {
    std::freopen((data_dir + ".log").c_str(), "w", stderr);
    std::freopen((data_dir + ".log").c_str(), "a", stdout);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

CoordinatorProcess::~CoordinatorProcess() {
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

double CoordinatorProcess::StatusMb(const std::string& wanted) const {
  std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
  std::string key;
  while (status >> key) {
    if (key == wanted) {
      double kb = 0;
      status >> kb;
      return kb / 1024;
    }
  }
  return 0;
}

int CoordinatorProcess::OpenFiles() const {
  std::error_code ec;
  int count = 0;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid_, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++count;
  }
  return count;
}

}  // namespace ocs::bench
