// One JSON line per session, written once when the session ends, whatever its outcome.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "policy/outcome.hpp"

namespace fwgate::gateway {

// A value held on the heap only when present: like std::optional, but an empty one costs a
// pointer, not sizeof(T). For the parts of a session record most sessions never fill (every
// relayed connection holds its record for its whole life).
template <typename T>
class Boxed {
 public:
  Boxed() = default;
  Boxed(const Boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;
  Boxed& operator=(T value) {
    p_ = std::make_unique<T>(std::move(value));
    return *this;
  }
  T& emplace() {
    p_ = std::make_unique<T>();
    return *p_;
  }
  void reset() { p_.reset(); }
  explicit operator bool() const { return p_ != nullptr; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }

 private:
  std::unique_ptr<T> p_;
};

// Filled along the way by a session; logged once at its end.
struct SessionRecord {
  std::chrono::system_clock::time_point start = std::chrono::system_clock::now();
  std::chrono::steady_clock::time_point startSteady = std::chrono::steady_clock::now();
  // When the session ended (duration_ms): set by SessionLog::write(); unset, toJson()'s call.
  std::optional<std::chrono::steady_clock::time_point> endSteady;
  std::string client;               // "ip:port"
  std::optional<std::string> user;  // authenticated user
  // How the user was proven: "password", "host" (an enrolled host's agent), "none"; empty: not
  // said (a session that never got that far).
  std::string auth;
  std::string protocol = "unknown";  // socks4, socks4a, socks5, fwc (firewall client)
  // Firewall clients only: the client host's name, the program, the local account (as claimed).
  // Boxed: a SOCKS or Web Proxy session's record, kept for the connection's life, holds a pointer
  // instead of three empty strings.
  struct Program {
    std::string host;
    std::string application;
    std::string osUser;
    bool encrypted = false;  // on the encrypted channel (`channel`)
  };
  Boxed<Program> program;
  std::string command = "none";  // connect, bind, udp, listen, accept, none
  std::string requested;         // destination as requested ("name:port" or "ip:port")
  std::string resolved;          // destination actually used ("ip:port"), peer for BIND
  std::string bound;             // the gateway's address told to the client (BIND/UDP)
  std::string rule;              // the rule that decided, if a decision was made
  std::string definition;        // the protocol definition that matched, if any
  // How the session ended: the log's `outcome`, the field readers use. Unset until a phase
  // decides it; RecordWriter settles a session that never did (client-closed, or stopped).
  std::optional<policy::Outcome> outcome;
  // The first thing the policy denied in the session (`denial`); later events never replace it.
  // Boxed: most sessions have none.
  Boxed<policy::Denial> denial;
  // The reply name or handshake outcome in the words of each protocol (SOCKS reply names, the
  // control channel's status texts): the log's `result`, kept for readers of older logs; new
  // readers use `outcome`.
  std::string result = "closed";
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
  Boxed<Http> http;

  // `program`, or empty fields if there is none.
  const Program& programOrEmpty() const;

  // The log line without its newline: a JSON object, keys sorted, invalid UTF-8 replaced by
  // U+FFFD (byte for byte what nlohmann::json's dump with error_handler_t::replace writes).
  std::string toJson() const;
  // Appends toJson() to `out`.
  void appendJson(std::string& out) const;
  // Adds a relay's byte counts and, when it ended badly, why.
  void addRelay(std::uint64_t up, std::uint64_t down, bool idleTimeout, const std::string& why);
  // Records `d` unless the session has a denial already (the first one is kept).
  void deny(policy::Denial d);
};

// The session log sink: stderr ("-") or an append-only file, reopened on SIGHUP for logrotate.
// write() only queues the record; one writer thread, started by the first write(), formats the
// queued records and writes them whole, one write(2) per batch.
class SessionLog {
 public:
  static constexpr std::size_t kDefaultQueueLimit = 65536;

  // `queueLimit`: records queued and not yet written beyond which write() drops records.
  explicit SessionLog(std::size_t queueLimit = kDefaultQueueLimit);
  // Writes everything queued, then stops the writer.
  ~SessionLog();
  SessionLog(const SessionLog&) = delete;
  SessionLog& operator=(const SessionLog&) = delete;

