// The gateway's key file (created 0600, read back, refused when others may read it or it holds no
// key) and the replay cache (a key seen within the window is a replay; older ones are forgotten;
// a full cache refuses rather than forgets).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "crypto/key_file.hpp"
#include "crypto/replay_cache.hpp"

namespace fwgate::crypto {
namespace {

using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fwgate-key-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(KeyFileTest, CreatedOnceMode0600AndReadBack) {
  TempDir dir;
  const std::string path = dir.path() + "/state/control.key";  // the directory is made too
  const LoadedKey first = loadOrCreateKey(path);
  ASSERT_TRUE(first.error.empty()) << first.error;
  EXPECT_TRUE(first.created);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir.path() + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  const LoadedKey again = loadOrCreateKey(path);
  ASSERT_TRUE(again.error.empty()) << again.error;
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.key.publicKey, first.key.publicKey);
  EXPECT_EQ(again.key.secretKey, first.key.secretKey);
  // The file names its public key and fingerprint, for the administrator.
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find(toBase64(first.key.publicKey)), std::string::npos);
  EXPECT_NE(text.find(fingerprint(first.key.publicKey)), std::string::npos);
}

TEST(KeyFileTest, ReadableByOthersOrWithoutAKeyIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/control.key";
  ASSERT_TRUE(loadOrCreateKey(path).error.empty());
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  const LoadedKey open = loadOrCreateKey(path);
  EXPECT_NE(open.error.find("readable by others (mode 644)"), std::string::npos) << open.error;
  const std::string bad = dir.path() + "/bad.key";
  {
    std::ofstream out(bad);
    out << "# a comment\nnot base64 at all\n";
  }
  ASSERT_EQ(::chmod(bad.c_str(), 0600), 0);
  const LoadedKey garbage = loadOrCreateKey(bad);
  EXPECT_NE(garbage.error.find("no key in it"), std::string::npos) << garbage.error;
  const LoadedKey missingDir = loadOrCreateKey(dir.path() + "/a/b/control.key");
  EXPECT_FALSE(missingDir.error.empty());  // only the last level is made
}

TEST(ReplayCacheTest, SeenWithinTheWindowIsAReplay) {
  ReplayCache cache;
  const ReplayCache::Clock::time_point t0{};
  const Key a = KeyPair::generate().publicKey;
  const Key b = KeyPair::generate().publicKey;
  EXPECT_EQ(cache.check(a, 10s, t0), ReplayCache::Verdict::Fresh);
  EXPECT_EQ(cache.check(a, 10s, t0 + 9s), ReplayCache::Verdict::Replayed);
  EXPECT_EQ(cache.check(b, 10s, t0 + 9s), ReplayCache::Verdict::Fresh);
  // Past the window the first is forgotten (the Timestamp check refuses such an old one).
  EXPECT_EQ(cache.check(a, 10s, t0 + 10s), ReplayCache::Verdict::Fresh);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(ReplayCacheTest, AFullCacheRefusesRatherThanForgets) {
  ReplayCache cache(3);
  const ReplayCache::Clock::time_point t0{};
  std::vector<Key> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(KeyPair::generate().publicKey);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(cache.check(keys[i], 60s, t0), ReplayCache::Verdict::Fresh);
  EXPECT_EQ(cache.check(keys[3], 60s, t0 + 1s), ReplayCache::Verdict::Full);
  EXPECT_EQ(cache.check(keys[0], 60s, t0 + 1s), ReplayCache::Verdict::Replayed);  // still known
  EXPECT_EQ(cache.check(keys[3], 60s, t0 + 60s), ReplayCache::Verdict::Fresh);    // room again
}

}  // namespace
}  // namespace fwgate::crypto
