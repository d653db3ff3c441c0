#include "client/secure/kerberos_proof.hpp"

#include <utility>

namespace fwgate::client {

KerberosProof::KerberosProof(ClientConfig::Kerberos mode, std::string service)
    : mode_(mode), service_(std::move(service)) {}

std::string defaultKerberosService(const std::string& server) {
  std::string host = server;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return "fwgate@" + host;
}

gss::Token KerberosProof::tokenFor(const std::string& server, const crypto::Key& channel,
                                   bool hasPassword, std::string& error) {
  using Mode = ClientConfig::Kerberos;
  if (mode_ == Mode::No || (mode_ == Mode::Auto && hasPassword)) return {};
  const auto now = std::chrono::steady_clock::now();
  if (mode_ == Mode::Auto && now < quietUntil_) return {};
  lastService_ = service_.empty() ? defaultKerberosService(server) : service_;
  if (mode_ == Mode::Auto && !gss::haveInitiatorCredentials()) {
    note_ = "no Kerberos ticket (kinit to use one)";
    quietUntil_ = now + std::chrono::seconds(10);
    return {};
  }
  auto context =
      gss::Context::initiating(lastService_, false, gss::Token(channel.begin(), channel.end()));
  gss::Step step = context.step({});
  if (step.failed() || step.token.empty()) {
    const std::string why = "Kerberos for " + lastService_ + ": " + step.error;
    if (mode_ == Mode::Yes) {
      error = why;
    } else {
      note_ = why;
      quietUntil_ = now + std::chrono::seconds(60);
    }
    return {};
  }
  note_.clear();
  return std::move(step.token);
}

}  // namespace fwgate::client
