// The users file: one "name:hash" line per user, hashes are argon2id strings (libsodium
// crypto_pwhash_str). '#' starts a comment. Never plaintext.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fwgate::config {

struct UserEntry {
  std::string name;
  std::string hash;  // "$argon2id$v=19$m=...,t=...,p=1$salt$hash"
};

// Parsed users file; immutable, shared by sessions.
class UserDatabase {
 public:
  // Reads and parses `path`. On failure returns nullopt and fills `error` (with the line number).
  static std::optional<UserDatabase> load(const std::string& path, std::string& error);
  static std::optional<UserDatabase> parse(std::string_view text, std::string& error);

  const UserEntry* find(std::string_view name) const;
  const std::vector<UserEntry>& entries() const { return entries_; }

  // Checks a password against the stored hash: slow by design (argon2id), call off the event loop.
  bool verify(std::string_view name, std::string_view password) const;

  // Which database this is: unique for the process's life, new for every database parsed and
  // after every change. Caches of what was verified against a database key by it, never by its
  // address (a new database may be allocated where a freed one was).
  std::uint64_t generation() const { return generation_; }

  // Serialises back to the file format.
  std::string serialize() const;
  void upsert(std::string name, std::string hash);
  bool remove(std::string_view name);

 private:
  static std::uint64_t nextGeneration();

  std::vector<UserEntry> entries_;
  std::uint64_t generation_ = nextGeneration();
};

// argon2id hash with libsodium's interactive limits; empty string on failure (out of memory).
std::string hashPassword(std::string_view password);

// User names: 1..255 bytes, no ':' or control characters or whitespace (RFC 1929 allows 255),
// not starting with '#' (a comment in the users file).
bool isValidUserName(std::string_view name);

// Writes the database to `path` atomically (temporary file + rename), mode 0600.
bool writeUserDatabase(const std::string& path, const UserDatabase& db, std::string& error);

}  // namespace fwgate::config
