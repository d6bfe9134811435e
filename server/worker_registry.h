// The fleet as the coordinator sees it: registered workers, their devices and slots, and leases
// kept alive by heartbeats. In memory: workers re-register after a coordinator restart (their
// heartbeat gets NOT_FOUND), so nothing here needs to survive one.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_spec.h"
#include "server/job_manager.h"

namespace ocs::server {

struct WorkerInfo {
  std::string id;
  std::string host;
  common::Device device = common::Device::kCpu;
  int slots = 1;
  int free_slots = 1;
  std::string version;
  int64_t last_heartbeat_ms = 0;
  // Its worker registered again since, naming this id, and has not heartbeated under it: when
  // its lease runs out it is not counted as lost.
  bool replaced = false;
};

class WorkerRegistry {
 public:
  WorkerRegistry(Clock clock, int lease_seconds, std::string coordinator_version);

  // InvalidArgument naming the field for an empty host, slots outside [1, 64], or a version
  // other than the coordinator's. `replaces`: the id the same worker (host and device) had before
  // it registered again; that registration runs out its lease, as the worker's ranks may still be
  // claimed under it meanwhile, but is not counted as lost, unless a heartbeat comes under it.
  absl::StatusOr<WorkerInfo> Register(const std::string& host, common::Device device, int slots,
                                      const std::string& version, const std::string& replaces = "");
  // NotFound for an unknown worker or one whose lease ran out (it has been dropped).
  absl::Status Heartbeat(const std::string& worker_id);
  // A registration whose lease ran out: a lost worker, or one its worker had replaced.
  struct ExpiredLease {
    std::string worker_id;
    bool replaced = false;
    bool operator==(const ExpiredLease&) const = default;
  };
  // Drops workers whose lease ran out.
  std::vector<ExpiredLease> ExpireLeases();
  // Drops a worker that left on purpose (it said goodbye): it is not counted as lost.
  void Unregister(const std::string& worker_id);
  // Workers dropped because their lease ran out, since the coordinator started: they are listed
  // for at most a second (until ExpireLeases), too short for a scrape to see. A registration the
  // worker replaced is not counted.
  int64_t LostCount() const;
  std::vector<WorkerInfo> List() const;
  bool Contains(const std::string& worker_id) const;
  // Keeps free_slots current as ranks start and end (unknown workers are ignored).
  void AdjustFreeSlots(const std::string& worker_id, int delta);
  bool Alive(const WorkerInfo& worker) const;
  int lease_seconds() const { return lease_seconds_; }

  static constexpr int kMaxSlots = 64;

 private:
  Clock clock_;
  const int lease_seconds_;
  const std::string version_;
  mutable std::mutex mutex_;
  // Requires mutex_. Drops a worker whose lease ran out, counting it as lost unless replaced;
  // returns whether it was.
  bool Drop(std::map<std::string, WorkerInfo>::iterator worker);

  std::map<std::string, WorkerInfo> workers_;
  int64_t lost_ = 0;
};

}  // namespace ocs::server
