// The session log: the formatter against nlohmann::json, and the queue and its writer thread.
#include "gateway/session_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fwgate::gateway {
namespace {

using namespace std::chrono_literals;

// The line as SessionRecord::toJson() built it with nlohmann::json before the hand formatter.
std::string referenceJson(const SessionRecord& r) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(r.start);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r.start - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char time[64];
  std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  nlohmann::json j;
  j["time"] = time;
  j["duration_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(*r.endSteady - r.startSteady).count();
  j["client"] = r.client;
  j["user"] = r.user ? nlohmann::json(*r.user) : nlohmann::json(nullptr);
  if (!r.auth.empty()) j["auth"] = r.auth;
  j["protocol"] = r.protocol;
  if (r.protocol == "fwc") {
    j["host"] = r.program ? r.program->host : "";
    j["application"] = r.program ? r.program->application : "";
    j["os_user"] = r.program ? r.program->osUser : "";
    j["channel"] = r.program && r.program->encrypted ? "encrypted" : "clear";
  }
  if (r.http) {
    j["method"] = r.http->method;
    j["host"] = r.http->host;
    j["port"] = r.http->port;
    j["path"] = r.http->path;
    j["status"] = r.http->status;
  }
  j["command"] = r.command;
  j["requested"] = r.requested;
  j["resolved"] = r.resolved;
  if (!r.bound.empty()) j["bound"] = r.bound;
  j["rule"] = r.rule;
  if (!r.definition.empty()) j["definition"] = r.definition;
  j["result"] = r.result;
  j["reply"] = r.reply;
  j["bytes_up"] = r.bytesUp;
  j["bytes_down"] = r.bytesDown;
  if (r.command == "udp") {
    j["datagrams_up"] = r.datagramsUp;
    j["datagrams_down"] = r.datagramsDown;
  }
  if (!r.error.empty()) j["error"] = r.error;
  if (r.outcome) j["outcome"] = std::string(policy::toToken(*r.outcome));
  if (r.denial) {
    nlohmann::json d;
    d["reason"] = std::string(policy::toToken(r.denial->reason));
    d["transport"] = std::string(policy::toString(r.denial->transport));
    d["direction"] = std::string(policy::toString(r.denial->direction));
    d["port"] = r.denial->port;
    d["definition"] = r.denial->definition;
    d["rule"] = r.denial->rule;
    d["host"] = r.denial->host;
    d["peer"] = r.denial->peer;
    j["denial"] = d;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Strings of every kind: any byte value, valid multi-byte UTF-8, cut and broken sequences.
class Strings {
 public:
  explicit Strings(std::uint32_t seed) : rng_(seed) {}

  std::string next() {
    std::string s;
    const int pieces = pick(0, 12);
    for (int i = 0; i < pieces; ++i) {
      switch (pick(0, 5)) {
        case 0:  // any byte
          s.push_back(static_cast<char>(pick(0, 255)));
          break;
        case 1:  // control characters, quotes, backslashes
          s.push_back("\x00\x01\x08\x09\x0a\x0c\x0d\x1f\x7f\"\\/"[pick(0, 11)]);
          break;
        case 2:  // plain text
          s += "example.com:443";
          break;
        case 3:  // a valid code point, 1 to 4 bytes (surrogates stand for invalid ones)
          appendUtf8(s, static_cast<std::uint32_t>(pick(0, 0x10FFFF)));
          break;
        case 4: {  // a valid code point cut short
          std::string cp;
          appendUtf8(cp, static_cast<std::uint32_t>(pick(0x80, 0x10FFFF)));
          s += cp.substr(0, static_cast<std::size_t>(pick(1, static_cast<int>(cp.size()))));
          break;
        }
        default:  // lead and continuation bytes
          s.push_back(static_cast<char>(pick(0x80, 0xFF)));
          s.push_back(static_cast<char>(pick(0x80, 0xBF)));
          break;
      }
    }
    return s;
  }

  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::uint64_t any64() { return rng_(); }
  std::mt19937_64& rng() { return rng_; }

 private:
  static void appendUtf8(std::string& s, std::uint32_t cp) {
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::mt19937_64 rng_;
};

SessionRecord randomRecord(Strings& g) {
  static const char* const kProtocols[] = {"socks4", "socks4a", "socks5", "fwc", "http", "unknown"};
  static const char* const kCommands[] = {"connect", "bind", "udp", "listen", "accept", "none"};
  SessionRecord r;
  // 1970 .. 2255 (system_clock counts nanoseconds in 64 bits), milliseconds and below.
  r.start = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::microseconds(static_cast<std::int64_t>(g.any64() % 9000000000000000ull))));
  if (g.pick(0, 3) == 0) r.start = std::chrono::system_clock::now();
  r.startSteady = std::chrono::steady_clock::now();
  r.endSteady = r.startSteady + std::chrono::microseconds(g.pick(0, 1 << 30));
  const auto maybe = [&g]() { return g.pick(0, 2) == 0 ? std::string() : g.next(); };
  r.client = g.next();
  if (g.pick(0, 1) == 0) r.user = g.next();
  r.auth = maybe();
  r.protocol = g.pick(0, 3) == 0 ? g.next() : kProtocols[g.pick(0, 5)];
  if (g.pick(0, 3) != 0)
    r.program = SessionRecord::Program{maybe(), maybe(), maybe(), g.pick(0, 1) == 1};
  r.command = g.pick(0, 5) == 0 ? g.next() : kCommands[g.pick(0, 5)];
  r.requested = maybe();
  r.resolved = maybe();
  r.bound = maybe();
  r.rule = maybe();
  r.definition = maybe();
  r.result = g.next();
  r.reply = g.pick(-1, 255);
  r.bytesUp = g.pick(0, 1) == 0 ? g.any64() : static_cast<std::uint64_t>(g.pick(0, 1000));
  r.bytesDown = g.any64() >> g.pick(0, 63);
  r.datagramsUp = g.any64() >> g.pick(0, 63);
  r.datagramsDown = g.any64() >> g.pick(0, 63);
  r.error = maybe();
  if (g.pick(0, 3) != 0) r.outcome = policy::kOutcomes[g.pick(0, std::size(policy::kOutcomes) - 1)];
  if (g.pick(0, 2) == 0) {
    policy::Denial& d = r.denial.emplace();
    d.reason = policy::kReasons[g.pick(0, std::size(policy::kReasons) - 1)];
    d.transport = g.pick(0, 1) == 0 ? policy::Transport::Tcp : policy::Transport::Udp;
    d.direction = static_cast<policy::Direction>(g.pick(0, 5));
    d.port = static_cast<std::uint16_t>(g.pick(0, 65535));
    d.definition = maybe();
    d.rule = maybe();
    d.host = maybe();
    d.peer = g.pick(0, 1) == 0;
  }
  if (g.pick(0, 2) == 0) {
    r.http = SessionRecord::Http{g.next(), g.next(), static_cast<std::uint16_t>(g.pick(0, 65535)),
                                 g.next(), g.pick(-1, 999)};
  }
  return r;
}

TEST(SessionLogFormat, EqualsNlohmannForEveryRecordShape) {
  Strings g(20240501);
  for (int i = 0; i < 600; ++i) {
    const SessionRecord r = randomRecord(g);
    ASSERT_EQ(r.toJson(), referenceJson(r)) << "record " << i;
  }
}

TEST(SessionLogFormat, EqualsNlohmannForEveryByteAndEveryPair) {
  SessionRecord r;
  r.endSteady = r.startSteady;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      r.requested = {static_cast<char>(a), static_cast<char>(b)};
      r.error = {static_cast<char>(b), static_cast<char>(a), 'x', static_cast<char>(0xBF)};
      ASSERT_EQ(r.toJson(), referenceJson(r)) << a << " " << b;
    }
  }
}

