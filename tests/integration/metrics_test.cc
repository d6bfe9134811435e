// Observability end to end: a real coordinator and worker run a short pruning job while a real
// Prometheus server (Debian's `prometheus`) scrapes both. The expositions must parse (promtool),
// name exactly the metrics docs/metrics.md documents, move as the job runs, and what Prometheus
// stored must be the stability series the coordinator decided; the shipped alerts must evaluate
// on those series.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "ocs/v1/job_service.grpc.pb.h"
#include "tests/support/http.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kJob[] = R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: watched}
spec:
  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}
  data: {dataset: synthetic, trainLimit: 256, testLimit: 64}
  training: {epochs: 8, batchSize: 32}
  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: 5}
  resources: {workers: 1, device: cpu}
  checkpoint: {everyEpochs: 0}
)";

// The metric families an exposition declares ("# TYPE name type").
std::set<std::string> Families(const std::string& exposition) {
  std::set<std::string> names;
  static const std::regex kType(R"(^# TYPE (\S+) \S+$)");
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, kType)) names.insert(m[1]);
  }
  return names;
}

// The value of the first sample of `name` whose labels include every `label="value"` given.
std::optional<double> Sample(const std::string& exposition, const std::string& name,
                             const std::vector<std::string>& labels) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    bool all = true;
    for (const std::string& label : labels) all = all && line.find(label) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// The `ocs_` metrics docs/metrics.md documents, from its tables' first column.
std::set<std::string> DocumentedMetrics() {
  std::set<std::string> names;
  static const std::regex kRow(R"(^\| `(ocs_[a-z0-9_]+)` \|)");
  std::ifstream doc("docs/metrics.md");
  for (std::string line; std::getline(doc, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kRow)) names.insert(m[1]);
  }
  return names;
}

// The newest boundary with a stability measurement (there are none after the prune).
const ocs::v1::EpochBoundary& LastStability(const ocs::v1::GetStabilityResponse& stored) {
  for (int i = stored.boundaries_size() - 1; i > 0; --i) {
    if (stored.boundaries(i).has_stability()) return stored.boundaries(i);
  }
  return stored.boundaries(0);
}

class MetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = absl::StrCat(::testing::TempDir(), "/metrics-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    const std::string& address = address_;
    coordinator_port_ = PickFreePort();
    worker_port_ = PickFreePort();
    prometheus_port_ = PickFreePort();
    StartPrometheus();
    coordinator_ = new Subprocess(
        {OCS_COORDINATOR_BIN, "--listen", address, "--data-dir", dir_ + "/coordinator",
         "--rendezvous-port-base", std::to_string(PickFreePort()), "--metrics-listen",
         absl::StrCat("127.0.0.1:", coordinator_port_)},
        dir_ + "/coordinator.log");
    worker_ = new Subprocess({OCS_WORKER_BIN, "serve", "--coordinator", address, "--slots", "1",
                              "--threads", "1", "--work-dir", dir_ + "/work", "--metrics-listen",
                              absl::StrCat("127.0.0.1:", worker_port_)},
                             dir_ + "/worker.log");
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    jobs_ = ocs::v1::JobService::NewStub(channel).release();
    ASSERT_TRUE(WaitUntilPrometheusScrapesBoth()) << Logs();
    RunJob();
  }

  static void TearDownTestSuite() {
    delete jobs_;
    delete worker_;
    delete coordinator_;
    delete prometheus_;
  }

  // A Prometheus server scraping both every 200 ms, its data in a temporary folder.
  static void StartPrometheus() {
    std::ofstream(dir_ + "/prometheus.yml")
        << "global: {scrape_interval: 200ms, scrape_timeout: 150ms, evaluation_interval: 200ms}\n"
        << "rule_files: ['" << fs::absolute("deploy/prometheus/alerts.yml").string() << "']\n"
        << "scrape_configs:\n"
        << "  - job_name: ocs-coordinator\n"
        << "    static_configs: [{targets: ['127.0.0.1:" << coordinator_port_ << "']}]\n"
        << "  - job_name: ocs-worker\n"
        << "    static_configs: [{targets: ['127.0.0.1:" << worker_port_ << "']}]\n";
    prometheus_ = new Subprocess(
        {"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
         "--storage.tsdb.path=" + dir_ + "/prometheus-data",
         absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port_), "--log.level=warn"},
        dir_ + "/prometheus.log");
  }

  // Prometheus takes a few seconds to start; the job takes a few seconds to run.
  static bool WaitUntilPrometheusScrapesBoth() {
    const std::string query = "/api/v1/query?query=" + UrlEncode("sum(up)");
    const auto deadline = Clock::now() + std::chrono::seconds(90);
    while (Clock::now() < deadline) {
      const HttpResponse up = HttpGet(prometheus_port_, query);
      if (up.status == 200 && up.body.find("\"2\"]") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }

  // Submits the job and follows it to its end, sampling the coordinator's metrics meanwhile.
  static void RunJob() {
    ocs::v1::SubmitJobRequest request;
    request.set_spec_yaml(kJob);
    ocs::v1::SubmitJobResponse response;
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    const grpc::Status status = jobs_->SubmitJob(&context, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    job_id_ = response.job().id();
    start_unix_s_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto deadline = Clock::now() + std::chrono::seconds(180);
    while (Clock::now() < deadline) {
      const std::string exposition = HttpGet(coordinator_port_, "/metrics").body;
      if (auto epoch = Sample(exposition, "ocs_job_epoch", {JobLabel()})) {
        epochs_seen_.push_back(*epoch);
      }
      if (Sample(exposition, "ocs_job_state", {JobLabel(), "state=\"succeeded\""}) == 1.0 ||
          Sample(exposition, "ocs_job_state", {JobLabel(), "state=\"failed\""}) == 1.0) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // a few more scrapes of the end
    end_unix_s_ =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  static std::string JobLabel() { return absl::StrCat("job_id=\"", job_id_, "\""); }

  static ocs::v1::GetStabilityResponse Stability() {
    ocs::v1::GetStabilityRequest request;
    request.set_id(job_id_);
    ocs::v1::GetStabilityResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(jobs_->GetStability(&context, request, &response).ok());
    return response;
  }

  static std::string Logs() {
    return ReadFile(dir_ + "/coordinator.log") + ReadFile(dir_ + "/worker.log") +
           ReadFile(dir_ + "/prometheus.log");
  }

  static inline std::string dir_, job_id_, address_;
  static inline int coordinator_port_ = 0, worker_port_ = 0, prometheus_port_ = 0;
  static inline Subprocess *coordinator_ = nullptr, *worker_ = nullptr, *prometheus_ = nullptr;
  static inline ocs::v1::JobService::Stub* jobs_ = nullptr;
  static inline std::vector<double> epochs_seen_;
  static inline double start_unix_s_ = 0, end_unix_s_ = 0;
};

TEST_F(MetricsTest, ExpositionsParseAndNameExactlyTheDocumentedMetrics) {
  std::set<std::string> served;
  for (int port : {coordinator_port_, worker_port_}) {
    const HttpResponse metrics = HttpGet(port, "/metrics");
    ASSERT_EQ(metrics.status, 200) << Logs();
    const std::string path = absl::StrCat(dir_, "/exposition-", port, ".txt");
    std::ofstream(path) << metrics.body;
    // promtool parses the text format and lints names, units and help texts.
    const CommandResult check = RunCommand({"/bin/sh", "-c", "promtool check metrics < " + path});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n" << metrics.body;
    for (const std::string& name : Families(metrics.body)) {
      if (name.rfind("ocs_", 0) == 0) served.insert(name);
    }
  }
  EXPECT_EQ(served, DocumentedMetrics());
}

TEST_F(MetricsTest, AJobsValuesMoveAsItRunsAndEndAtWhatTheStoreHolds) {
  const std::string metrics = HttpGet(coordinator_port_, "/metrics").body;
  ASSERT_EQ(Sample(metrics, "ocs_job_state", {JobLabel(), "state=\"succeeded\""}), 1.0)
      << metrics << Logs();
  EXPECT_EQ(Sample(metrics, "ocs_job_state", {JobLabel(), "state=\"dense\""}), 0.0);
  // The epoch only moved forward, through several values, to the last one.
  ASSERT_GE(epochs_seen_.size(), 2u);
  EXPECT_TRUE(std::is_sorted(epochs_seen_.begin(), epochs_seen_.end()));
  EXPECT_GT(std::set<double>(epochs_seen_.begin(), epochs_seen_.end()).size(), 2u);
  EXPECT_EQ(Sample(metrics, "ocs_job_epoch", {JobLabel()}), 7.0);
  EXPECT_EQ(Sample(metrics, "ocs_job_epochs", {JobLabel()}), 8.0);
  // The final values are the stored ones.
  const ocs::v1::GetStabilityResponse stored = Stability();
  ASSERT_EQ(stored.boundaries_size(), 8);
  const ocs::v1::EpochBoundary& last = stored.boundaries(7);
  EXPECT_NEAR(Sample(metrics, "ocs_job_stability_mean", {JobLabel()}).value_or(-1),
              LastStability(stored).j_bar(), 1e-13);
  EXPECT_NEAR(Sample(metrics, "ocs_job_stability_score", {JobLabel()}).value_or(-1),
              LastStability(stored).j(), 1e-13);
  EXPECT_NEAR(Sample(metrics, "ocs_job_test_accuracy_ratio", {JobLabel()}).value_or(-1),
              last.test_accuracy(), 1e-13);
  EXPECT_EQ(Sample(metrics, "ocs_job_flops", {JobLabel()}), static_cast<double>(last.flops()));
  EXPECT_GT(last.params(), 0);
  EXPECT_EQ(Sample(metrics, "ocs_job_params", {JobLabel()}), static_cast<double>(last.params()));
  EXPECT_GT(*Sample(metrics, "ocs_job_learning_rate", {JobLabel()}), 0.0);
  for (const ocs::v1::EpochBoundary& b : stored.boundaries()) {
    if (b.prune()) {
      EXPECT_EQ(Sample(metrics, "ocs_job_prune_epoch", {JobLabel()}), b.epoch());
    }
  }
  const double dense = *Sample(metrics, "ocs_job_dense_flops", {JobLabel()});
  EXPECT_NEAR(*Sample(metrics, "ocs_job_flops_reduction_ratio", {JobLabel()}),
              1.0 - last.flops() / dense, 1e-12);
  EXPECT_GT(*Sample(metrics, "ocs_job_flops_reduction_ratio", {JobLabel()}), 0.3);
  EXPECT_EQ(Sample(metrics, "ocs_job_epoch_duration_seconds_count", {JobLabel()}), 7.0);
  // The fleet and the API.
  EXPECT_EQ(Sample(metrics, "ocs_jobs", {"state=\"succeeded\""}), 1.0);
  EXPECT_EQ(Sample(metrics, "ocs_job_queue_length", {}), 0.0);
  EXPECT_EQ(Sample(metrics, "ocs_workers", {"state=\"idle\""}), 1.0);
  EXPECT_GE(*Sample(metrics, "ocs_rpc_requests_total",
                    {"method=\"/ocs.v1.JobService/SubmitJob\"", "code=\"OK\""}),
            1.0);
  // The worker's rank ended: its series outlive it for a while, at 0 images per second (a last
  // value kept would count in the job's throughput after it ended). PrometheusStored... checks
  // the speed it trained at.
  const std::string worker = HttpGet(worker_port_, "/metrics").body;
  EXPECT_EQ(Sample(worker, "ocs_worker_images_per_second", {JobLabel(), "rank=\"0\""}), 0.0);
  EXPECT_GT(*Sample(worker, "ocs_worker_step_duration_seconds_count", {JobLabel()}), 0.0);
  // Every image of the training split once per epoch: 256 images, 8 epochs, one rank.
  EXPECT_EQ(Sample(worker, "ocs_worker_images_total", {JobLabel(), "rank=\"0\""}), 256.0 * 8);
  EXPECT_EQ(Sample(worker, "ocs_worker_ranks", {}), 0.0);
  EXPECT_GT(*Sample(worker, "ocs_worker_resident_memory_bytes", {}), 1e6);
}

// Any client can call any path: junk calls are counted under one label, never as series of their
// own (each used to add 18 that stayed until a restart).
TEST_F(MetricsTest, CallsToPathsTheCoordinatorDoesNotServeAreCountedAsUnknown) {
  grpc::GenericStub stub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  for (int i = 0; i < 3; ++i) {
    grpc::ClientContext context;
    grpc::Slice empty("");
    const grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, absl::StrCat("/junk.Service/Method", i), grpc::StubOptions(), &request,
                   &response, [&](grpc::Status status) { done.set_value(status); });
    EXPECT_EQ(done.get_future().get().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
  const std::string metrics = HttpGet(coordinator_port_, "/metrics").body;
  EXPECT_THAT(metrics, ::testing::Not(::testing::HasSubstr("junk.Service")));
  EXPECT_GE(
      Sample(metrics, "ocs_rpc_requests_total", {"method=\"unknown\"", "code=\"UNIMPLEMENTED\""})
          .value_or(0),
      3.0);
}

TEST_F(MetricsTest, PrometheusStoredTheStabilitySeriesTheCoordinatorDecided) {
  const std::string query =
      absl::StrCat("/api/v1/query_range?query=",
                   UrlEncode(absl::StrCat("ocs_job_stability_mean{job_id=\"", job_id_, "\"}")),
                   absl::StrFormat("&start=%.3f&end=%.3f&step=0.2", start_unix_s_, end_unix_s_));
  const HttpResponse response = HttpGet(prometheus_port_, query);
  ASSERT_EQ(response.status, 200) << response.body << Logs();
  const nlohmann::json result = nlohmann::json::parse(response.body)["data"]["result"];
  ASSERT_EQ(result.size(), 1u) << response.body << Logs();
  std::vector<double> scraped;
  for (const auto& point : result[0]["values"]) {
    scraped.push_back(std::stod(point[1].get<std::string>()));
  }
  const ocs::v1::GetStabilityResponse stored = Stability();
  std::set<double> decided;
  for (const ocs::v1::EpochBoundary& b : stored.boundaries()) {
    if (b.has_stability()) decided.insert(b.j_bar());
  }
  ASSERT_FALSE(scraped.empty());
  // Every value Prometheus stored is one the coordinator decided (to the 15 significant digits
  // the text format carries), the series saw it change, and it ends at the last one.
  auto decided_near = [&decided](double value) {
    return std::any_of(decided.begin(), decided.end(),
                       [value](double d) { return std::abs(d - value) <= 1e-13; });
  };
  for (double value : scraped) EXPECT_TRUE(decided_near(value)) << value;
  EXPECT_GE(std::set<double>(scraped.begin(), scraped.end()).size(), 2u);
  EXPECT_NEAR(scraped.back(), LastStability(stored).j_bar(), 1e-13);
  // And the worker was scraped too, its rank training at some speed while it ran.
  const HttpResponse up =
      HttpGet(prometheus_port_, "/api/v1/query?query=" + UrlEncode("up{job=\"ocs-worker\"}"));
  EXPECT_THAT(up.body, ::testing::HasSubstr("\"1\"]")) << up.body;
  const HttpResponse speed = HttpGet(
      prometheus_port_,
      absl::StrCat("/api/v1/query?query=",
                   UrlEncode(absl::StrCat("max_over_time(ocs_worker_images_per_second{job_id=\"",
                                          job_id_, "\"}[10m])"))));
  ASSERT_EQ(speed.status, 200) << speed.body;
  const nlohmann::json fastest = nlohmann::json::parse(speed.body)["data"]["result"];
  ASSERT_EQ(fastest.size(), 1u) << speed.body;
  EXPECT_GT(std::stod(fastest[0]["value"][1].get<std::string>()), 0.0) << speed.body;
}

// The shipped alerts (docs/alerts.md) on real series: every rule evaluates without error, and every
// series it selects, with its label matchers, is one the coordinator or the worker serves. A
// misspelt metric, label or state would otherwise leave an alert silent for good.
TEST_F(MetricsTest, TheAlertRulesEvaluateAndSelectOnlySeriesThatExist) {
  nlohmann::json rules;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (bool evaluated = false; !evaluated && Clock::now() < deadline;) {
    const HttpResponse response = HttpGet(prometheus_port_, "/api/v1/rules?type=alert");
    ASSERT_EQ(response.status, 200) << response.body << Logs();
    const nlohmann::json listed = nlohmann::json::parse(response.body);
    rules = nlohmann::json::array();
    for (const auto& group : listed["data"]["groups"]) {
      for (const auto& rule : group["rules"]) rules.push_back(rule);
    }
    evaluated = !rules.empty() && std::all_of(rules.begin(), rules.end(), [](const auto& rule) {
      return rule["health"] != "unknown";
    });
    if (!evaluated) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(rules.size(), 8u) << rules.dump(2) << Logs();
  // Each selector as a whole, and each alternative of a regex matcher on its own: one misspelt
  // alternative would still leave the whole selector matching.
  static const std::regex kSelector(R"(\b(up|ocs_[a-z0-9_]+)(\{[^}]*\})?)");
  static const std::regex kRegexMatcher(R"#((\w+)\s*(=~|!~)\s*"([^"]*)")#");
  auto exists = [](const std::string& selector) {
    const HttpResponse found =
        HttpGet(prometheus_port_,
                "/api/v1/query?query=" + UrlEncode(absl::StrCat("count(", selector, ")")));
    return found.status == 200 && !nlohmann::json::parse(found.body)["data"]["result"].empty();
  };
  for (const auto& rule : rules) {
    const std::string name = rule["name"], expr = rule["query"];
    EXPECT_EQ(rule["health"], "ok") << name << ": " << rule.value("lastError", "");
    for (std::sregex_iterator m(expr.begin(), expr.end(), kSelector), end; m != end; ++m) {
      EXPECT_TRUE(exists(m->str())) << name << " selects " << m->str() << ", which no series has";
      const std::string matchers = (*m)[2];
      for (std::sregex_iterator r(matchers.begin(), matchers.end(), kRegexMatcher); r != end; ++r) {
        for (absl::string_view value : absl::StrSplit((*r)[3].str(), '|')) {
          const std::string one =
              absl::StrCat((*m)[1].str(), "{", (*r)[1].str(), "=\"", value, "\"}");
          EXPECT_TRUE(exists(one)) << name << " names " << one << ", which no series has";
        }
      }
    }
  }
  // The job ran as it should: nothing fires.
  const HttpResponse firing = HttpGet(
      prometheus_port_, "/api/v1/query?query=" + UrlEncode("ALERTS{alertstate=\"firing\"}"));
  ASSERT_EQ(firing.status, 200) << firing.body;
  EXPECT_TRUE(nlohmann::json::parse(firing.body)["data"]["result"].empty()) << firing.body;
}

// The shipped dashboard and scrape configuration: valid, and built only on metrics that exist.
TEST(DeployFilesTest, TheGrafanaDashboardQueriesOnlyDocumentedMetrics) {
  std::ifstream file("deploy/grafana/dashboards/ocs.json");
  ASSERT_TRUE(file) << "deploy/grafana/dashboards/ocs.json";
  const nlohmann::json dashboard = nlohmann::json::parse(file);  // throws when invalid
  std::set<std::string> variables;
  for (const auto& variable : dashboard["templating"]["list"]) {
    variables.insert(variable["name"].get<std::string>() + ":" +
                     variable["type"].get<std::string>());
  }
  EXPECT_TRUE(variables.count("datasource:datasource"));  // pick the Prometheus
  EXPECT_TRUE(variables.count("job:query"));              // pick the jobs
  const std::set<std::string> documented = DocumentedMetrics();
  static const std::regex kMetric("ocs_[a-z0-9_]+");
  static const std::regex kSuffix("_(bucket|sum|count)$");
  std::set<std::string> queried;
  int panels = 0;
  for (const auto& panel : dashboard["panels"]) {
    if (panel["type"] == "row") continue;
    ++panels;
    EXPECT_EQ(panel["datasource"]["uid"], "${datasource}") << panel["title"];
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      for (std::sregex_iterator m(expr.begin(), expr.end(), kMetric), end; m != end; ++m) {
        const std::string name = std::regex_replace(m->str(), kSuffix, "");
        EXPECT_TRUE(documented.count(name) || documented.count(m->str()))
            << panel["title"] << ": " << m->str();
        queried.insert(name);
      }
    }
  }
  EXPECT_GE(panels, 10);
  // What users came for is on it.
  for (const char* name :
       {"ocs_job_stability_mean", "ocs_job_stability_threshold", "ocs_job_state",
        "ocs_job_prune_epoch", "ocs_job_test_accuracy_ratio", "ocs_job_flops_reduction_ratio",
        "ocs_worker_images_total", "ocs_workers"}) {
    EXPECT_TRUE(queried.count(name)) << name;
  }
}

TEST(DeployFilesTest, ThePrometheusScrapeConfigurationIsValid) {
  const CommandResult check =
      RunCommand({"/usr/bin/promtool", "check", "config", "deploy/prometheus/prometheus.yml"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

}  // namespace
}  // namespace ocs::testing
