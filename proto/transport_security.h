// TLS and bearer tokens for ocs's gRPC connections, shared by the coordinator, the worker agent
// and ocsctl. Plaintext is what an empty configuration gives: for a local run only.
//   coordinator: --tls-cert/--tls-key (server certificate), --tls-client-ca (verify the client
//                certificates workers present: mutual TLS), --auth-tokens-file (job API tokens)
//   worker:      --tls-ca (trust the coordinator's certificate), --tls-cert/--tls-key (its own)
//   ocsctl:      --ca-cert / $OCS_CA_CERT, --token-file / $OCS_TOKEN_FILE
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace ocs::api {

struct ServerTlsFiles {
  std::string cert, key;  // PEM; both empty: plaintext
  std::string client_ca;  // PEM; set: clients may present certificates, verified against it
};

struct ClientTlsFiles {
  std::string ca_cert;    // PEM the server's certificate must chain to; empty: plaintext
  std::string cert, key;  // PEM client certificate (mutual TLS); optional
};

// InvalidArgument naming the flag and file for unreadable files or half a key pair.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files);
// `token` (may be empty) goes with every call as "authorization: Bearer <token>". A token needs
// TLS: InvalidArgument without a CA certificate, so that no secret travels in plaintext.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsFiles& files, const std::string& token);

// The file's content, trailing whitespace removed; NotFound naming `what` and the path.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what);

// The job API's bearer tokens, one per line of a file (blank lines and '#' comments skipped).
class TokenAuthenticator {
 public:
  // No file: every call is allowed (a local run). InvalidArgument for a file without tokens.
  static absl::StatusOr<TokenAuthenticator> FromFile(const std::string& path);
  TokenAuthenticator() = default;

  bool enabled() const { return !tokens_.empty(); }
  // OK, or UNAUTHENTICATED naming what is wrong (missing header, not a bearer token, unknown
  // token) without echoing the token. Every known token is compared in constant time.
  grpc::Status Check(const grpc::ServerContext& context) const;

 private:
  std::vector<std::string> tokens_;
};

// OK when the caller presented a client certificate the server verified (mutual TLS);
// UNAUTHENTICATED otherwise.
grpc::Status RequireClientCertificate(const grpc::ServerContext& context);

}  // namespace ocs::api
