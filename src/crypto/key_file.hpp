// The gateway's static key on disk: one line of base64 (the X25519 secret) after a comment, mode
// 0600, written atomically. A file others may read is refused, as OpenSSH refuses such host keys.
#pragma once

#include <string>

#include "crypto/noise.hpp"

namespace fwgate::crypto {

struct LoadedKey {
  KeyPair key;
  bool created = false;  // the file did not exist and was written now
  std::string error;     // non-empty: nothing usable (key unset)
};

// Reads `path`, or creates it (and its directory, mode 0700, when only the last level is
// missing) with a new key.
LoadedKey loadOrCreateKey(const std::string& path);

// The text of a key file holding `key`'s secret.
std::string keyFileText(const KeyPair& key);

}  // namespace fwgate::crypto
