// The users file: parsing, serialising, editing, argon2id verification and atomic writes.
#include "config/users.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fwgate::config {
namespace {

// Syntactically valid argon2id strings for parsing tests (no password opens them).
const std::string kHashA = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNo";
const std::string kHashB = "$argon2id$v=19$m=65536,t=2,p=1$b3RoZXJzYWx0b3RoZXI$b3RoZXJoYXNoaGFzaA";

TEST(UserNameTest, Table) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"alice", true},
      {"Alice.B-c_d@example", true},
      {"ünïcode", true},
      {std::string(255, 'a'), true},
      {"", false},
      {std::string(256, 'a'), false},
      {"a:b", false},
      {"a b", false},
      {"a\tb", false},
      {"a\nb", false},
      {std::string("a\0b", 3), false},
      {"a\x7f", false},
      {"#alice", false},
      {"al#ice", true},
  };
  for (const auto& [name, valid] : cases) {
    EXPECT_EQ(isValidUserName(name), valid) << "\"" << name << "\"";
  }
}

TEST(UserDatabaseTest, ParsesCommentsBlankLinesAndCrlf) {
  const std::string text = "# fwgate users\n\n   \nalice:" + kHashA + "\r\n  # indented comment\n" +
                           "bob:" + kHashB + "   # trailing comment\n";
  std::string error;
  const auto db = UserDatabase::parse(text, error);
  ASSERT_TRUE(db) << error;
  ASSERT_EQ(db->entries().size(), 2u);
  EXPECT_EQ(db->entries()[0].name, "alice");
  EXPECT_EQ(db->entries()[0].hash, kHashA);
  EXPECT_EQ(db->entries()[1].name, "bob");
  EXPECT_EQ(db->entries()[1].hash, kHashB);
  ASSERT_NE(db->find("bob"), nullptr);
  EXPECT_EQ(db->find("bob")->hash, kHashB);
  EXPECT_EQ(db->find("carol"), nullptr);
}

TEST(UserDatabaseTest, ErrorTable) {
  struct Case {
    std::string description;
    std::string text;
    std::vector<std::string> fragments;  // every one must appear in the error
  };
  const std::vector<Case> cases = {
      {"plaintext password", "alice:secret\n", {"line 1", "argon2id", "alice"}},
      {"other hash scheme", "alice:$2y$10$abcdefghijklmnopqrstuv\n", {"line 1", "argon2id"}},
      {"argon2i is not argon2id",
       "alice:$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA\n",
       {"line 1", "argon2id"}},
      {"duplicate user",
       "alice:" + kHashA + "\n# c\nalice:" + kHashB + "\n",
       {"line 3", "duplicate", "alice", "line 1"}},
      {"no colon", "alice\n", {"line 1", "name:hash"}},
      {"invalid name", "al ice:" + kHashA + "\n", {"line 1", "invalid user name"}},
      {"empty name", ":" + kHashA + "\n", {"line 1", "invalid user name"}},
      {"junk after the hash", "alice:" + kHashA + " junk\n", {"line 1", "after the hash"}},
      {"every error reported", "a:x\nb:y\n", {"line 1", "line 2"}},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(UserDatabase::parse(c.text, error)) << c.description;
    for (const auto& fragment : c.fragments) {
      EXPECT_NE(error.find(fragment), std::string::npos)
          << c.description << ": \"" << fragment << "\" not in: " << error;
    }
  }
}

TEST(UserDatabaseTest, SerializeParsesBack) {
  UserDatabase db;
  db.upsert("alice", kHashA);
  db.upsert("bob", kHashB);
  std::string error;
  const auto again = UserDatabase::parse(db.serialize(), error);
  ASSERT_TRUE(again) << error;
  ASSERT_EQ(again->entries().size(), 2u);
  EXPECT_EQ(again->entries()[0].name, "alice");
  EXPECT_EQ(again->entries()[1].hash, kHashB);
  EXPECT_NE(db.serialize().find("alice:" + kHashA + "\n"), std::string::npos);
}

