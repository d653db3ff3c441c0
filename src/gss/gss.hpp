// Kerberos 5 through MIT krb5's GSS-API, as the gateway and the fwgate commands use it: the
// acceptor's keys come from a keytab, the initiator's from the user's credential cache (kinit).
// One exchange is a Context, stepped with the peer's tokens until it is done or has failed; an
// established context wraps and unwraps RFC 1961's protection-level message. The GSS-API types
// stay in gss.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::gss {

using Token = std::vector<std::uint8_t>;

// The gateway's keys: every service principal of a keytab (rcmd/HOST for SOCKS 5, HTTP/HOST for
// the Web Proxy, fwgate/HOST for the control channel; a client names which one it asks for).
class Acceptor {
 public:
  // The keytab at `path`; null, with `error` set, when it cannot be read or holds no key.
  static std::shared_ptr<const Acceptor> fromKeytab(const std::string& path, std::string& error);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  const std::string& keytab() const { return keytab_; }
  // The principals the keytab holds ("rcmd/10.1.0.1@EXAMPLE.TEST"), for the log.
  const std::vector<std::string>& principals() const { return principals_; }

 private:
  Acceptor() = default;
  friend class Context;
  struct Credential;
  std::unique_ptr<Credential> credential_;
  std::string keytab_;
  std::vector<std::string> principals_;
};

struct Step {
  enum class State : std::uint8_t { Continue, Done, Failed };
  State state = State::Failed;
  Token token;        // to send to the peer (may be empty)
  std::string peer;   // Done, acceptor: the client's principal ("alice@EXAMPLE.TEST")
  std::string error;  // Failed: what GSS-API says
  bool done() const { return state == State::Done; }
  bool failed() const { return state == State::Failed; }
};

// One security context: an acceptor's (from a client token) or an initiator's (towards a
// service). Not copyable; not for two threads at once.
class Context {
 public:
  // Accepts with `acceptor`'s keys. `binding`: application data of channel bindings both sides
  // give (empty: none).
  static Context accepting(std::shared_ptr<const Acceptor> acceptor, Token binding = {});
  // Initiates towards `service` ("fwgate@gateway.example": host-based) with the default
  // credential cache; `mutual`: ask the acceptor to prove itself too.
  static Context initiating(std::string service, bool mutual, Token binding = {});
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;

  // The next step, given the peer's token (empty for an initiator's first). After Done or
  // Failed, further steps fail.
  Step step(std::span<const std::uint8_t> peerToken);
  bool established() const;

  // RFC 1961's per-message protection of the protection-level octet: integrity only, no
  // confidentiality (section 4: conf_req_flag false). Empty on failure.
  Token wrap(std::span<const std::uint8_t> message) const;
  // Unwraps `token`; nullopt-like: `ok` false when it does not verify.
  Token unwrap(std::span<const std::uint8_t> token, bool& ok) const;

 private:
  struct State;
  explicit Context(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// True when the default credential cache holds a ticket-granting ticket this process may use
// (after kinit): what the client's Kerberos = auto asks.
bool haveInitiatorCredentials();

}  // namespace fwgate::gss
