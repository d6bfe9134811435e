// A plain HTTP/1.0 GET on loopback, for tests that read /metrics or Prometheus's HTTP API.
#pragma once

#include <string>

namespace ocs::testing {

struct HttpResponse {
  int status = 0;  // 0 when nothing answered
  std::string body;
};

// GET http://127.0.0.1:`port``target` (`target` is the path with its query, already encoded).
HttpResponse HttpGet(int port, const std::string& target);

// Percent-encodes a query parameter's value.
std::string UrlEncode(const std::string& text);

}  // namespace ocs::testing
