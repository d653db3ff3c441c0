// The user-space half of `fwgate run --kernel` (docs/kernel-client.md): what the eBPF programs
// divert arrives here on 127.0.0.1 and goes on as a libc program's would through the preload
// library. A diverted TCP connection is remoted on a control connection of its own (Hello +
// Connect, through the agent when one serves, as the library does), then its bytes are relayed
// both ways with splice(2). A query to a resolver is answered with the gateway's Resolve (names
// of the local domain table go to the resolver itself). A thread per connection and per query;
// the listening sockets on one poll loop.
#pragma once

#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/client_config.hpp"
#include "client/gateway_link.hpp"
#include "kernel/interceptor.hpp"

namespace fwgate::kernel {

class Helper {
 public:
  // `config`: the settings of the program run (its section of client.ini and the gateway's
  // tables); `timeoutMs`: how long reaching the gateway may take (FWGATE_TIMEOUT).
  Helper(Interceptor& interceptor, const client::ClientConfig& config, int timeoutMs);
  ~Helper();
  Helper(const Helper&) = delete;
  Helper& operator=(const Helper&) = delete;

  // Listens on 127.0.0.1 (TCP for connections, UDP and TCP for names), tells the interceptor
  // where, and its tables (the LAT and the resolvers). Asks the gateway once: when it does not
  // answer, remoted connects are refused at once until it does, and a line says so. False with
  // `error`.
  bool open(std::string& error);
  // A newer configuration (the cache the agent refreshes): its address table, local domains and
  // settings from now on; the gateway and the identity stay as at open(). False with `error`.
  bool refresh(const client::ClientConfig& fresh, std::string& error);
  // A line on stderr for every connection remoted, not only for failures (fwgate run --debug).
  void setVerbose(bool verbose) { verbose_ = verbose; }
  // Serves until `stop` is set (looked at every 200 ms), then waits a moment for the threads.
  void serve(const volatile std::sig_atomic_t& stop);

 private:
  void acceptConnections(int listener);
  struct Association;
  void takeDatagrams();
  void associate(std::shared_ptr<Association> a);
  void carry(int client);
  void answerDatagram(std::vector<std::uint8_t> query, sockaddr_storage from, socklen_t length);
  void answerStream(int client);
  std::vector<std::uint8_t> answer(std::span<const std::uint8_t> query);
  std::vector<std::uint8_t> askResolver(std::span<const std::uint8_t> query);
  // Whether the gateway answers; switches the interceptor's refusal, with a line when it changes.
  void gatewayAnswers(bool answers, int error);
  void watchGateway(const volatile std::sig_atomic_t& stop);
  void remember(const protocol::control::IpAddress& address, const std::string& name);
  std::string nameOf(const protocol::control::IpAddress& address);

  Interceptor& interceptor_;
  client::ClientConfig config_;  // as at open(): the gateway, and what identity_ points into
  // The tables and settings in force (config_, or what refresh() brought), under mutex_.
  std::shared_ptr<const client::ClientConfig> current_;
  std::shared_ptr<const client::ClientConfig> current();
  bool installLocal(const client::ClientConfig& config, std::string& error);
  int timeoutMs_;
  bool verbose_ = false;
  client::GatewayEndpoints gateway_;
  client::Identity identity_;  // this host's, the run's program; each connection names its own
  std::string server_;         // "host:port", for messages
  std::vector<std::uint32_t> resolvers_;
  int tcp_ = -1;
  int tcp6_ = -1;  // [::1], for native IPv6 destinations (-1: this namespace has no ::1)
  int dnsUdp_ = -1;
  int dnsTcp_ = -1;
  int udp_ = -1;
  std::map<std::string, std::shared_ptr<Association>> associations_;  // by program address
  std::mutex mutex_;                                                  // names_, the refusal
  std::map<std::string, std::string> names_;  // address bytes -> the name it answered
  // Threads that carry connections and answer queries, kept for the next one while idle.
  bool run(std::function<void()> work);
  std::condition_variable work_;  // a job, or stopping
  std::condition_variable idle_;  // a thread ended
  std::deque<std::function<void()>> jobs_;
  int threads_ = 0;               // running, under mutex_
  std::map<int, int> acceptors_;  // threads waiting in accept(), by listening socket
  int waiting_ = 0;               // of which idle (jobs_.size() of them are about to take one)
  bool stopping_ = false;
  // Accounts by uid, asked of NSS once each.
  std::string accountOf(std::uint32_t uid);
  std::map<std::uint32_t, std::string> accounts_;
};

// The IPv4 nameservers of a resolv.conf text (in network byte order), through
// client::parseResolvConf; 127.0.0.1 when it names none.
std::vector<std::uint32_t> nameserversOf(std::string_view resolvConf);

}  // namespace fwgate::kernel
