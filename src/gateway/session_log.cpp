#include "gateway/session_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace fwgate::gateway {

namespace {
std::string isoTime(std::chrono::system_clock::time_point t) {
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
}  // namespace

std::string SessionRecord::toJson() const {
  const auto duration = std::chrono::steady_clock::now() - startSteady;
  nlohmann::json j;
  j["time"] = isoTime(start);
  j["duration_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  j["client"] = client;
  j["user"] = user ? nlohmann::json(*user) : nlohmann::json(nullptr);
  j["protocol"] = protocol;
  if (protocol == "fwc") {
    j["host"] = host;
    j["application"] = application;
    j["os_user"] = osUser;
  }
  if (http) {
    j["method"] = http->method;
    j["host"] = http->host;
    j["port"] = http->port;
    j["path"] = http->path;
    j["status"] = http->status;
  }
  j["command"] = command;
  j["requested"] = requested;
  j["resolved"] = resolved;
  if (!bound.empty()) j["bound"] = bound;
  j["rule"] = rule;
  if (!definition.empty()) j["definition"] = definition;
  j["result"] = result;
  j["reply"] = reply;
  j["bytes_up"] = bytesUp;
  j["bytes_down"] = bytesDown;
  if (command == "udp") {
    j["datagrams_up"] = datagramsUp;
    j["datagrams_down"] = datagramsDown;
  }
  if (!error.empty()) j["error"] = error;
  // Invalid UTF-8 in a user name or domain must not lose the line.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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

SessionLog::~SessionLog() {
  if (fd_ > 2) ::close(fd_);
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
  std::lock_guard lock(mutex_);
  if (fd_ > 2) ::close(fd_);
  fd_ = fd;
  created_ = created;
  path_ = path;
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

void SessionLog::write(const SessionRecord& record) {
  std::string line = record.toJson();
  line.push_back('\n');
  std::lock_guard lock(mutex_);
  // One write() per line: O_APPEND keeps concurrent writers' lines whole.
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace fwgate::gateway
