// The coordinator's Prometheus endpoint (/metrics, default port 9470). Job and fleet metrics are a
// view of the store and the worker registry taken at each scrape, so they never disagree with what
// the Job API returns and need no bookkeeping as jobs move on; RPC counts and latencies are
// counted as calls finish. Every metric is documented in docs/metrics.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/support/server_interceptor.h>

#include "absl/status/statusor.h"
#include "server/job_manager.h"
#include "server/job_store.h"
#include "server/worker_registry.h"

namespace ocs::server {

struct MetricsOptions {
  std::string listen = "0.0.0.0:9470";  // host:port; port 0 picks a free one
  // A job that ended keeps its series this long, then they disappear from the exposition.
  int64_t retention_ms = 15 * 60 * 1000;
  // At most this many ended jobs are shown, the most recently ended: a burst of short jobs cannot
  // make a scrape outgrow Prometheus's timeout (each job is about 40 series).
  int max_ended_jobs = 1000;
};

class CoordinatorMetrics {
 public:
  // Starts the HTTP endpoint; Unavailable naming the address when it cannot listen there.
  static absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> Serve(const MetricsOptions& options,
                                                                   JobStore& store,
                                                                   WorkerRegistry& workers,
                                                                   Clock clock);
  ~CoordinatorMetrics();

  int port() const;
  // Counts every call of the gRPC server it is installed in: method, status code, latency.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> RpcInterceptorFactory();

 private:
  struct Impl;
  explicit CoordinatorMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocs::server
