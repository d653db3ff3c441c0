#include "gateway/session_log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string_view>

namespace fwgate::gateway {

namespace {

// A batch is written in pieces of about this size, each a whole number of lines.
constexpr std::size_t kWriteChunk = 256 * 1024;
// Items per block of the queue (a SessionRecord is some 650 bytes), and the empty blocks the
// writer keeps for reuse: a queue of kSpareBlocks * kBlockItems records needs no allocation.
constexpr std::size_t kBlockItems = 64;
constexpr std::size_t kSpareBlocks = 64;
// Having caught up, the writer naps kNap at a time, kNaps times, before it sleeps until woken:
// while it naps, write() need not wake it (a futex call, some microseconds, would cost the
// caller more than the rest of write() at a few thousand records a second); a line waits at
// most kNap. The first record after a quiet spell wakes it at once.
constexpr auto kNap = std::chrono::milliseconds(1);
constexpr int kNaps = 100;

// The lock is held for a push at a time: a contender spins a little before it sleeps on it
// (and makes its holder pay for a futex wake).
void lockSpinning(std::unique_lock<std::mutex>& lock) {
  for (int i = 0; i < 100; ++i) {
    if (lock.try_lock()) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  lock.lock();
}

std::string isoTimeSlow(std::chrono::system_clock::time_point t) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

// "2024-05-01T12:34:56.789Z" (UTC, milliseconds), with the calendar of <chrono> rather than
// gmtime_r, which takes glibc's time zone lock.
void appendIsoTime(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto secs = time_point_cast<seconds>(t);
  const auto day = floor<days>(secs);
  const year_month_day date{day};
  const int y = static_cast<int>(date.year());
  if (t < system_clock::time_point{} || y > 9999) {
    out += isoTimeSlow(t);
    return;
  }
  const hh_mm_ss clock{secs - day};
  const auto ms = duration_cast<milliseconds>(t - secs).count();
  char buf[24];
  char* p = buf;
  const auto put = [&p](unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    p += width;
  };
  put(static_cast<unsigned>(y), 4);
  *p++ = '-';
  put(static_cast<unsigned>(date.month()), 2);
  *p++ = '-';
  put(static_cast<unsigned>(date.day()), 2);
  *p++ = 'T';
  put(static_cast<unsigned>(clock.hours().count()), 2);
  *p++ = ':';
  put(static_cast<unsigned>(clock.minutes().count()), 2);
  *p++ = ':';
  put(static_cast<unsigned>(clock.seconds().count()), 2);
  *p++ = '.';
  put(static_cast<unsigned>(ms), 3);
  *p++ = 'Z';
  out.append(buf, static_cast<std::size_t>(p - buf));
}

template <typename Integer>
void appendNumber(std::string& out, Integer value) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// Bytes a JSON string can carry as they are: printable ASCII but '"' and '\\'.
constexpr bool plain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// At a byte >= 0x80: how many bytes form a well-formed UTF-8 sequence here (`valid`), or how
// many to replace by one U+FFFD: the bytes before the one that cannot continue the sequence
// (that byte is looked at again) or, at a byte that cannot start one, that byte alone. The
// decoder nlohmann::json's serializer uses (Bjoern Hoehrmann's DFA) cuts the same way.
std::size_t utf8Sequence(const unsigned char* p, const unsigned char* end, bool& valid) {
  const unsigned char c = *p;
  std::size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    valid = false;
    return 1;
  }
  for (std::size_t k = 1; k <= need; ++k) {
    if (p + k == end || p[k] < lo || p[k] > hi) {
      valid = false;
      return k;
    }
    lo = 0x80;
    hi = 0xBF;
  }
  valid = true;
  return need + 1;
}

// A JSON string as nlohmann::json::dump(-1, ' ', false, error_handler_t::replace) writes it.
void appendString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = p + text.size();
  while (p < end) {
    const auto* run = p;
    while (p < end && plain(*p)) ++p;
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      bool valid = false;
      const std::size_t n = utf8Sequence(p, end, valid);
      if (valid) {
        out.append(reinterpret_cast<const char*>(p), n);
      } else {
        out.append("\xEF\xBF\xBD");
      }
      p += n;
      continue;
    }
    ++p;
    switch (c) {
      case '\b':
        out.append("\\b");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      default: {
        const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escaped, sizeof escaped);
      }
    }
  }
  out.push_back('"');
}