  // Opens `path` ("-" is stderr) on the calling thread. Records written before the call go to
  // the previous destination, those written after to the new one. Returns false and fills
  // `error` if the file cannot be opened; the previous destination stays in use.
  bool open(const std::string& path, std::string& error);
  bool reopen(std::string& error) { return open(path_, error); }
  // Stamps the session's end and queues the record: no formatting, no I/O, no system call
  // (but a futex wake for the first record after a quiet spell); the line is in the file
  // within a millisecond or so. Past the queue's limit the record is dropped and counted, and a
  // line {"time": ..., "dropped_records": N} takes the place of those dropped.
  void write(SessionRecord record);
  // Blocks until everything written before the call is in the file (or failed to be).
  void flush();
  const std::string& path() const { return path_; }
  // Before the gateway drops privileges: a file that this process created (as root) becomes the
  // service user's, so that the reopen after a SIGHUP, made as that user, can open it again.
  // A file that existed before keeps its owner. Returns false and fills `error` if fchown fails.
  bool handTo(uid_t user, gid_t group, std::string& error);

  // Records dropped because the queue was full, since construction.
  std::uint64_t droppedRecords() const;
  // Lines lost because write(2) failed (EBADF, ENOSPC, ...), since construction.
  std::uint64_t lostLines() const;

 private:
  // Queued by open(): from here on, lines go to `fd`.
  struct Reopened {
    int fd;
    std::string path;
  };
  // Stands for the records dropped while the queue was full.
  struct Dropped {
    std::chrono::system_clock::time_point first;
    std::uint64_t count;
  };
  using Item = std::variant<SessionRecord, Reopened, Dropped>;
  // The queue is a list of blocks of kBlockItems items, recycled: a push never moves what is
  // queued already, and a busy log allocates nothing.
  using Block = std::vector<Item>;

  bool startWriterLocked();
  Block& tailLocked();
  void wakeWriterLocked(bool& notify);
  void run();
  std::size_t writeBlocks(std::vector<Block>& blocks, std::string& out);
  void writeOut(std::string& out, std::size_t lines);

  const std::size_t queueLimit_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer waits for work
  std::condition_variable done_;  // flush() waits for the writer
  std::vector<Block> queue_;
  std::vector<Block> spare_;        // emptied by the writer, for tailLocked()
  std::size_t queuedRecords_ = 0;   // in queue_ and in the writer's batch
  Dropped* dropMarker_ = nullptr;   // the Dropped in queue_ that counts the current drops
  std::uint64_t queuedItems_ = 0;   // ever queued
  std::uint64_t writtenItems_ = 0;  // ever handled by the writer
  std::uint64_t dropped_ = 0;
  bool writerIdle_ = false;
  bool stop_ = false;
  std::thread writer_;
  int fd_ = 2;  // the last open()'s
  bool created_ = false;
  std::string path_ = "-";

  // The writer thread's (before it starts, open()'s under mutex_).
  int writerFd_ = 2;
  std::string writerPath_ = "-";
  bool failing_ = false;
  std::atomic<std::uint64_t> lost_{0};
};

// Writes a session's record to the log exactly once, when the writer goes: a member or a local
// declared after the record, so that it goes first. A session that ran to its end calls ended();
// one whose frame the gateway destroyed at shutdown (after shutdown_grace) never does, and is
// logged with error "the gateway stopped" and, if no phase had decided one, outcome stopped. A
// session that ended without deciding its outcome is client-closed (the client went away).
// This is the one place that settles an outcome no phase decided.
// The log outlives every session: it belongs to SharedState, which outlives the event loops.
class RecordWriter {
 public:
  RecordWriter(SessionLog& log, SessionRecord& record);
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;
  ~RecordWriter();
  void ended() { ended_ = true; }
  // The session ended by an exception (which the spawn's handler logs and counts): error "ended
  // by an internal error" unless one was recorded, outcome gateway-failed unless one was decided.
  // A writer that goes while an exception unwinds the frame says the same by itself.
  void failed();

 private:
  SessionLog& log_;
  SessionRecord& record_;
  int exceptions_;  // std::uncaught_exceptions() when made
  bool ended_ = false;
};

}  // namespace fwgate::gateway
