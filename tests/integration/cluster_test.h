// The fixture of the service and fault tests: a LoopbackCluster per test (a real coordinator
// started, workers added by the test) under the test's temporary folder, with the Job API calls
// failing the test when they fail.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/loopback_cluster.h"

namespace ocs::testing {

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<LoopbackCluster>(absl::StrCat(
        ::testing::TempDir(), "/service-",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), "-", getpid()));
    StartCoordinator();
  }

  void StartCoordinator(const std::vector<std::string>& extra_flags = {},
                        const std::vector<std::string>& environment = {}) {
    const absl::Status started = cluster_->StartCoordinator(extra_flags, environment);
    ASSERT_TRUE(started.ok()) << started;
  }

  // `shared`: the work folder all workers mount in a deployment (checkpoints survive a worker).
  void StartWorker(int slots, bool shared = false) {
    WorkerOptions options;
    options.slots = slots;
    options.shared = shared;
    cluster_->StartWorker(options);
  }
  void StartWorker(const WorkerOptions& options) { cluster_->StartWorker(options); }

  // The cluster's calls, failing the test when the Job API does.
  std::string Submit(const std::string& yaml) {
    absl::StatusOr<std::string> id = cluster_->Submit(yaml);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or("");
  }
  ocs::v1::Job Get(const std::string& id) { return Ok(cluster_->Get(id)); }
  ocs::v1::Job WaitForEnd(const std::string& id, std::chrono::seconds timeout) {
    return Ok(cluster_->WaitForEnd(id, timeout));
  }
  ocs::v1::GetStabilityResponse Stability(const std::string& id) {
    return Ok(cluster_->Stability(id));
  }
  std::string Download(const std::string& id, const std::string& name) {
    return Ok(cluster_->Download(id, name));
  }
  bool WaitForBoundaries(const std::string& id, int count) {
    return cluster_->WaitForBoundaries(id, count);
  }
  template <typename T>
  T Ok(absl::StatusOr<T> value) {
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *std::move(value) : T();
  }

  // The stored series has every boundary once, in order, none missing, and exactly one prune.
  void ExpectEveryBoundaryOnceWithOnePrune(const std::string& id, int epochs) {
    const BoundaryAudit audit = AuditBoundaries(Stability(id), epochs);
    EXPECT_TRUE(audit.intact()) << audit.missing << " missing, " << audit.duplicated
                                << " duplicated, " << audit.out_of_order << " out of order\n"
                                << Logs();
    EXPECT_EQ(audit.stored, epochs);
    EXPECT_EQ(audit.prunes, 1);
  }

  std::string Logs() { return cluster_->Logs(); }
  const std::string& dir() { return cluster_->dir(); }

  std::unique_ptr<LoopbackCluster> cluster_;
};

}  // namespace ocs::testing