TEST(SessionLogFormat, EveryShapeAsTheAdministratorReadsIt) {
  SessionRecord r;
  r.start = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714566896789));
  r.endSteady = r.startSteady + 1500ms;
  r.client = "10.0.0.5:40000";
  r.protocol = "fwc";
  r.program = SessionRecord::Program{"ws1", "curl", "alice", true};
  r.command = "udp";
  r.requested = "\x1f\"\\\b\f\n\r\t";
  r.bound = "10.0.0.1:5000";
  r.definition = "dns";
  r.error = "bad \xff";
  EXPECT_EQ(r.toJson(),
            R"({"application":"curl","bound":"10.0.0.1:5000","bytes_down":0,"bytes_up":0,)"
            R"("channel":"encrypted","client":"10.0.0.5:40000","command":"udp",)"
            R"("datagrams_down":0,"datagrams_up":0,)"
            R"("definition":"dns","duration_ms":1500,"error":"bad )"
            "\xEF\xBF\xBD"
            R"(","host":"ws1","os_user":"alice","protocol":"fwc","reply":-1,)"
            R"("requested":"\u001f\"\\\b\f\n\r\t","resolved":"","result":"closed","rule":"",)"
            R"("time":"2024-05-01T12:34:56.789Z","user":null})");
  EXPECT_EQ(r.toJson(), referenceJson(r));

  // The structured outcome and the first denial: a datagram no definition covers.
  r.outcome = policy::Outcome::Succeeded;
  r.deny({policy::Reason::NoDefinition, policy::Transport::Udp, policy::Direction::Send, 9999, "",
          "internal clients", "203.0.113.7", false});
  r.deny({policy::Reason::Rule, policy::Transport::Udp, policy::Direction::Send, 53, "DNS",
          "no dns", "203.0.113.8", false});  // a later one: the first is kept
  r.error.clear();
  r.requested.clear();
  EXPECT_EQ(r.toJson(),
            R"({"application":"curl","bound":"10.0.0.1:5000","bytes_down":0,"bytes_up":0,)"
            R"("channel":"encrypted","client":"10.0.0.5:40000","command":"udp",)"
            R"("datagrams_down":0,"datagrams_up":0,)"
            R"("definition":"dns","denial":{"definition":"","direction":"send",)"
            R"("host":"203.0.113.7","peer":false,"port":9999,"reason":"no-definition",)"
            R"("rule":"internal clients","transport":"udp"},"duration_ms":1500,)"
            R"("host":"ws1","os_user":"alice","outcome":"succeeded","protocol":"fwc","reply":-1,)"
            R"("requested":"","resolved":"","result":"closed","rule":"",)"
            R"("time":"2024-05-01T12:34:56.789Z","user":null})");
  EXPECT_EQ(r.toJson(), referenceJson(r));
}

