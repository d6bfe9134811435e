#include "server/worker_registry.h"

#include "absl/strings/str_cat.h"
#include "server/ids.h"

namespace ocs::server {

WorkerRegistry::WorkerRegistry(Clock clock, int lease_seconds, std::string coordinator_version)
    : clock_(std::move(clock)),
      lease_seconds_(lease_seconds),
      version_(std::move(coordinator_version)) {}

absl::StatusOr<WorkerInfo> WorkerRegistry::Register(const std::string& host, common::Device device,
                                                    int slots, const std::string& version,
                                                    const std::string& replaces) {
  if (host.empty() || host.size() > 253) {
    return absl::InvalidArgumentError("host: must be 1 to 253 characters");
  }
  if (slots < 1 || slots > kMaxSlots) {
    return absl::InvalidArgumentError(
        absl::StrCat("slots: must be in [1, ", kMaxSlots, "], got ", slots));
  }
  if (version != version_) {
    return absl::InvalidArgumentError(
        absl::StrCat("version: worker ", version, " cannot join coordinator ", version_));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  WorkerInfo worker;
  // Random, not a counter: after a coordinator restart an old id must not name a new worker.
  worker.id = absl::StrCat("worker-", RandomIdSuffix(8));
  worker.host = host;
  worker.device = device;
  worker.slots = worker.free_slots = slots;
  worker.version = version;
  worker.last_heartbeat_ms = clock_();
  workers_[worker.id] = worker;
  // Only the same worker replaces a registration: another cannot hide a loss.
  if (const auto old = workers_.find(replaces);
      old != workers_.end() && old->second.host == host && old->second.device == device) {
    old->second.replaced = true;
  }
  return worker;
}

bool WorkerRegistry::Drop(std::map<std::string, WorkerInfo>::iterator worker) {
  const bool replaced = worker->second.replaced;
  if (!replaced) ++lost_;
  workers_.erase(worker);
  return replaced;
}

bool WorkerRegistry::Alive(const WorkerInfo& worker) const {
  return clock_() - worker.last_heartbeat_ms <= int64_t{lease_seconds_} * 1000;
}

absl::Status WorkerRegistry::Heartbeat(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = workers_.find(worker_id);
  if (it == workers_.end()) {
    return absl::NotFoundError(absl::StrCat("unknown worker \"", worker_id, "\": register again"));
  }
  if (!Alive(it->second)) {
    Drop(it);
    return absl::NotFoundError(
        absl::StrCat("worker \"", worker_id, "\" missed its lease: register again"));
  }
  it->second.last_heartbeat_ms = clock_();
  // A worker that heartbeats under an id was not replaced: no one else can hide its loss.
  it->second.replaced = false;
  return absl::OkStatus();
}

std::vector<WorkerRegistry::ExpiredLease> WorkerRegistry::ExpireLeases() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ExpiredLease> expired;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (Alive(it->second)) {
      ++it;
      continue;
    }
    const std::string id = it->first;
    expired.push_back({id, Drop(it++)});
  }
  return expired;
}

void WorkerRegistry::Unregister(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  workers_.erase(worker_id);
}

int64_t WorkerRegistry::LostCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lost_;
}

bool WorkerRegistry::Contains(const std::string& worker_id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return workers_.count(worker_id) > 0;
}

void WorkerRegistry::AdjustFreeSlots(const std::string& worker_id, int delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = workers_.find(worker_id);
  if (it != workers_.end()) it->second.free_slots += delta;
}

std::vector<WorkerInfo> WorkerRegistry::List() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<WorkerInfo> workers;
  for (const auto& [id, worker] : workers_) workers.push_back(worker);
  return workers;
}

}  // namespace ocs::server
