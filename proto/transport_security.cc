#include "proto/transport_security.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ocs::api {
namespace {

enum class PemKind { kCertificate, kPrivateKey };

// Whether `pem` holds a block of the kind, or what is wrong. gRPC only finds out when the server
// starts ("cannot listen") or a connection's handshake fails, neither naming the file: the
// usual mistakes (swapped files, a passphrase-protected key) are named here instead.
absl::Status CheckPemKind(absl::string_view pem, PemKind kind) {
  // "BEGIN CERTIFICATE", and OpenSSL's "TRUSTED CERTIFICATE" and "X509 CERTIFICATE" forms, which
  // gRPC loads as well.
  const bool has_certificate = absl::StrContains(pem, "CERTIFICATE-----");
  const bool has_key = absl::StrContains(pem, "PRIVATE KEY-----");
  if (kind == PemKind::kCertificate) {
    if (has_certificate) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        has_key ? "; it holds a private key: are the certificate and key swapped?" : ""));
  }
  if (absl::StrContains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(
        "holds a passphrase-protected key, which gRPC cannot use (openssl pkey -in KEY -out "
        "PLAIN writes it without one)");
  }
  if (has_key) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
      has_certificate ? "; it holds a certificate: are the certificate and key swapped?" : ""));
}

// A PEM file named by `flag`; "" for no file. InvalidArgument naming both when unreadable or
// not of the kind.
absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& flag,
                                    PemKind kind) {
  if (path.empty()) return std::string();
  auto content = ReadSecretFile(path, flag);
  if (!content.ok() || content->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  if (absl::Status fits = CheckPemKind(*content, kind); !fits.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", path, " ", fits.message()));
  }
  return content;
}

// Compares without leaking where the first difference is: time depends on lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return difference == 0;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTlsFiles& files) {
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (files.cert.empty()) {
    if (!files.client_ca.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadPem(files.cert, "--tls-cert", PemKind::kCertificate);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(files.key, "--tls-key", PemKind::kPrivateKey);
  if (!key.ok()) return key.status();
  auto client_ca = ReadPem(files.client_ca, "--tls-client-ca", PemKind::kCertificate);
  if (!client_ca.ok()) return client_ca.status();
  grpc::SslServerCredentialsOptions options(
      files.client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                              // Optional for ocsctl users (they bring tokens); verified when
                              // presented; the Worker API requires one (RequireClientCertificate).
                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *client_ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const ClientTlsFiles& files, const std::string& token) {
  if (files.ca_cert.empty()) {
    if (!token.empty()) {
      return absl::InvalidArgumentError(
          "a token needs TLS: give the coordinator's CA certificate (--ca-cert or $OCS_CA_CERT) "
          "so that it does not travel in plaintext");
    }
    if (!files.cert.empty()) return absl::InvalidArgumentError("--tls-cert needs --tls-ca");
    return grpc::InsecureChannelCredentials();
  }
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  grpc::SslCredentialsOptions options;
  auto ca = ReadPem(files.ca_cert, "CA certificate", PemKind::kCertificate);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  auto cert = ReadPem(files.cert, "--tls-cert", PemKind::kCertificate);
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(files.key, "--tls-key", PemKind::kPrivateKey);
  if (!key.ok()) return key.status();
  options.pem_cert_chain = *cert;
  options.pem_private_key = *key;
  std::shared_ptr<grpc::ChannelCredentials> tls = grpc::SslCredentials(options);
  if (token.empty()) return tls;
  return grpc::CompositeChannelCredentials(tls, grpc::AccessTokenCredentials(token));
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream content;
  content << file.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(content.str()));
}

absl::StatusOr<TokenAuthenticator> TokenAuthenticator::FromFile(const std::string& path) {
  TokenAuthenticator authenticator;
  if (path.empty()) return authenticator;
  auto content = ReadSecretFile(path, "--auth-tokens-file");
  if (!content.ok()) return absl::InvalidArgumentError(content.status().message());
  std::istringstream lines(*content);
  for (std::string line; std::getline(lines, line);) {
    const std::string token(absl::StripAsciiWhitespace(line));
    if (!token.empty() && token[0] != '#') authenticator.tokens_.push_back(token);
  }
  if (authenticator.tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--auth-tokens-file: ", path, " has no tokens"));
  }
  return authenticator;
}

grpc::Status TokenAuthenticator::Check(const grpc::ServerContext& context) const {
  if (!enabled()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  if (header == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing bearer token (ocsctl: --token-file or $OCS_TOKEN_FILE)");
  }
  absl::string_view value(header->second.data(), header->second.size());
  if (!absl::ConsumePrefix(&value, "Bearer ")) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the authorization header is not a bearer token");
  }
  bool known = false;
  for (const std::string& token : tokens_) known |= ConstantTimeEquals(value, token);
  if (!known) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown bearer token");
  return grpc::Status::OK;
}

grpc::Status RequireClientCertificate(const grpc::ServerContext& context) {
  const auto auth = context.auth_context();
  if (auth && auth->IsPeerAuthenticated()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "workers must present a client certificate signed by the coordinator's "
                      "--tls-client-ca");
}

}  // namespace ocs::api
