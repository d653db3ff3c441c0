// The users file: parsing, serialising, argon2id hashing and verification, atomic writes.
#include "config/users.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

namespace fwgate::config {
namespace {

constexpr std::string_view kHashPrefix = "$argon2id$";
constexpr std::size_t kMaxFileSize = 16 * 1024 * 1024;

// Verified against when the user is unknown, so that a wrong name costs as much as a wrong
// password. Its password is 32 random bytes nobody kept.
constexpr const char* kDummyHash =
    "$argon2id$v=19$m=65536,t=2,p=1$RqaupSLWw8TjKFU76CwiFA$"
    "SLYyCrGn3Axf5GTRiDiy0f9ENjOaPgQ4Vh/Dnyshrnc";

bool sodiumReady() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

// libsodium's pointer arguments are declared nonnull, even for zero lengths.
const char* bytesOf(std::string_view s) {
  return s.empty() ? "" : s.data();
}

}  // namespace

bool isValidUserName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '#') return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == ':' || c == ' ' || u < 0x20 || u == 0x7f;
  });
}

std::optional<UserDatabase> UserDatabase::parse(std::string_view text, std::string& error) {
  UserDatabase db;
  std::vector<std::string> problems;
  std::map<std::string, std::size_t, std::less<>> firstLine;
  std::size_t lineNumber = 0;
  while (!text.empty()) {
    ++lineNumber;
    const std::size_t end = text.find('\n');
    const std::string_view raw = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);

    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      problems.push_back(fmt::format("line {}: expected \"name:hash\"", lineNumber));
      continue;
    }
    const std::string_view name = line.substr(0, colon);
    // The hash ends at the first blank; anything after it must be a comment.
    std::string_view hash = line.substr(colon + 1);
    const std::size_t blank = hash.find_first_of(" \t");
    if (blank != std::string_view::npos) {
      const std::string_view rest = trim(hash.substr(blank));
      hash = hash.substr(0, blank);
      if (!rest.empty() && rest.front() != '#') {
        problems.push_back(fmt::format("line {}: unexpected text after the hash", lineNumber));
        continue;
      }
    }
    if (!isValidUserName(name)) {
      problems.push_back(fmt::format("line {}: invalid user name", lineNumber));
      continue;
    }
    if (!hash.starts_with(kHashPrefix)) {
      problems.push_back(fmt::format(
          "line {}: the password of \"{}\" is not an argon2id hash (plaintext is never accepted; "
          "use fwgate passwd)",
          lineNumber, name));
      continue;
    }
    if (hash.size() >= crypto_pwhash_STRBYTES) {
      problems.push_back(fmt::format("line {}: hash too long", lineNumber));
      continue;
    }
    if (const auto it = firstLine.find(name); it != firstLine.end()) {
      problems.push_back(fmt::format("line {}: duplicate user \"{}\" (first on line {})",
                                     lineNumber, name, it->second));
      continue;
    }
    firstLine.emplace(std::string(name), lineNumber);
    db.entries_.push_back(UserEntry{std::string(name), std::string(hash)});
  }
  if (!problems.empty()) {
    error = problems.front();
    for (std::size_t i = 1; i < problems.size(); ++i) error += "; " + problems[i];
    return std::nullopt;
  }
  return db;
}

std::optional<UserDatabase> UserDatabase::load(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("{}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = fmt::format("{}: {}", path, std::strerror(errno));
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxFileSize) {
      error = fmt::format("{}: larger than {} bytes", path, kMaxFileSize);
      ::close(fd);
      return std::nullopt;
    }
  }
  ::close(fd);
  auto db = parse(text, error);
  if (!db) error = fmt::format("{}: {}", path, error);
  return db;
}

const UserEntry* UserDatabase::find(std::string_view name) const {
  for (const UserEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

bool UserDatabase::verify(std::string_view name, std::string_view password) const {
  if (!sodiumReady()) return false;
  const UserEntry* entry = find(name);
  const char* hash = entry != nullptr ? entry->hash.c_str() : kDummyHash;
  const bool match = crypto_pwhash_str_verify(hash, bytesOf(password), password.size()) == 0;
  return entry != nullptr && match;
}

std::string UserDatabase::serialize() const {
  std::string out = "# fwgate users: one name:argon2id-hash per line; edit with `fwgate passwd`\n";
  for (const UserEntry& e : entries_) out += fmt::format("{}:{}\n", e.name, e.hash);
  return out;
}

std::uint64_t UserDatabase::nextGeneration() {
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

void UserDatabase::upsert(std::string name, std::string hash) {
  generation_ = nextGeneration();
  for (UserEntry& e : entries_) {
    if (e.name == name) {
      e.hash = std::move(hash);
      return;
    }
  }
  entries_.push_back(UserEntry{std::move(name), std::move(hash)});
}

bool UserDatabase::remove(std::string_view name) {
  const auto it = std::find_if(entries_.begin(), entries_.end(),
                               [&](const UserEntry& e) { return e.name == name; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  generation_ = nextGeneration();
  return true;
}

std::string hashPassword(std::string_view password) {
  if (!sodiumReady()) return {};
  char out[crypto_pwhash_STRBYTES] = {};
  if (crypto_pwhash_str(out, bytesOf(password), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    return {};
  }
  std::string hash(out);
  if (!hash.starts_with(kHashPrefix)) return {};
  return hash;
}

bool writeUserDatabase(const std::string& path, const UserDatabase& db, std::string& error) {
  namespace fs = std::filesystem;
  fs::path directory = fs::path(path).parent_path();
  if (directory.empty()) directory = ".";
  std::string temporary = (directory / (fs::path(path).filename().string() + ".XXXXXX")).string();
  const int fd = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) {
    error = fmt::format("cannot create a temporary file in {}: {}", directory.string(),
                        std::strerror(errno));
    return false;
  }
  const auto fail = [&](std::string_view what) {
    error = fmt::format("{} {}: {}", what, temporary, std::strerror(errno));
    ::close(fd);
    ::unlink(temporary.c_str());
    return false;
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot set the mode of");
  // Keep the owner of an existing file (e.g. the gateway's service user) when we may.
  struct stat existing {};
  if (::stat(path.c_str(), &existing) == 0 && ::geteuid() == 0 &&
      ::fchown(fd, existing.st_uid, existing.st_gid) != 0) {
    return fail("cannot set the owner of");
  }
  const std::string text = db.serialize();
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    error = fmt::format("cannot write {}: {}", temporary, std::strerror(errno));
    ::unlink(temporary.c_str());
    return false;
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    error = fmt::format("cannot replace {}: {}", path, std::strerror(errno));
    ::unlink(temporary.c_str());
    return false;
  }
  // Make the rename itself durable.
  if (const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return true;
}

}  // namespace fwgate::config