// A directory of its own, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "fwgate-session-log-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
};

std::vector<std::string> readLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

SessionRecord numbered(int thread, std::uint64_t n) {
  SessionRecord r;
  r.client = "127.0.0.1:" + std::to_string(thread);
  r.bytesUp = n;
  r.requested = "a destination name long enough not to fit in a short string:443";
  return r;
}

TEST(SessionLog, ARecordWriterWritesOnceAndSettlesTheOutcome) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SessionLog log;
  std::string error;
  ASSERT_TRUE(log.open(dir.file("sessions.log"), error)) << error;
  {
    SessionRecord ended;  // a session that ran to its end without deciding: the client left
    RecordWriter writer(log, ended);
    writer.ended();
  }
  {
    SessionRecord denied;
    denied.outcome = policy::Outcome::Denied;
    RecordWriter writer(log, denied);
    writer.ended();
  }
  {
    SessionRecord cut;  // destroyed by the gateway's stop, in the middle of its handshake
    RecordWriter writer(log, cut);
  }
  {
    SessionRecord relaying;  // destroyed by the gateway's stop while it relayed
    relaying.outcome = policy::Outcome::Succeeded;
    relaying.error = "idle timeout";
    RecordWriter writer(log, relaying);
  }
  log.flush();
  const auto lines = readLines(dir.file("sessions.log"));
  ASSERT_EQ(lines.size(), 4u);
  const auto at = [&](std::size_t i) { return nlohmann::json::parse(lines[i]); };
  EXPECT_EQ(at(0)["outcome"], "client-closed");
  EXPECT_FALSE(at(0).contains("error"));
  EXPECT_EQ(at(1)["outcome"], "denied");
  EXPECT_EQ(at(2)["outcome"], "stopped");
  EXPECT_EQ(at(2)["error"], "the gateway stopped");
  EXPECT_EQ(at(3)["outcome"], "succeeded");
  EXPECT_EQ(at(3)["error"], "idle timeout");
}

