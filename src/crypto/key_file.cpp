#include "crypto/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace fwgate::crypto {

namespace {

std::string errnoText(int error) {
  return std::strerror(error);
}

std::string directoryOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// The secret from a key file's text: the first line that is not a comment or blank.
bool parseKeyText(const std::string& text, Key& secret) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto key = keyFromBase64(line);
    if (!key) return false;
    secret = *key;
    return true;
  }
  return false;
}

}  // namespace

std::string keyFileText(const KeyPair& key) {
  return "# fwgate control channel key: secret, keep it mode 0600. Its public key is " +
         toBase64(key.publicKey) + " (" + fingerprint(key.publicKey) + ")\n" +
         toBase64(key.secretKey) + "\n";
}

LoadedKey loadOrCreateKey(const std::string& path) {
  LoadedKey out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      out.error = path + ": not a regular file";
      return out;
    }
    if ((st.st_mode & 077) != 0) {
      ::close(fd);
      out.error = path + ": readable by others (mode " + std::to_string((st.st_mode >> 6) & 7) +
                  std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                  "); chmod 600 it";
      return out;
    }
    std::string text;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
      if (text.size() > 65536) break;
    }
    ::close(fd);
    Key secret;
    if (!parseKeyText(text, secret)) {
      out.error = path + ": no key in it (one line of base64, 32 bytes)";
      return out;
    }
    out.key = KeyPair::fromSecret(secret);
    return out;
  }
  if (errno != ENOENT) {
    out.error = path + ": " + errnoText(errno);
    return out;
  }
  // Created: in the directory, made when its parent exists.
  const std::string dir = directoryOf(path);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    out.error = dir + ": " + errnoText(errno);
    return out;
  }
  const KeyPair key = KeyPair::generate();
  const std::string text = keyFileText(key);
  const std::string temp = path + ".new." + std::to_string(::getpid());
  const int w = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (w < 0) {
    out.error = path + ": " + errnoText(errno);
    return out;
  }
  const bool written =
      ::write(w, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(w) == 0;
  const int writeError = errno;
  ::close(w);
  // link() rather than rename(): a key another process created meanwhile is kept, not replaced.
  if (!written || ::link(temp.c_str(), path.c_str()) != 0) {
    const int error = written ? errno : writeError;
    ::unlink(temp.c_str());
    if (written && error == EEXIST) return loadOrCreateKey(path);
    out.error = path + ": " + errnoText(error);
    return out;
  }
  ::unlink(temp.c_str());
  out.key = key;
  out.created = true;
  return out;
}

}  // namespace fwgate::crypto
