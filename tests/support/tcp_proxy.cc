#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ocs::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Copies what is readable on `from` to `to`; false when `from` closed or either failed.
bool Forward(int from, int to) {
  char buffer[16384];
  const ssize_t n = read(from, buffer, sizeof(buffer));
  if (n <= 0) return false;
  for (ssize_t sent = 0; sent < n;) {
    const ssize_t w = send(to, buffer + sent, n - sent, MSG_NOSIGNAL);
    if (w <= 0) return false;
    sent += w;
  }
  return true;
}

constexpr int kPollMs = 50;  // how quickly a cut or the destructor is noticed

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 64) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length)) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("proxy: ", std::strerror(errno)));
  }
  return std::unique_ptr<TcpProxy>(new TcpProxy(fd, ntohs(address.sin_port), target_port));
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  acceptor_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  for (std::thread& relay : relays_) relay.join();
  close(listen_fd_);
}

std::string TcpProxy::address() const { return absl::StrCat("127.0.0.1:", port_); }

void TcpProxy::Cut() {
  cut_ = true;
  ++generation_;
}

void TcpProxy::Restore() { cut_ = false; }

void TcpProxy::AcceptLoop() {
  pollfd listening{listen_fd_, POLLIN, 0};
  while (!stopping_) {
    if (poll(&listening, 1, kPollMs) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    if (cut_) {  // refused: the connection opens and closes at once, like a reset
      close(client);
      ++refused_;
      continue;
    }
    ++relayed_;
    std::lock_guard<std::mutex> lock(mutex_);
    relays_.emplace_back(
        [this, client, generation = generation_.load()] { Relay(client, generation); });
  }
}

void TcpProxy::Relay(int client, int generation) {
  const int server = socket(AF_INET, SOCK_STREAM, 0);
  const sockaddr_in target = Loopback(target_port_);
  if (connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
    close(server), close(client);
    return;
  }
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  while (!stopping_ && generation_ == generation) {
    if (poll(fds, 2, kPollMs) <= 0) continue;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !Forward(client, server)) break;
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) && !Forward(server, client)) break;
  }
  close(server), close(client);
}

}  // namespace ocs::testing
