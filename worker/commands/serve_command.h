// `ocs-worker serve`: join a coordinator's fleet and run the ranks it assigns, each with the
// coordinator deciding every epoch boundary.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace ocs::worker::commands {

struct ServeOptions {
  std::string coordinator = "localhost:7070";
  std::string host = "127.0.0.1";
  std::string device = "cpu";
  int slots = 1;
  std::string work_dir = "ocs-worker-data";
  int threads = 0;
  std::string metrics_listen = "0.0.0.0:9471";
  std::string log_format = "text";
  std::string tls_ca, tls_cert, tls_key;  // PEM files; empty tls_ca: plaintext
  int upload_retry_seconds = 600;
};

CLI::App* AddServeCommand(CLI::App& app, ServeOptions* options);
int Serve(const ServeOptions& options);

}  // namespace ocs::worker::commands
