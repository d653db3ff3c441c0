// The preload library's socket table, with real sockets and no hooks: add, find by identity and
// by number, free, full, duplicates, and descriptor numbers reused for other sockets.
#include "client/preload/socket_table.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <vector>

namespace fwgate::client::preload {
namespace {

bool identify(int fd, SocketId& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return true;
}

struct Entry {
  SocketId id;
  Descriptors fds;
  std::uint8_t tag = 0;
  int value = 0;
};

constexpr std::uint8_t kA = 1;
constexpr std::uint8_t kB = 2;

template <std::size_t N>
using Table = SocketTable<Entry, N, &identify>;

struct Released {
  std::vector<int>* values;
  void operator()(Entry& e) const { values->push_back(e.value); }
};

// A socket the test owns (closed at the end).
struct Socket {
  int fd = -1;
  Socket() { fd = ::socket(AF_INET, SOCK_STREAM, 0); }
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
  void close() {
    ::close(fd);
    fd = -1;
  }
  SocketId id() const {
    SocketId out;
    identify(fd, out);
    return out;
  }
};

TEST(SocketTable, AddFindAndFree) {
  auto table = std::make_unique<Table<64>>();
  std::vector<int> released;
  Socket a, b;
  ASSERT_GE(a.fd, 0);
  Entry* ea = table->add(a.id(), a.fd, kA, Released{&released});
  ASSERT_NE(ea, nullptr);
  ea->value = 1;
  Entry* eb = table->add(b.id(), b.fd, kB, Released{&released});
  ASSERT_NE(eb, nullptr);
  eb->value = 2;
  EXPECT_EQ(table->size(), 2u);
  EXPECT_EQ(table->find(a.id()), ea);
  EXPECT_EQ(table->findFd(b.fd, Released{&released}), eb);
  EXPECT_EQ(table->tagHint(a.fd, 0xFF), kA);
  EXPECT_EQ(table->tagHint(b.fd, 0xFF), kB);
  // The same socket again is the same entry.
  EXPECT_EQ(table->add(a.id(), a.fd, kA, Released{&released}), ea);
  table->free(*ea, Released{&released});
  EXPECT_EQ(released, std::vector<int>{1});
  EXPECT_EQ(table->find(a.id()), nullptr);
  EXPECT_EQ(table->tagHint(a.fd, 0xFF), 0);
  EXPECT_EQ(table->find(b.id()), eb);
  EXPECT_EQ(table->size(), 1u);
}

TEST(SocketTable, ANumberReusedForAnotherSocketIsNotTheOldEntry) {
  auto table = std::make_unique<Table<64>>();
  std::vector<int> released;
  Socket first;
  const int number = first.fd;
  table->add(first.id(), number, kA, Released{&released})->value = 7;
  first.close();
  Socket second;  // the lowest free number: the same one
  ASSERT_EQ(second.fd, number);
  EXPECT_EQ(table->findFd(number, Released{&released}), nullptr);
  EXPECT_EQ(released, std::vector<int>{7}) << "the closed socket's entry is freed when found out";
  EXPECT_EQ(table->size(), 0u);
}

TEST(SocketTable, ADuplicateKeepsTheSocketAliveAfterTheFirstNumberCloses) {
  auto table = std::make_unique<Table<64>>();
  std::vector<int> released;
  Socket s;
  Entry* e = table->add(s.id(), s.fd, kA, Released{&released});
  const int copy = ::dup(s.fd);
  ASSERT_GE(copy, 0);
  ASSERT_TRUE(table->duplicate(s.fd, copy, Released{&released}));
  EXPECT_EQ(table->tagHint(copy, 0xFF), kA);
  const int original = s.fd;
  s.close();
  // Sweeping finds the socket still held by its duplicate.
  table->sweep(64, Released{&released});
  EXPECT_TRUE(released.empty());
  EXPECT_EQ(table->findFd(copy, Released{&released}), e);
  EXPECT_EQ(table->findFd(original, Released{&released}), nullptr);
  EXPECT_TRUE(released.empty());
  ::close(copy);
  table->sweep(64, Released{&released});
  EXPECT_EQ(released.size(), 1u);
  EXPECT_EQ(table->size(), 0u);
}

TEST(SocketTable, AnUnseenDuplicateIsFoundByIdentity) {
  auto table = std::make_unique<Table<64>>();
  std::vector<int> released;
  Socket s;
  Entry* e = table->add(s.id(), s.fd, kA, Released{&released});
  const int copy = ::dup(s.fd);  // the table is not told
  EXPECT_EQ(table->tagHint(copy, 0xFF), 0);
  EXPECT_EQ(table->findFd(copy, Released{&released}), e);
  EXPECT_EQ(table->tagHint(copy, 0xFF), kA) << "remembered once found";
  ::close(copy);
}

TEST(SocketTable, FullOfLiveSocketsRefusesTheNewOneAndKeepsEveryOld) {
  constexpr std::size_t kN = 16;
  auto table = std::make_unique<Table<kN>>();
  std::vector<int> released;
  std::vector<std::unique_ptr<Socket>> sockets;
  for (std::size_t i = 0; i < kN; ++i) {
    sockets.push_back(std::make_unique<Socket>());
    Entry* e = table->add(sockets.back()->id(), sockets.back()->fd, kA, Released{&released});
    ASSERT_NE(e, nullptr) << i;
    e->value = static_cast<int>(i);
  }
  Socket extra;
  EXPECT_EQ(table->add(extra.id(), extra.fd, kA, Released{&released}), nullptr);
  for (std::size_t i = 0; i < kN; ++i) {
    Entry* e = table->find(sockets[i]->id());
    ASSERT_NE(e, nullptr) << i;
    EXPECT_EQ(e->value, static_cast<int>(i));
  }
  EXPECT_TRUE(released.empty());
  // One closes: its entry is reclaimed for the new socket.
  sockets[5]->close();
  Entry* e = table->add(extra.id(), extra.fd, kB, Released{&released});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(released, std::vector<int>{5});
  EXPECT_EQ(table->find(sockets[0]->id())->value, 0);
}

// A long-lived program: the first socket stays, 20,000 others come and go. The first is found
// all along, the table never fills, and the cost of a lookup does not grow.
TEST(SocketTable, TheFirstSocketSurvivesManyShortLivedOnes) {
  constexpr std::size_t kN = 256;
  auto table = std::make_unique<Table<kN>>();
  std::vector<int> released;
  Socket first;
  table->add(first.id(), first.fd, kA, Released{&released})->value = -1;
  const auto timeLookups = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 2000; ++i) {
      if (table->find(first.id()) == nullptr) return std::chrono::nanoseconds::max();
    }
    return std::chrono::steady_clock::now() - start;
  };
  for (int i = 0; i < 20000; ++i) {
    Socket s;
    ASSERT_NE(table->add(s.id(), s.fd, kB, Released{&released}), nullptr) << i;
    // Some live a while: closed a few at a time, as a crawler's do.
  }
  EXPECT_LE(table->size(), kN);
  Entry* e = table->find(first.id());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, -1);
  EXPECT_EQ(table->findFd(first.fd, Released{&released}), e);
  EXPECT_NE(timeLookups(), std::chrono::nanoseconds::max());
  EXPECT_GE(released.size(), 20000u - kN);
}

