// The agent's Unix socket (docs/control-protocol.md, "The preload library and the agent"): the
// cryptography of the preload library's control connections. For each connection of the library
// the agent holds one Noise handshake and its records: Seal turns the library's frames in clear
// into what it writes to the gateway, Open turns what it read back into frames. The Hello it
// seals carries the caller's PID and account as the kernel tells them (SO_PEERCRED), not as the
// program says, and a Timestamp. A poll loop on one thread; the library's calls are short.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <chrono>

#include "client/client_config.hpp"
#include "client/secure/kerberos_proof.hpp"
#include "crypto/noise.hpp"

namespace fwgate::client {

class AgentServer {
 public:
  // `path`: where to listen. Run by root, any local user may connect (the socket is 0666 in a
  // 0755 directory) and is told apart by SO_PEERCRED; run by a user, only that user (0700).
  // `identity`: the static key of its handshakes. The host's agent uses the host key the gateway
  // has enrolled ([control.hosts]), which makes the accounts it names the users; any other
  // agent, a key of its own run.
  AgentServer(std::string path, const crypto::KeyPair& identity);
  ~AgentServer();  // closes every connection and removes the socket
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  // Creates the directory when missing, replaces a stale socket, listens. False with `error`.
  bool open(std::string& error);
  // Serves until `stop` is set (looked at every 200 ms).
  void serve(const volatile std::sig_atomic_t& stop);
  const std::string& path() const { return path_; }
  // Kerberos for its own account's callers (client/secure/kerberos_proof.hpp); No by default.
  void setKerberos(ClientConfig::Kerberos mode, std::string service) {
    kerberos_ = KerberosProof(mode, std::move(service));
  }

  // Whether the kernel client's helper (root running this executable) may name the account and
  // PID of the program it speaks for in the Hellos it has sealed; off by default: the kernel
  // says who every caller is.
  void trustKernelHelper(bool trust) { trustHelper_ = trust; }
  // The default socket: /run/fwgate/agent.sock for root, $XDG_RUNTIME_DIR/fwgate/agent.sock for
  // a user ("" when XDG_RUNTIME_DIR is not set).
  static std::string defaultPath();

 private:
  struct Connection;
  void accept();
  // Reads what is there; answers each whole request. False: the connection is over.
  bool readFrom(Connection& c);
  std::vector<std::uint8_t> handle(Connection& c, std::uint8_t type,
                                   const std::vector<std::uint8_t>& body);
  std::vector<std::uint8_t> seal(Connection& c, const std::vector<std::uint8_t>& body);
  std::vector<std::uint8_t> open(Connection& c, const std::vector<std::uint8_t>& body);
  // The gateway's key for `server`: the pin the library sent, or one learned on first use.
  bool keyFor(const std::string& server, const std::string& pin, crypto::Key& key,
              std::string& from, std::string& error);

  std::string path_;
  int listener_ = -1;
  bool root_ = false;
  crypto::KeyPair static_;  // the static key of its handshakes
  std::map<int, std::unique_ptr<Connection>> connections_;
  std::map<std::string, crypto::Key> learned_;  // trusted on first use, per gateway
  // The gateways' resumption tickets (crypto/resumption.hpp), by gateway and key: a connection
  // with one costs no handshake.
  struct Ticket {
    crypto::Bytes bytes;
    crypto::Key resumption{};
    std::chrono::steady_clock::time_point goodUntil;
    std::uint64_t counter = 0;
  };
  std::map<std::string, Ticket> tickets_;
  KerberosProof kerberos_{ClientConfig::Kerberos::No, {}};
  bool trustHelper_ = false;
  std::map<uid_t, std::string> accounts_;  // the callers' account names, by uid
};

}  // namespace fwgate::client
