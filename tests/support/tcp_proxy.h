// A TCP relay on loopback between clients and one server, for network faults: Cut() closes every
// relayed connection and refuses new ones until Restore(), as a failed link or a firewall would.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace ocs::testing {

class TcpProxy {
 public:
  // Listens on 127.0.0.1 (a free port) and relays to 127.0.0.1:target_port.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::string address() const;
  void Cut();
  void Restore();
  // Connections accepted and relayed so far, and refused while cut.
  int relayed() const { return relayed_; }
  int refused() const { return refused_; }

 private:
  TcpProxy(int listen_fd, int port, int target_port);
  void AcceptLoop();
  void Relay(int client_fd, int generation);

  int listen_fd_, port_, target_port_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};
  std::atomic<int> generation_{0};  // bumped by Cut(): relays of an older generation close
  std::atomic<int> relayed_{0}, refused_{0};
  std::mutex mutex_;
  std::vector<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace ocs::testing