TEST(SocketTable, DeletionKeepsEveryOtherEntryFindable) {
  // Many entries colliding in runs, freed in an order that exercises the backward shift.
  constexpr std::size_t kN = 64;
  auto table = std::make_unique<Table<kN>>();
  std::vector<int> released;
  std::vector<std::unique_ptr<Socket>> sockets;
  for (std::size_t i = 0; i < kN; ++i) {
    sockets.push_back(std::make_unique<Socket>());
    ASSERT_NE(table->add(sockets[i]->id(), sockets[i]->fd, kA, Released{&released}), nullptr);
  }
  for (std::size_t i = 0; i < kN; i += 3) {
    table->free(*table->find(sockets[i]->id()), Released{&released});
    for (std::size_t j = 0; j < kN; ++j) {
      const bool freed = j % 3 == 0 && j <= i;
      EXPECT_EQ(table->find(sockets[j]->id()) == nullptr, freed) << "after " << i << ": " << j;
    }
  }
}

TEST(SocketTable, ADup2OntoATrackedNumberForgetsWhatItHeld) {
  auto table = std::make_unique<Table<64>>();
  std::vector<int> released;
  Socket a, b;
  table->add(a.id(), a.fd, kA, Released{&released})->value = 1;
  table->add(b.id(), b.fd, kB, Released{&released})->value = 2;
  ASSERT_EQ(::dup2(a.fd, b.fd), b.fd);  // b's socket is closed by the kernel
  ASSERT_TRUE(table->duplicate(a.fd, b.fd, Released{&released}));
  EXPECT_EQ(released, std::vector<int>{2});
  EXPECT_EQ(table->tagHint(b.fd, 0xFF), kA);
  EXPECT_EQ(table->findFd(b.fd, Released{&released})->value, 1);
}

}  // namespace
}  // namespace fwgate::client::preload
