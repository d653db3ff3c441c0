#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <optional>

#include "config/users.hpp"
#include "gateway/buffer_pool.hpp"
#include "gateway/gateway.hpp"
#include "gateway/runtime.hpp"
#include "gateway/session_log.hpp"

namespace fwgate::gateway {
namespace {

TEST(ListenAddress, ParsesIpv4AndBracketedIpv6) {
  struct Case {
    std::string text;
    bool ok;
    std::string address;
    std::uint16_t port;
  };
  const std::vector<Case> table = {
      {"127.0.0.1:1080", true, "127.0.0.1", 1080},
      {"0.0.0.0:0", true, "0.0.0.0", 0},
      {"[::1]:1080", true, "::1", 1080},
      {"[::]:65535", true, "::", 65535},
      {"::1:1080", false, "", 0},         // IPv6 needs brackets
      {"127.0.0.1", false, "", 0},        // no port
      {"127.0.0.1:", false, "", 0},       // empty port
      {"127.0.0.1:65536", false, "", 0},  // out of range
      {"127.0.0.1:80x", false, "", 0},
      {"localhost:1080", false, "", 0},  // a listener needs an address, not a name
      {"[::1]1080", false, "", 0},
      {"", false, "", 0},
  };
  for (const auto& c : table) {
    std::string address;
    std::uint16_t port = 0;
    EXPECT_EQ(parseListenAddress(c.text, address, port), c.ok) << c.text;
    if (c.ok) {
      EXPECT_EQ(address, c.address) << c.text;
      EXPECT_EQ(port, c.port) << c.text;
    }
  }
}

TEST(BufferPool, ReusesBuffersAndHoldsNoneWhenIdle) {
  BufferPool pool(4096, 2);
  std::uint8_t* first = nullptr;
  {
    auto lease = pool.acquire();
    first = lease.data();
    EXPECT_EQ(lease.size(), 4096u);
    EXPECT_EQ(pool.idleCount(), 0u);
  }
  EXPECT_EQ(pool.idleCount(), 1u);
  {
    auto lease = pool.acquire();
    EXPECT_EQ(lease.data(), first);  // reused, not reallocated
  }
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    auto c = pool.acquire();
  }
  EXPECT_EQ(pool.idleCount(), 2u);  // capped at maxIdle
  pool.setBufferSize(8192);
  EXPECT_EQ(pool.idleCount(), 0u);
  {
    auto lease = pool.acquire();
    EXPECT_EQ(lease.size(), 8192u);
  }
}

TEST(SessionRecord, JsonHasEveryFieldTheAdministratorReads) {
  SessionRecord r;
  r.client = "127.0.0.1:5555";
  r.user = "alice";
  r.protocol = "socks5";
  r.command = "connect";
  r.requested = "example.com:80";
  r.resolved = "192.0.2.1:80";
  r.rule = "lan web";
  r.result = "succeeded";
  r.reply = 0;
  r.bytesUp = 10;
  r.bytesDown = 20;
  const auto j = nlohmann::json::parse(r.toJson());
  for (const char* key :
       {"time", "duration_ms", "client", "user", "protocol", "command", "requested", "resolved",
        "rule", "result", "reply", "bytes_up", "bytes_down"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["user"], "alice");
  EXPECT_EQ(j["bytes_up"], 10);
  EXPECT_EQ(j["bytes_down"], 20);
  EXPECT_EQ(j["requested"], "example.com:80");
  EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
}

TEST(SessionRecord, AnonymousUserIsNullAndBadUtf8DoesNotLoseTheLine) {
  SessionRecord r;
  r.requested = std::string("bad\xff\xfe name:80");
  const auto text = r.toJson();
  const auto j = nlohmann::json::parse(text);
  EXPECT_TRUE(j["user"].is_null());
  EXPECT_EQ(text.find('\n'), std::string::npos);
}

// Revocation: a users file reloaded twice with no login between may be allocated where the
// database it replaced was. The password cache must not take it for the old one.
TEST(PasswordCache, ADatabaseAtAFreedDatabasesAddressIsAnotherDatabase) {
  SharedState shared;
  std::string error;
  std::optional<config::UserDatabase> slot;
  slot.emplace(*config::UserDatabase::parse("alice:" + config::hashPassword("old") + "\n", error));
  const config::UserDatabase* first = &*slot;
  const std::string oldDigest = shared.passwordDigest("old");
  EXPECT_FALSE(shared.knownPassword(*slot, "alice", oldDigest));
  shared.rememberPassword(*slot, "alice", oldDigest);
  ASSERT_TRUE(shared.knownPassword(*slot, "alice", oldDigest));

  // The password changes; the new database lives exactly where the old one did.
  slot.reset();
  slot.emplace(*config::UserDatabase::parse("alice:" + config::hashPassword("new") + "\n", error));
  ASSERT_EQ(&*slot, first) << "the test needs the new database at the old address";
  EXPECT_FALSE(shared.knownPassword(*slot, "alice", oldDigest))
      << "the old password is still accepted after the users file changed";

  // And a user removed: nothing remembered for her survives either.
  shared.rememberPassword(*slot, "alice", shared.passwordDigest("new"));
  slot.reset();
  slot.emplace(*config::UserDatabase::parse("", error));
  ASSERT_EQ(&*slot, first);
  EXPECT_FALSE(shared.knownPassword(*slot, "alice", shared.passwordDigest("new")));
}

}  // namespace
}  // namespace fwgate::gateway
