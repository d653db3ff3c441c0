// One JSON line per session, written once when the session ends, whatever its outcome.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace fwgate::gateway {

// Filled along the way by a session; logged once at its end.
struct SessionRecord {
  std::chrono::system_clock::time_point start = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point startSteady = std::chrono::steady_clock::now();
  std::string client;                // "ip:port"
  std::optional<std::string> user;   // authenticated user
  std::string protocol = "unknown";  // socks4, socks4a, socks5, fwc (firewall client)
  // Firewall clients only: the client host's name, the program, the local account (as claimed).
  std::string host;
  std::string application;
  std::string osUser;
  std::string command = "none";   // connect, bind, udp, listen, accept, none
  std::string requested;          // destination as requested ("name:port" or "ip:port")
  std::string resolved;           // destination actually used ("ip:port"), peer for BIND
  std::string bound;              // the gateway's address told to the client (BIND/UDP)
  std::string rule;               // the rule that decided, if a decision was made
  std::string definition;         // the protocol definition that matched, if any
  std::string result = "closed";  // reply name or handshake outcome
  int reply = -1;                 // SOCKS5 REP or SOCKS4 CD sent, -1 if none
  std::uint64_t bytesUp = 0;      // client -> destination
  std::uint64_t bytesDown = 0;    // destination -> client
  std::uint64_t datagramsUp = 0;  // UDP ASSOCIATE only
  std::uint64_t datagramsDown = 0;
  std::string error;  // the underlying error, human readable
  // Web Proxy requests only ("protocol": "http"): the request and the status sent to the client.
  struct Http {
    std::string method;
    std::string host;  // as in the URI, lower case
    std::uint16_t port = 0;
    std::string path;  // without the query
    int status = 0;    // 0: none sent
  };
  std::optional<Http> http;

  std::string toJson() const;
  // Adds a relay's byte counts and, when it ended badly, why.
  void addRelay(std::uint64_t up, std::uint64_t down, bool idleTimeout, const std::string& why);
};

// The session log sink: stderr ("-") or an append-only file, reopened on SIGHUP for logrotate.
class SessionLog {
 public:
  SessionLog() = default;
  ~SessionLog();
  SessionLog(const SessionLog&) = delete;
  SessionLog& operator=(const SessionLog&) = delete;

  // Opens `path` ("-" is stderr). Returns false and fills `error` if the file cannot be opened;
  // the previous destination stays in use.
  bool open(const std::string& path, std::string& error);
  bool reopen(std::string& error) { return open(path_, error); }
  void write(const SessionRecord& record);
  const std::string& path() const { return path_; }
  // Before the gateway drops privileges: a file that this process created (as root) becomes the
  // service user's, so that the reopen after a SIGHUP, made as that user, can open it again.
  // A file that existed before keeps its owner. Returns false and fills `error` if fchown fails.
  bool handTo(uid_t user, gid_t group, std::string& error);

 private:
  std::mutex mutex_;
  int fd_ = 2;
  bool created_ = false;
  std::string path_ = "-";
};

}  // namespace fwgate::gateway
