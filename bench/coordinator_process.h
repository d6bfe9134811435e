// A real ocs-coordinator process for the control-plane benchmarks: on a free loopback port with
// a fresh data folder, killed on destruction, its memory and open files readable from /proc.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ocs::bench {

class CoordinatorProcess {
 public:
  // Logs to <data_dir>.log. `extra_flags` go after --listen/--data-dir/--rendezvous-port-base.
  // `seed_store` (optional): a job store (ocs.db) copied into the fresh folder before the start.
  CoordinatorProcess(const std::string& binary, int port, const std::string& data_dir,
                     const std::vector<std::string>& extra_flags,
                     const std::string& seed_store = "");
  ~CoordinatorProcess();
  CoordinatorProcess(const CoordinatorProcess&) = delete;
  CoordinatorProcess& operator=(const CoordinatorProcess&) = delete;

  // From /proc/<pid>/status, in MiB: the resident set now (VmRSS) and its peak (VmHWM).
  double RssMb() const { return StatusMb("VmRSS:"); }
  double PeakRssMb() const { return StatusMb("VmHWM:"); }
  // Entries in /proc/<pid>/fd: files, sockets, pipes.
  int OpenFiles() const;

 private:
  double StatusMb(const std::string& key) const;
  pid_t pid_ = -1;
};

}  // namespace ocs::bench