TEST(UserDatabaseTest, UpsertReplacesOrAppendsAndRemove) {
  UserDatabase db;
  db.upsert("alice", kHashA);
  db.upsert("bob", kHashA);
  db.upsert("alice", kHashB);
  ASSERT_EQ(db.entries().size(), 2u);
  EXPECT_EQ(db.entries()[0].name, "alice");  // keeps its place
  EXPECT_EQ(db.entries()[0].hash, kHashB);
  EXPECT_TRUE(db.remove("alice"));
  EXPECT_FALSE(db.remove("alice"));
  EXPECT_FALSE(db.remove("nobody"));
  ASSERT_EQ(db.entries().size(), 1u);
  EXPECT_EQ(db.entries()[0].name, "bob");
}

// One real argon2id hash (~64 MiB, ~0.1 s) shared by the verification tests.
class PasswordTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { hash_ = new std::string(hashPassword("correct horse")); }
  static void TearDownTestSuite() {
    delete hash_;
    hash_ = nullptr;
  }
  static std::string* hash_;
};
std::string* PasswordTest::hash_ = nullptr;

TEST_F(PasswordTest, HashIsArgon2id) {
  ASSERT_FALSE(hash_->empty());
  EXPECT_EQ(hash_->rfind("$argon2id$", 0), 0u) << *hash_;
  EXPECT_EQ(hash_->find("correct horse"), std::string::npos);
}

TEST_F(PasswordTest, Verify) {
  UserDatabase db;
  db.upsert("alice", *hash_);
  EXPECT_TRUE(db.verify("alice", "correct horse"));
  EXPECT_FALSE(db.verify("alice", "correct horse "));
  EXPECT_FALSE(db.verify("alice", ""));
  EXPECT_FALSE(db.verify("bob", "correct horse"));  // unknown user, dummy hash
}

TEST_F(PasswordTest, VerifyAfterParse) {
  std::string error;
  const auto db = UserDatabase::parse("alice:" + *hash_ + "\n", error);
  ASSERT_TRUE(db) << error;
  EXPECT_TRUE(db->verify("alice", "correct horse"));
}

class UsersFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "fwgate-users-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(UsersFileTest, WriteIsPrivateAndLoadsBack) {
  UserDatabase db;
  db.upsert("alice", kHashA);
  const std::string path = (dir_ / "users").string();
  std::string error;
  ASSERT_TRUE(writeUserDatabase(path, db, error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto loaded = UserDatabase::load(path, error);
  ASSERT_TRUE(loaded) << error;
  ASSERT_EQ(loaded->entries().size(), 1u);
  EXPECT_EQ(loaded->entries()[0].hash, kHashA);
  // Nothing but the file itself is left in the directory.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(UsersFileTest, ReplacingAnOpenFileMakesItPrivate) {
  const std::string path = (dir_ / "users").string();
  { std::ofstream(path) << "bob:" << kHashB << "\n"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  std::string error;
  auto db = UserDatabase::load(path, error);
  ASSERT_TRUE(db) << error;
  db->upsert("alice", kHashA);
  ASSERT_TRUE(writeUserDatabase(path, *db, error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const auto again = UserDatabase::load(path, error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(again->entries().size(), 2u);
}

TEST_F(UsersFileTest, WriteIntoMissingDirectoryFails) {
  std::string error;
  EXPECT_FALSE(writeUserDatabase((dir_ / "no" / "users").string(), UserDatabase{}, error));
  EXPECT_FALSE(error.empty());
}

TEST_F(UsersFileTest, LoadErrorsNameTheFile) {
  std::string error;
  const std::string missing = (dir_ / "missing").string();
  EXPECT_FALSE(UserDatabase::load(missing, error));
  EXPECT_NE(error.find(missing), std::string::npos) << error;
  const std::string bad = (dir_ / "bad").string();
  { std::ofstream(bad) << "alice:plaintext\n"; }
  EXPECT_FALSE(UserDatabase::load(bad, error));
  EXPECT_NE(error.find(bad), std::string::npos) << error;
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;
}

TEST(UserDatabaseTest, EveryDatabaseAndEveryChangeHasItsOwnGeneration) {
  std::string error;
  auto a = UserDatabase::parse("", error);
  auto b = UserDatabase::parse("", error);
  ASSERT_TRUE(a && b) << error;
  EXPECT_NE(a->generation(), 0u);
  EXPECT_NE(a->generation(), b->generation());
  const auto before = a->generation();
  a->upsert("alice", "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
  EXPECT_NE(a->generation(), before);
  const auto afterUpsert = a->generation();
  EXPECT_TRUE(a->remove("alice"));
  EXPECT_NE(a->generation(), afterUpsert);
}

}  // namespace
}  // namespace fwgate::config
