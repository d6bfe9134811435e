// TLS, bearer tokens and worker certificates against a real coordinator, with certificates the
// test makes with openssl: calls without a good token are UNAUTHENTICATED, tokens never travel
// in plaintext, health stays open for probes, and workers must present a client certificate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/gloo.h"
#include "tests/support/subprocess.h"

namespace ocs::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "s3cret-token-4f9a";
constexpr char kJob[] = R"(apiVersion: ocs/v1
kind: PruningJob
metadata: {name: secure}
spec:
  model: {arch: resnet20, numClasses: 4, inputShape: [3, 12, 12]}
  data: {dataset: synthetic, trainLimit: 128, testLimit: 32}
  training: {epochs: 3, batchSize: 32}
  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: 1}
  resources: {workers: 1, device: cpu}
  checkpoint: {everyEpochs: 0}
)";

void OpenSsl(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const CommandResult result = RunCommand(argv);
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

// A key and a certificate signed by the test CA.
void IssueCertificate(const std::string& dir, const std::string& name, const std::string& cn,
                      const std::string& extensions) {
  const std::string base = dir + "/" + name;
  std::ofstream(base + ".ext") << extensions << "\n";
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn});
  OpenSsl({"x509", "-req", "-in", base + ".csr", "-CA", dir + "/ca.pem", "-CAkey", dir + "/ca.key",
           "-CAcreateserial", "-out", base + ".pem", "-days", "1", "-extfile", base + ".ext"});
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = absl::StrCat(::testing::TempDir(), "/security-", getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.pem", "-days", "1", "-subj",
             "/CN=ocs-test-ca"});
    IssueCertificate(dir_, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    IssueCertificate(dir_, "worker", "ocs-worker", "extendedKeyUsage=clientAuth");
    std::ofstream(dir_ + "/tokens") << "# the job API's tokens\n" << kToken << "\n";
    std::ofstream(dir_ + "/good-token") << kToken << "\n";
    std::ofstream(dir_ + "/bad-token") << "guessed-token\n";
    std::ofstream(dir_ + "/job.yaml") << kJob;
    address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    health_address_ = absl::StrCat("127.0.0.1:", PickFreePort());
    coordinator_ = new Subprocess(
        {OCS_COORDINATOR_BIN, "--listen", address_, "--data-dir", dir_ + "/coordinator",
         "--metrics-listen", kAnyPort, "--tls-cert", dir_ + "/server.pem", "--tls-key",
         dir_ + "/server.key", "--tls-client-ca", dir_ + "/ca.pem", "--auth-tokens-file",
         dir_ + "/tokens", "--health-listen", health_address_},
        dir_ + "/coordinator.log");
  }
  static void TearDownTestSuite() { delete coordinator_; }

  // ocsctl with the given global flags, then the verb and its arguments.
  static CommandResult Ocsctl(std::vector<std::string> flags, std::vector<std::string> verb) {
    std::vector<std::string> argv = {OCSCTL_BIN};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.insert(argv.end(), verb.begin(), verb.end());
    argv.push_back("--coordinator");
    argv.push_back(address_);
    return RunCommand(argv, std::chrono::seconds(120));
  }
  static std::vector<std::string> Trusted(const std::string& token_file = "good-token") {
    return {"--ca-cert", dir_ + "/ca.pem", "--token-file", dir_ + "/" + token_file};
  }

  // Whether the coordinator logging to `log` says it serves within 30 s.
  static bool WaitUntilServing(Subprocess& coordinator, const std::string& log) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ReadFile(log).find("serving on port") == std::string::npos) {
      if (!coordinator.running() || std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  static inline std::string dir_, address_, health_address_;
  static inline Subprocess* coordinator_ = nullptr;
};

TEST_F(SecurityTest, TheCaAndATokenLetOcsctlIn) {
  const CommandResult list = Ocsctl(Trusted(), {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err << ReadFile(dir_ + "/coordinator.log");
}

TEST_F(SecurityTest, CallsWithoutAGoodTokenAreUnauthenticated) {
  const CommandResult none = Ocsctl({"--ca-cert", dir_ + "/ca.pem"}, {"list"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("missing bearer token"));
  const CommandResult wrong = Ocsctl(Trusted("bad-token"), {"submit", dir_ + "/job.yaml"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("unknown bearer token"));
  EXPECT_THAT(wrong.err + ReadFile(dir_ + "/coordinator.log"), Not(HasSubstr("guessed-token")));
  const CommandResult workers = Ocsctl({"--ca-cert", dir_ + "/ca.pem"}, {"workers"});
  EXPECT_THAT(workers.err, HasSubstr("missing bearer token"));
}

TEST_F(SecurityTest, PlaintextClientsCannotTalkToATlsCoordinator) {
  const CommandResult plain = Ocsctl({}, {"list"});
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_THAT(plain.err, HasSubstr("cannot reach the coordinator"));
}

TEST_F(SecurityTest, ATokenIsNeverSentInPlaintext) {
  const CommandResult refused = Ocsctl({"--token-file", dir_ + "/good-token"}, {"list"});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("a token needs TLS"));
  const CommandResult coordinator =
      RunCommand({OCS_COORDINATOR_BIN, "--listen", "127.0.0.1:0", "--metrics-listen", "",
                  "--data-dir", dir_ + "/plain", "--auth-tokens-file", dir_ + "/tokens"});
  EXPECT_EQ(coordinator.exit_code, 2);
  EXPECT_THAT(coordinator.out + coordinator.err,
              HasSubstr("--auth-tokens-file needs --tls-cert and --tls-key"));
}

// Tokens guard the Job API; the Worker API is guarded by client certificates alone. A coordinator
// with tokens and no client CA says at start-up that its Worker API is open.
TEST_F(SecurityTest, TokensWithoutAClientCaWarnThatTheWorkerApiIsOpen) {
  const std::string log = dir_ + "/no-client-ca.log";
  Subprocess coordinator(
      {OCS_COORDINATOR_BIN, "--listen", "127.0.0.1:0", "--data-dir", dir_ + "/no-client-ca",
       "--metrics-listen", "", "--tls-cert", dir_ + "/server.pem", "--tls-key",
       dir_ + "/server.key", "--auth-tokens-file", dir_ + "/tokens"},
      log);
  const std::string open_warning = "without --tls-client-ca the Worker API";
  ASSERT_TRUE(WaitUntilServing(coordinator, log)) << ReadFile(log);
  EXPECT_THAT(ReadFile(log), HasSubstr(open_warning));
  ASSERT_TRUE(WaitUntilServing(*coordinator_, dir_ + "/coordinator.log"));
  EXPECT_THAT(ReadFile(dir_ + "/coordinator.log"), Not(HasSubstr(open_warning)));
}

TEST_F(SecurityTest, HealthNeedsNoTokenForProbes) {
  const CommandResult health = Ocsctl({"--ca-cert", dir_ + "/ca.pem"}, {"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
  // Kubernetes' gRPC probes cannot do TLS: a plaintext port serves health, and nothing else.
  const CommandResult probe = RunCommand({OCSCTL_BIN, "health", "--coordinator", health_address_});
  EXPECT_EQ(probe.exit_code, 0) << probe.err;
  const CommandResult jobs = RunCommand({OCSCTL_BIN, "list", "--coordinator", health_address_});
  EXPECT_EQ(jobs.exit_code, 1);
  EXPECT_THAT(jobs.err, ::testing::HasSubstr("does not offer this call (UNIMPLEMENTED)"));
}

TEST_F(SecurityTest, WorkersNeedAClientCertificateAndThenRunJobsOverTls) {
  const CommandResult anonymous =
      RunCommand({OCS_WORKER_BIN, "serve", "--coordinator", address_, "--tls-ca", dir_ + "/ca.pem",
                  "--metrics-listen", "", "--work-dir", dir_ + "/anonymous"});
  EXPECT_EQ(anonymous.exit_code, 1);
  EXPECT_THAT(anonymous.err, HasSubstr("workers must present a client certificate"));

  Subprocess worker(
      {OCS_WORKER_BIN, "serve", "--coordinator", address_, "--tls-ca", dir_ + "/ca.pem",
       "--tls-cert", dir_ + "/worker.pem", "--tls-key", dir_ + "/worker.key", "--metrics-listen",
       "", "--threads", "1", "--work-dir", dir_ + "/work"},
      dir_ + "/worker.log");
  const CommandResult submitted = Ocsctl(Trusted(), {"submit", dir_ + "/job.yaml", "--follow"});
  EXPECT_EQ(submitted.exit_code, 0)
      << submitted.out << submitted.err << ReadFile(dir_ + "/worker.log");
  EXPECT_THAT(submitted.out, HasSubstr("succeeded"));
}

// The usual mistakes with TLS files are named at start-up, not found out at the first handshake
// or reported as an address that cannot be listened on.
TEST_F(SecurityTest, BadTlsFilesAreNamedAtStartUp) {
  auto coordinator = [&](const std::string& cert, const std::string& key) {
    return RunCommand({OCS_COORDINATOR_BIN, "--listen", "127.0.0.1:0", "--data-dir",
                       dir_ + "/bad-tls", "--metrics-listen", "", "--tls-cert", dir_ + "/" + cert,
                       "--tls-key", dir_ + "/" + key});
  };
  CommandResult swapped = coordinator("server.key", "server.pem");
  EXPECT_EQ(swapped.exit_code, 2);
  EXPECT_THAT(swapped.out + swapped.err,
              HasSubstr("--tls-cert: " + dir_ + "/server.key holds no PEM certificate"));
  EXPECT_THAT(swapped.out + swapped.err, HasSubstr("are the certificate and key swapped?"));

  OpenSsl({"pkey", "-in", dir_ + "/server.key", "-aes256", "-passout", "pass:secret", "-out",
           dir_ + "/encrypted.key"});
  CommandResult encrypted = coordinator("server.pem", "encrypted.key");
  EXPECT_EQ(encrypted.exit_code, 2);
  EXPECT_THAT(encrypted.out + encrypted.err, HasSubstr("holds a passphrase-protected key"));

  CommandResult not_a_pair = coordinator("server.pem", "worker.key");
  EXPECT_EQ(not_a_pair.exit_code, 2);
  EXPECT_THAT(not_a_pair.out + not_a_pair.err,
              HasSubstr("--tls-cert and --tls-key do not load as a certificate and its private "
                        "key"));
  EXPECT_THAT(not_a_pair.out + not_a_pair.err, Not(HasSubstr("cannot listen")));

  const CommandResult worker =
      RunCommand({OCS_WORKER_BIN, "serve", "--coordinator", address_, "--tls-ca", dir_ + "/ca.key",
                  "--metrics-listen", "", "--work-dir", dir_ + "/bad-tls-work"});
  EXPECT_EQ(worker.exit_code, 2);
  EXPECT_THAT(worker.err, HasSubstr(dir_ + "/ca.key holds no PEM certificate"));
  const CommandResult key_as_ca =
      Ocsctl({"--ca-cert", dir_ + "/ca.key", "--token-file", dir_ + "/good-token"}, {"list"});
  EXPECT_EQ(key_as_ca.exit_code, 2);
  EXPECT_THAT(key_as_ca.err, HasSubstr("holds no PEM certificate"));
  // OpenSSL's "TRUSTED CERTIFICATE" form is a certificate too: gRPC loads it.
  OpenSsl({"x509", "-in", dir_ + "/ca.pem", "-trustout", "-out", dir_ + "/ca-trusted.pem"});
  const CommandResult trusted = Ocsctl(
      {"--ca-cert", dir_ + "/ca-trusted.pem", "--token-file", dir_ + "/good-token"}, {"list"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
}

}  // namespace
}  // namespace ocs::testing