// One member of the object: `,"key":` (the first without the comma).
struct Members {
  std::string& out;
  bool first = true;
  void key(std::string_view name) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out.append(name);
    out.append("\":");
  }
  void string(std::string_view name, std::string_view value) {
    key(name);
    appendString(out, value);
  }
  template <typename Integer>
  void number(std::string_view name, Integer value) {
    key(name);
    appendNumber(out, value);
  }
};

void appendDroppedLine(std::string& out, std::chrono::system_clock::time_point first,
                       std::uint64_t count) {
  out.append("{\"time\":\"");
  appendIsoTime(out, first);
  out.append("\",\"dropped_records\":");
  appendNumber(out, count);
  out.append("}\n");
}

}  // namespace

std::string SessionRecord::toJson() const {
  std::string out;
  out.reserve(512);
  appendJson(out);
  return out;
}

const SessionRecord::Program& SessionRecord::programOrEmpty() const {
  static const Program kNone;
  return program ? *program : kNone;
}

void SessionRecord::appendJson(std::string& out) const {
  const auto end = endSteady ? *endSteady : std::chrono::steady_clock::now();
  const bool fwc = protocol == "fwc";
  const bool udp = command == "udp";
  // nlohmann::json's objects are std::maps: the keys come sorted, so they are written sorted.
  Members m{out};
  out.push_back('{');
  const Program& who = programOrEmpty();
  if (fwc) m.string("application", who.application);
  if (!auth.empty()) m.string("auth", auth);
  if (!bound.empty()) m.string("bound", bound);
  m.number("bytes_down", bytesDown);
  m.number("bytes_up", bytesUp);
  if (fwc) m.string("channel", who.encrypted ? "encrypted" : "clear");
  m.string("client", client);
  m.string("command", command);
  if (udp) {
    m.number("datagrams_down", datagramsDown);
    m.number("datagrams_up", datagramsUp);
  }
  if (!definition.empty()) m.string("definition", definition);
  if (denial) {
    m.key("denial");
    Members d{out};
    out.push_back('{');
    d.string("definition", denial->definition);
    d.string("direction", policy::toString(denial->direction));
    d.string("host", denial->host);
    d.key("peer");
    out.append(denial->peer ? "true" : "false");
    d.number("port", denial->port);
    d.string("reason", policy::toToken(denial->reason));
    d.string("rule", denial->rule);
    d.string("transport", policy::toString(denial->transport));
    out.push_back('}');
  }
  m.number("duration_ms",
           std::chrono::duration_cast<std::chrono::milliseconds>(end - startSteady).count());
  if (!error.empty()) m.string("error", error);
  if (http) {
    m.string("host", http->host);  // a Web Proxy request's host wins over a firewall client's
  } else if (fwc) {
    m.string("host", who.host);
  }
  if (http) m.string("method", http->method);
  if (fwc) m.string("os_user", who.osUser);
  if (outcome) m.string("outcome", policy::toToken(*outcome));
  if (http) {
    m.string("path", http->path);
    m.number("port", http->port);
  }
  m.string("protocol", protocol);
  m.number("reply", reply);
  m.string("requested", requested);
  m.string("resolved", resolved);
  m.string("result", result);
  m.string("rule", rule);
  if (http) m.number("status", http->status);
  m.key("time");
  out.push_back('"');
  appendIsoTime(out, start);
  out.push_back('"');
  m.key("user");
  if (user) {
    appendString(out, *user);
  } else {
    out.append("null");
  }
  out.push_back('}');
}

void SessionRecord::addRelay(std::uint64_t up, std::uint64_t down, bool idleTimeout,
                             const std::string& why) {
  bytesUp += up;
  bytesDown += down;
  if (idleTimeout) {
    error = "idle timeout";
  } else if (!why.empty()) {
    error = why;
  }
}

void SessionRecord::deny(policy::Denial d) {
  if (!denial) denial = std::move(d);
}