TEST(SessionLog, EightThreadsLinesArriveWholeInOrderPerThread) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  constexpr int kThreads = 8;
  constexpr std::uint64_t kEach = 20000;
  SessionLog log(kThreads * kEach);
  std::string error;
  ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (std::uint64_t n = 0; n < kEach; ++n) log.write(numbered(t, n));
    });
  }
  for (auto& t : threads) t.join();
  log.flush();
  EXPECT_EQ(log.droppedRecords(), 0u);
  const auto lines = readLines(dir.file("s.log"));
  ASSERT_EQ(lines.size(), kThreads * kEach);
  std::vector<std::uint64_t> next(kThreads, 0);
  for (const auto& line : lines) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    const std::string client = j["client"];
    const int t = std::stoi(client.substr(client.find(':') + 1));
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    ASSERT_EQ(j["bytes_up"].get<std::uint64_t>(), next[t]) << "thread " << t;
    ++next[t];
  }
}

TEST(SessionLog, ReopenSendsEarlierLinesToTheOldFileLaterOnesToTheNew) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SessionLog log;
  std::string error;
  ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
  constexpr int kEach = 5000;
  for (int round = 0; round < 3; ++round) {
    for (int n = 0; n < kEach; ++n) log.write(numbered(round, n));
    // As logrotate does: rename, then SIGHUP.
    ASSERT_EQ(
        std::rename(dir.file("s.log").c_str(), dir.file("s.log." + std::to_string(round)).c_str()),
        0);
    ASSERT_TRUE(log.reopen(error)) << error;
  }
  log.flush();
  for (int round = 0; round < 3; ++round) {
    const auto lines = readLines(dir.file("s.log." + std::to_string(round)));
    ASSERT_EQ(lines.size(), static_cast<std::size_t>(kEach)) << round;
    for (int n = 0; n < kEach; ++n) {
      const auto j = nlohmann::json::parse(lines[n]);
      ASSERT_EQ(j["client"], "127.0.0.1:" + std::to_string(round));
      ASSERT_EQ(j["bytes_up"], n);
    }
  }
  EXPECT_TRUE(readLines(dir.file("s.log")).empty());
}

TEST(SessionLog, FlushWaitsForTheLinesAndDestructionWritesTheRest) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::string error;
  {
    SessionLog log;
    log.flush();  // nothing written yet
    ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
    for (int n = 0; n < 1000; ++n) log.write(numbered(0, n));
    log.flush();
    EXPECT_EQ(readLines(dir.file("s.log")).size(), 1000u);
    for (int n = 1000; n < 3000; ++n) log.write(numbered(0, n));
  }
  const auto lines = readLines(dir.file("s.log"));
  ASSERT_EQ(lines.size(), 3000u);
  EXPECT_EQ(nlohmann::json::parse(lines.back())["bytes_up"], 2999);
}

TEST(SessionLog, AQuietLogWritesALineAtOnce) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SessionLog log;
  std::string error;
  ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
  for (int n = 0; n < 5; ++n) {
    log.write(numbered(0, n));
    const auto wrote = std::chrono::steady_clock::now();
    std::size_t seen = 0;
    for (int i = 0; i < 20000 && seen <= static_cast<std::size_t>(n); ++i) {
      seen = readLines(dir.file("s.log")).size();
      if (seen <= static_cast<std::size_t>(n)) std::this_thread::sleep_for(50us);
    }
    const auto waited = std::chrono::steady_clock::now() - wrote;
    EXPECT_EQ(seen, static_cast<std::size_t>(n + 1));
    EXPECT_LT(waited, 100ms) << "line " << n;
    std::this_thread::sleep_for(20ms);  // the writer goes back to sleep
  }
}

