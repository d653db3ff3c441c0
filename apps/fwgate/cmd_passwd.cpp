// `fwgate passwd`: add a user or change a password, delete a user, list the users.
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "commands.hpp"
#include "config/users.hpp"

namespace fwgate::app {
namespace {

// RFC 1929 carries the password in at most 255 bytes; a longer one could never be sent.
constexpr std::size_t kMaxPasswordLength = 255;

int fail(std::string_view message) {
  fmt::print(stderr, "fwgate passwd: {}\n", message);
  return 1;
}

int usage(std::string_view message) {
  fmt::print(stderr, "fwgate passwd: {}\n", message);
  return 2;
}

void wipe(std::string& secret) {
  explicit_bzero(secret.data(), secret.size());
  secret.clear();
}

// The terminal state to restore if a signal arrives while echo is off.
termios savedTerminal{};
volatile sig_atomic_t echoIsOff = 0;

extern "C" void restoreTerminalAndReraise(int signal) {
  if (echoIsOff != 0) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTerminal);
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

// Turns terminal echo off for its lifetime; a signal in between still restores it.
class EchoOff {
 public:
  EchoOff() {
    if (::tcgetattr(STDIN_FILENO, &savedTerminal) != 0) return;
    struct sigaction action {};
    action.sa_handler = restoreTerminalAndReraise;
    sigemptyset(&action.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      ::sigaction(kSignals[i], &action, &previous_[i]);
    }
    termios quiet = savedTerminal;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0) echoIsOff = 1;
  }
  ~EchoOff() {
    if (echoIsOff != 0) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTerminal);
    echoIsOff = 0;
    for (std::size_t i = 0; i < kSignals.size(); ++i)
      ::sigaction(kSignals[i], &previous_[i], nullptr);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  bool active() const { return echoIsOff != 0; }

 private:
  static constexpr std::array<int, 4> kSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  std::array<struct sigaction, 4> previous_{};
};

// One line from standard input without its line ending; nullopt at end of input.
std::optional<std::string> readLine() {
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::optional<std::string> prompt(std::string_view text, std::string& error) {
  // Echo goes off before the prompt appears: turning it off flushes pending input.
  const EchoOff quiet;
  if (!quiet.active()) {
    error = "cannot turn off terminal echo";
    return std::nullopt;
  }
  fmt::print(stderr, "{}", text);
  std::fflush(stderr);
  auto line = readLine();
  if (!line) error = "no password entered";
  return line;
}

// The new password: from a terminal prompt (twice, echo off) or one line of standard input.
std::optional<std::string> readPassword(const PasswdOptions& options, std::string& error) {
  if (options.passwordFromStdin) {
    auto line = readLine();
    if (!line) error = "no password on standard input";
    return line;
  }
  if (::isatty(STDIN_FILENO) == 0) {
    error = "standard input is not a terminal; use --stdin to read the password from it";
    return std::nullopt;
  }
  auto first = prompt(fmt::format("New password for {}: ", options.user), error);
  if (!first) return std::nullopt;
  auto second = prompt("Retype the password: ", error);
  if (!second) {
    wipe(*first);
    return std::nullopt;
  }
  const bool same = *first == *second;
  wipe(*second);
  if (!same) {
    wipe(*first);
    error = "the passwords do not match; nothing changed";
    return std::nullopt;
  }
  return first;
}

// The users file, or an empty database when it does not exist yet.
std::optional<config::UserDatabase> loadOrEmpty(const std::string& path, bool& exists,
                                                std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      error = fmt::format("{}: {}", path, std::strerror(errno));
      return std::nullopt;
    }
    exists = false;
    return config::UserDatabase{};
  }
  exists = true;
  return config::UserDatabase::load(path, error);
}

int listUsers(const PasswdOptions& options) {
  std::string error;
  const auto db = config::UserDatabase::load(options.usersFile, error);
  if (!db) return fail(error);
  for (const auto& entry : db->entries()) fmt::print("{}\n", entry.name);
  return 0;
}

int deleteUser(const PasswdOptions& options) {
  std::string error;
  auto db = config::UserDatabase::load(options.usersFile, error);
  if (!db) return fail(error);
  if (!db->remove(options.user)) {
    return fail(fmt::format("no user \"{}\" in {}", options.user, options.usersFile));
  }
  if (!config::writeUserDatabase(options.usersFile, *db, error)) return fail(error);
  fmt::print("deleted user {} from {}\n", options.user, options.usersFile);
  return 0;
}

int setPassword(const PasswdOptions& options) {
  std::string error;
  bool exists = false;
  auto db = loadOrEmpty(options.usersFile, exists, error);
  if (!db) return fail(error);  // never overwrite a file we could not read

  auto password = readPassword(options, error);
  if (!password) return fail(error);
  if (password->empty()) return fail("empty passwords are refused; nothing changed");
  if (password->size() > kMaxPasswordLength) {
    wipe(*password);
    return fail(fmt::format("passwords are at most {} bytes (RFC 1929); nothing changed",
                            kMaxPasswordLength));
  }
  std::string hash = config::hashPassword(*password);
  wipe(*password);
  if (hash.empty()) return fail("cannot hash the password (out of memory?)");

  const bool known = db->find(options.user) != nullptr;
  db->upsert(options.user, std::move(hash));
  if (!config::writeUserDatabase(options.usersFile, *db, error)) return fail(error);
  if (known) {
    fmt::print("changed the password of {} in {}\n", options.user, options.usersFile);
  } else {
    fmt::print("added user {} to {}{}\n", options.user, options.usersFile,
               exists ? "" : " (created)");
  }
  return 0;
}

}  // namespace

int runPasswd(const PasswdOptions& options) {
  if (options.list) {
    if (!options.user.empty() || options.remove || options.passwordFromStdin) {
      return usage("--list takes no user name and no other option");
    }
    return listUsers(options);
  }
  if (options.user.empty()) return usage("a user name is required (or --list)");
  if (!config::isValidUserName(options.user)) {
    return usage(fmt::format(
        "invalid user name \"{}\": 1..255 bytes, no ':', whitespace or control characters, not "
        "starting with '#'",
        options.user));
  }
  if (options.remove) {
    if (options.passwordFromStdin) return usage("--stdin has no meaning with --delete");
    return deleteUser(options);
  }
  return setPassword(options);
}

}  // namespace fwgate::app