RecordWriter::RecordWriter(SessionLog& log, SessionRecord& record)
    : log_(log), record_(record), exceptions_(std::uncaught_exceptions()) {}

void RecordWriter::failed() {
  ended_ = true;
  if (!record_.outcome) record_.outcome = policy::Outcome::GatewayFailed;
  if (record_.error.empty()) record_.error = "ended by an internal error";
}

RecordWriter::~RecordWriter() {
  if (!ended_ && std::uncaught_exceptions() > exceptions_) failed();
  if (!ended_) {
    if (!record_.outcome) record_.outcome = policy::Outcome::Stopped;
    if (record_.error.empty()) record_.error = "the gateway stopped";
  }
  if (!record_.outcome) record_.outcome = policy::Outcome::ClientClosed;
  try {
    log_.write(std::move(record_));
  } catch (const std::exception&) {  // out of memory: the line is lost, not the process
  }
}

SessionLog::SessionLog(std::size_t queueLimit) : queueLimit_(queueLimit) {}

SessionLog::~SessionLog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) writer_.join();
  if (writerFd_ > 2) ::close(writerFd_);
}

bool SessionLog::open(const std::string& path, std::string& error) {
  int fd = 2;
  bool created = false;
  if (path != "-") {
    // O_EXCL first, to know whether this open made the file (handTo).
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
      error = path + ": " + std::strerror(errno);
      return false;
    }
  }
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (writer_.joinable()) {
      // In the queue: what was written before goes to the old file.
      tailLocked().emplace_back(Reopened{fd, path});
      ++queuedItems_;
      wakeWriterLocked(notify);
    } else {
      if (writerFd_ > 2) ::close(writerFd_);
      writerFd_ = fd;
      writerPath_ = path;
    }
    fd_ = fd;
    created_ = created;
    path_ = path;
  }
  if (notify) wake_.notify_one();
  return true;
}