// A FIFO nobody reads yet: the writer blocks on it, as on a very slow disk.
class StuckFifo {
 public:
  explicit StuckFifo(const std::string& path) : path_(path) {
    if (::mkfifo(path.c_str(), 0600) == 0) read_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~StuckFifo() {
    if (read_ >= 0) ::close(read_);
  }
  bool ok() const { return read_ >= 0; }
  // Everything until the last writer closes, or 20 s.
  std::string drain() {
    std::string text;
    const auto until = std::chrono::steady_clock::now() + 20s;
    char buf[65536];
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{read_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(read_, buf, sizeof buf);
      if (n == 0) break;
      if (n > 0) text.append(buf, static_cast<std::size_t>(n));
    }
    return text;
  }

 private:
  std::string path_;
  int read_ = -1;
};

std::vector<nlohmann::json> parseLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(SessionLog, AWriterFarBehindDropsAndCountsThenSaysHowMany) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  StuckFifo fifo(dir.file("fifo"));
  ASSERT_TRUE(fifo.ok());
  std::string text;
  std::uint64_t written = 0;
  std::uint64_t dropped = 0;
  std::optional<SessionLog> log;
  log.emplace(8);
  std::string error;
  ASSERT_TRUE(log->open(dir.file("fifo"), error)) << error;
  // A line larger than the pipe holds: the writer blocks on it; then the queue fills.
  SessionRecord big = numbered(2, 0);
  big.error.assign(256 * 1024, 'x');
  log->write(std::move(big));
  std::this_thread::sleep_for(50ms);
  while (log->droppedRecords() == 0 && written < 100000) log->write(numbered(0, written++));
  ASSERT_GT(log->droppedRecords(), 0u);
  for (int n = 0; n < 100; ++n) log->write(numbered(0, written++));
  dropped = log->droppedRecords();
  EXPECT_GE(dropped, 100u);
  std::thread reader([&] { text = fifo.drain(); });
  log->flush();
  log->write(numbered(1, 0));  // caught up: written again
  log->flush();
  EXPECT_EQ(log->droppedRecords(), dropped);
  log.reset();  // closes the FIFO: the reader sees its end
  reader.join();
  const auto lines = parseLines(text);
  std::uint64_t records = 0;
  std::uint64_t droppedLines = 0;
  std::uint64_t expect = 0;
  for (const auto& j : lines) {
    if (j.contains("dropped_records")) {
      ++droppedLines;
      EXPECT_EQ(j["dropped_records"].get<std::uint64_t>(), dropped);
      EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
      expect += dropped;  // the records it stands for
      continue;
    }
    if (j["client"] != "127.0.0.1:0") continue;
    EXPECT_EQ(j["bytes_up"].get<std::uint64_t>(), expect);
    ++expect;
    ++records;
  }
  EXPECT_EQ(droppedLines, 1u);  // the writer was stuck all along: one run of drops
  EXPECT_EQ(records + dropped, written);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["client"], "127.0.0.1:1");
}

TEST(SessionLog, TheDurationEndsAtWriteNotWhenTheLineIsFormatted) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  StuckFifo fifo(dir.file("fifo"));
  ASSERT_TRUE(fifo.ok());
  std::string text;
  std::optional<SessionLog> log;
  log.emplace();
  std::string error;
  ASSERT_TRUE(log->open(dir.file("fifo"), error)) << error;
  SessionRecord big;
  big.error.assign(256 * 1024, 'x');  // more than the pipe holds: the writer blocks on it
  log->write(big);
  std::this_thread::sleep_for(50ms);
  SessionRecord r;
  r.startSteady = std::chrono::steady_clock::now() - 1000ms;
  log->write(r);
  std::this_thread::sleep_for(400ms);  // before the writer can format it
  std::thread reader([&] { text = fifo.drain(); });
  log->flush();
  log.reset();
  reader.join();
  const auto lines = parseLines(text);
  ASSERT_EQ(lines.size(), 2u);
  const auto ms = lines[1]["duration_ms"].get<std::int64_t>();
  EXPECT_GE(ms, 1000);
  EXPECT_LT(ms, 1350);
}

TEST(SessionLog, AFailingWriteIsCountedAndTheWriterCarriesOn) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SessionLog log;
  std::string error;
  ASSERT_TRUE(log.open("/dev/full", error)) << error;  // every write: ENOSPC
  for (int n = 0; n < 10; ++n) log.write(numbered(0, n));
  log.flush();
  EXPECT_EQ(log.lostLines(), 10u);
  ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
  log.write(numbered(0, 10));
  log.flush();
  const auto lines = readLines(dir.file("s.log"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["bytes_up"], 10);
  EXPECT_EQ(log.lostLines(), 10u);
}

TEST(SessionLog, AMovedRecordAndACopiedOneWriteTheSameLine) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  SessionLog log;
  std::string error;
  ASSERT_TRUE(log.open(dir.file("s.log"), error)) << error;
  SessionRecord r = numbered(3, 7);
  r.endSteady = r.startSteady + 5ms;
  const std::string expected = r.toJson();
  log.write(r);  // the caller keeps its record
  EXPECT_EQ(r.client, "127.0.0.1:3");
  log.write(std::move(r));
  log.flush();
  const auto lines = readLines(dir.file("s.log"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], expected);
  EXPECT_EQ(lines[1], expected);
}

}  // namespace
}  // namespace fwgate::gateway