bool SessionLog::handTo(uid_t user, gid_t group, std::string& error) {
  std::lock_guard lock(mutex_);
  if (!created_ || fd_ <= 2) return true;
  if (::fchown(fd_, user, group) != 0) {
    error = path_ + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

void SessionLog::write(SessionRecord record) {
  if (!record.endSteady) record.endSteady = std::chrono::steady_clock::now();
  bool notify = false;
  {
    std::unique_lock lock(mutex_, std::defer_lock);
    lockSpinning(lock);
    if (!writer_.joinable() && !startWriterLocked()) {
      // No thread to be had: write this line here, as before there was one.
      std::string out;
      record.appendJson(out);
      out.push_back('\n');
      writeOut(out, 1);
      return;
    }
    if (queuedRecords_ >= queueLimit_) {
      ++dropped_;
      if (dropMarker_ != nullptr) {
        ++dropMarker_->count;
        return;
      }
      auto& item = tailLocked().emplace_back(Dropped{std::chrono::system_clock::now(), 1});
      dropMarker_ = &std::get<Dropped>(item);
    } else {
      tailLocked().emplace_back(std::in_place_type<SessionRecord>, std::move(record));
      ++queuedRecords_;
    }
    ++queuedItems_;
    wakeWriterLocked(notify);
  }
  if (notify) wake_.notify_one();
}

void SessionLog::flush() {
  std::unique_lock lock(mutex_);
  if (!writer_.joinable()) return;
  const std::uint64_t target = queuedItems_;
  writerIdle_ = false;
  wake_.notify_one();  // napping or asleep
  done_.wait(lock, [&] { return writtenItems_ >= target; });
}

std::uint64_t SessionLog::droppedRecords() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

std::uint64_t SessionLog::lostLines() const {
  return lost_.load(std::memory_order_relaxed);
}

// Started by the first write(), not at construction: the gateway has dropped its privileges
// by then. Signals stay with the event loops: the thread starts with all of them blocked.
bool SessionLog::startWriterLocked() {
  sigset_t all;
  sigset_t previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    writer_ = std::thread([this] { run(); });
  } catch (const std::system_error&) {
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (!writer_.joinable()) return false;
  ::pthread_setname_np(writer_.native_handle(), "fwgate-log");
  return true;
}

// The last block of the queue, with room for one more item.
SessionLog::Block& SessionLog::tailLocked() {
  if (queue_.empty() || queue_.back().size() == kBlockItems) {
    if (spare_.empty()) {
      Block block;
      block.reserve(kBlockItems);
      queue_.push_back(std::move(block));
    } else {
      queue_.push_back(std::move(spare_.back()));
      spare_.pop_back();
    }
  }
  return queue_.back();
}

// Only a writer asleep (not napping, not busy) is woken.
void SessionLog::wakeWriterLocked(bool& notify) {
  notify = writerIdle_;
  writerIdle_ = false;
}

void SessionLog::run() {
  std::vector<Block> blocks;
  std::string out;
  std::unique_lock lock(mutex_);
  for (;;) {
    for (int naps = 0; queue_.empty() && !stop_; ++naps) {
      if (naps < kNaps) {
        wake_.wait_for(lock, kNap);
      } else {
        writerIdle_ = true;
        wake_.wait(lock);
      }
    }
    writerIdle_ = false;
    if (queue_.empty()) return;  // stopped, everything written
    blocks.swap(queue_);
    dropMarker_ = nullptr;
    const std::uint64_t upTo = queuedItems_;
    lock.unlock();

    const std::size_t records = writeBlocks(blocks, out);
    if (out.capacity() > 4 * kWriteChunk) std::string().swap(out);

    lockSpinning(lock);
    queuedRecords_ -= records;
    writtenItems_ = upTo;
    while (!blocks.empty() && spare_.size() < kSpareBlocks) {
      spare_.push_back(std::move(blocks.back()));
      blocks.pop_back();
    }
    done_.notify_all();
    if (!blocks.empty()) {  // more than kSpareBlocks: memory back after a burst
      lock.unlock();
      blocks.clear();
      lock.lock();
    }
  }
}

// Formats the blocks' items, emptying the blocks, and writes them, in pieces cut at line ends.
// Returns the records they held.
std::size_t SessionLog::writeBlocks(std::vector<Block>& blocks, std::string& out) {
  std::size_t records = 0;
  std::size_t lines = 0;
  out.clear();
  for (auto& block : blocks) {
    for (auto& item : block) {
      if (auto* record = std::get_if<SessionRecord>(&item)) {
        ++records;
        const std::size_t mark = out.size();
        try {
          record->appendJson(out);
          out.push_back('\n');
          ++lines;
        } catch (const std::exception&) {  // out of memory: that line is lost, counted
          out.resize(mark);
          lost_.fetch_add(1, std::memory_order_relaxed);
        }
      } else if (const auto* dropped = std::get_if<Dropped>(&item)) {
        appendDroppedLine(out, dropped->first, dropped->count);
        ++lines;
      } else if (const auto* reopened = std::get_if<Reopened>(&item)) {
        writeOut(out, lines);
        lines = 0;
        if (writerFd_ > 2) ::close(writerFd_);
        writerFd_ = reopened->fd;
        writerPath_ = reopened->path;
      }
      if (out.size() >= kWriteChunk) {
        writeOut(out, lines);
        lines = 0;
      }
    }
    block.clear();
  }
  writeOut(out, lines);
  return records;
}

// Writes `out` (`lines` whole lines) to the current file and empties it. A failed write(2)
// loses those lines, counts them and says so once; the writer carries on.
void SessionLog::writeOut(std::string& out, std::size_t lines) {
  const char* p = out.data();
  std::size_t left = out.size();
  int error = 0;
  while (left > 0) {
    const ssize_t n = ::write(writerFd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  out.clear();
  if (error != 0) {
    lost_.fetch_add(lines, std::memory_order_relaxed);
    if (!failing_) spdlog::error("session log {}: write: {}", writerPath_, std::strerror(error));
    failing_ = true;
  } else if (failing_ && lines > 0) {
    failing_ = false;
    spdlog::warn("session log {}: writing again; lines lost so far: {}", writerPath_,
                 lost_.load(std::memory_order_relaxed));
  }
}

}  // namespace fwgate::gateway
