// The preload library's one table of sockets it looks after, keyed by the socket's identity (its
// inode, the same under every duplicate of the descriptor). Fixed storage, no allocation, no
// syscall of its own: the caller holds the lock and passes in how a descriptor number is
// identified, so the table is tested with real sockets and no hooks (tests/unit/client).
//
// - find by identity is O(1): open addressing, linear probing, backward-shift deletion (no
//   tombstones, so a long-lived process never degrades);
// - find by descriptor number is one array read for numbers below kFdSlots (the hooks' fast
//   "not ours" answer is a relaxed atomic load, no lock, no syscall);
// - an entry is never evicted while one of its descriptor numbers still holds the socket. Entries
//   whose every number is gone are freed by a sweep: a few per add, and all of them before add
//   reports the table full (nullptr: the caller's new socket gets an errno, an old one is never
//   forgotten).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

namespace fwgate::client::preload {

// The identity of a socket, stable across dup(): its device and inode.
struct SocketId {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const SocketId&, const SocketId&) = default;
};

// The descriptor numbers under which the program holds one socket (the first and its duplicates):
// the socket lives while one of them still refers to it.
struct Descriptors {
  static constexpr std::size_t kMax = 8;
  int numbers[kMax] = {-1, -1, -1, -1, -1, -1, -1, -1};
  // More duplicates than kept: the newest replaces the last.
  void add(int fd) {
    int* free = nullptr;
    for (int& n : numbers) {
      if (n == fd) return;
      if (n < 0 && free == nullptr) free = &n;
    }
    *(free != nullptr ? free : &numbers[kMax - 1]) = fd;
  }
  // One number that held the socket when last seen (-1: none).
  int first() const {
    for (const int n : numbers) {
      if (n >= 0) return n;
    }
    return -1;
  }
  void remove(int fd) {
    for (int& n : numbers) {
      if (n == fd) n = -1;
    }
  }
};

// Identify(fd, SocketId&) -> bool: what socket a descriptor number holds now (fstat in the
// library). Entry: a trivially copyable struct with `SocketId id`, `Descriptors fds` and
// `std::uint8_t tag` (nonzero while in use: what kind of entry; the fast path reads it per number).
// The table is all zeros until used (it lives in .bss, constant-initialised, so a hook that runs
// before any constructor finds it ready), and touches its storage in order as it grows.
template <typename Entry, std::size_t Capacity, bool (*Identify)(int, SocketId&)>
class SocketTable {
  static_assert((Capacity & (Capacity - 1)) == 0, "Capacity is a power of two");
  static_assert(std::is_trivially_copyable_v<Entry> && std::is_trivially_destructible_v<Entry>);
  static constexpr std::size_t kSlots = Capacity * 2;  // load factor at most 1/2
  static constexpr std::size_t kMask = kSlots - 1;

 public:
  // Descriptor numbers below this are found without a syscall; larger ones by identity.
  static constexpr int kFdSlots = 65536;

  constexpr SocketTable() = default;
  SocketTable(const SocketTable&) = delete;
  SocketTable& operator=(const SocketTable&) = delete;

  std::size_t size() const { return size_; }
  static constexpr std::size_t capacity() { return Capacity; }

  // The tag of the entry that descriptor number `fd` was last seen holding (0: none), without the
  // lock: a hint to skip the table, never proof (the number may have been closed since). Numbers
  // past kFdSlots answer `unknown`.
  std::uint8_t tagHint(int fd, std::uint8_t unknown) const {
    if (fd < 0) return 0;
    if (fd >= kFdSlots) return unknown;
    return static_cast<std::uint8_t>(byFd_[fd].load(std::memory_order_relaxed) >> kTagShift);
  }

  Entry* find(const SocketId& id) {
    if (size_ == 0) return nullptr;
    for (std::size_t slot = home(id);; slot = (slot + 1) & kMask) {
      const std::uint32_t ref = index_[slot];
      if (ref == 0) return nullptr;
      if (at(ref).id == id) return &at(ref);
    }
  }

  // The entry of the socket `fd` holds now (the number is remembered under it), or nullptr.
  // A number that was an entry's but holds another socket now (closed, reused) is dropped from
  // that entry, and an entry left with no number that holds it is freed (`release` first).
  template <typename Release>
  Entry* findFd(int fd, Release&& release) {
    if (fd < 0 || size_ == 0) return nullptr;
    SocketId now;
    const bool isSocket = Identify(fd, now);
    if (fd < kFdSlots) {
      const std::uint32_t ref = byFd_[fd].load(std::memory_order_relaxed) & kRefMask;
      if (ref == 0) {
        if (!isSocket) return nullptr;
        // Not seen under this number: a duplicate made where the hooks could not see it.
        Entry* e = find(now);
        if (e != nullptr) remember(*e, fd);
        return e;
      }
      Entry& e = at(ref);
      if (isSocket && e.id == now) return &e;
      forget(e, fd, release);
      if (!isSocket) return nullptr;
    } else if (!isSocket) {
      return nullptr;
    }
    Entry* e = find(now);
    if (e != nullptr) remember(*e, fd);
    return e;
  }

  // A new entry for socket `id` under number `fd` (an existing entry of `id` is returned as it
  // is, with `fd` remembered). nullptr when the table is full even after freeing every entry
  // whose socket is gone.
  template <typename Release>
  Entry* add(const SocketId& id, int fd, std::uint8_t tag, Release&& release) {
    if (Entry* e = find(id)) {
      remember(*e, fd);
      return e;
    }
    sweep(kSweepPerAdd, release);
    std::uint32_t ref = takeFree();
    if (ref == 0) {
      sweep(Capacity, release);
      ref = takeFree();
      if (ref == 0) return nullptr;
    }
    Entry& e = *new (&storage_[(ref - 1) * sizeof(Entry)]) Entry{};
    e.id = id;
    e.tag = tag;
    std::size_t slot = home(id);
    while (index_[slot] != 0) slot = (slot + 1) & kMask;
    index_[slot] = ref;
    ++size_;
    remember(e, fd);
    return &e;
  }

  // The entry's kind changes (a pending connect became a remoted socket).
  void retag(Entry& e, std::uint8_t tag) {
    e.tag = tag;
    for (const int n : e.fds.numbers) publish(n, refOf(e), tag);
  }

  // `to` now holds the same socket as `from` (dup, dup2, dup3, F_DUPFD): false if `from` is not
  // in the table. Whatever `to` held before is forgotten under that number.
  template <typename Release>
  bool duplicate(int from, int to, Release&& release) {
    if (to < 0 || size_ == 0) return false;
    dropNumber(to, release);
    Entry* e = findFd(from, release);
    if (e == nullptr) return false;
    remember(*e, to);
    return true;
  }

  template <typename Release>
  void free(Entry& e, Release&& release) {
    if (e.tag == 0) return;
    release(e);
    for (const int n : e.fds.numbers) {
      if (n >= 0 && n < kFdSlots &&
          (byFd_[n].load(std::memory_order_relaxed) & kRefMask) == refOf(e)) {
        byFd_[n].store(0, std::memory_order_relaxed);
      }
    }
    eraseIndex(e.id);
    const std::uint32_t ref = refOf(e);
    new (&e) Entry{};
    nextFree_[ref - 1] = freeHead_;
    freeHead_ = ref;
    --size_;
  }

  // Whether any remembered number still holds the entry's socket.
  bool alive(const Entry& e) const {
    for (const int n : e.fds.numbers) {
      SocketId now;
      if (n >= 0 && Identify(n, now) && now == e.id) return true;
    }
    return false;
  }

  // Frees up to `count` entries' worth of dead ones, continuing where the last sweep stopped.
  template <typename Release>
  void sweep(std::size_t count, Release&& release) {
    for (std::size_t k = 0; k < count && size_ > 0 && highWater_ > 0; ++k) {
      if (cursor_ >= highWater_) cursor_ = 0;
      Entry& e = at(++cursor_);
      if (e.tag != 0 && !alive(e)) free(e, release);
    }
  }

  // Number `fd` holds the entry's socket (a duplicate found some other way).
  void remember(Entry& e, int fd) {
    if (fd < 0) return;
    // A number held by the newest socket only: whatever entry had it before no longer does.
    if (fd < kFdSlots) {
      const std::uint32_t old = byFd_[fd].load(std::memory_order_relaxed) & kRefMask;
      if (old != 0 && old != refOf(e)) at(old).fds.remove(fd);
    }
    // A number pushed out of a full list is no longer found by number (only by identity).
    const int pushed = e.fds.numbers[Descriptors::kMax - 1];
    bool full = true;
    for (const int n : e.fds.numbers) full = full && n >= 0 && n != fd;
    e.fds.add(fd);
    if (full && pushed != fd && pushed >= 0 && pushed < kFdSlots &&
        (byFd_[pushed].load(std::memory_order_relaxed) & kRefMask) == refOf(e)) {
      byFd_[pushed].store(0, std::memory_order_relaxed);
    }
    publish(fd, refOf(e), e.tag);
  }

  // Every entry in use, in storage order: f(Entry&) returns false to stop.
  template <typename F>
  void forEach(F&& f) {
    for (std::size_t ref = 1; ref <= highWater_; ++ref) {
      if (at(ref).tag != 0 && !f(at(ref))) return;
    }
  }

 private:
  static constexpr std::uint32_t kRefMask = 0x00FFFFFF;
  static constexpr int kTagShift = 24;
  static constexpr std::size_t kSweepPerAdd = 2;
  static_assert(Capacity < kRefMask);

  static std::size_t home(const SocketId& id) {
    // 64-bit mix (the finaliser of MurmurHash3): inode numbers are sequential.
    std::uint64_t h =
        static_cast<std::uint64_t>(id.ino) ^ (static_cast<std::uint64_t>(id.dev) << 32);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return static_cast<std::size_t>(h) & kMask;
  }

  Entry& at(std::size_t ref) {
    return *std::launder(reinterpret_cast<Entry*>(&storage_[(ref - 1) * sizeof(Entry)]));
  }
  std::uint32_t refOf(const Entry& e) const {
    const auto offset = reinterpret_cast<const std::byte*>(&e) - storage_;
    return static_cast<std::uint32_t>(static_cast<std::size_t>(offset) / sizeof(Entry)) + 1;
  }

  void publish(int fd, std::uint32_t ref, std::uint8_t tag) {
    if (fd < 0 || fd >= kFdSlots) return;
    byFd_[fd].store(ref | (static_cast<std::uint32_t>(tag) << kTagShift),
                    std::memory_order_relaxed);
  }

  template <typename Release>
  void forget(Entry& e, int fd, Release&& release) {
    e.fds.remove(fd);
    if (fd < kFdSlots) byFd_[fd].store(0, std::memory_order_relaxed);
    if (!alive(e)) free(e, release);
  }

  // Number `fd` is about to hold something else: it no longer holds what it did.
  template <typename Release>
  void dropNumber(int fd, Release&& release) {
    if (fd >= kFdSlots) return;
    const std::uint32_t ref = byFd_[fd].load(std::memory_order_relaxed) & kRefMask;
    if (ref != 0) forget(at(ref), fd, release);
  }

  std::uint32_t takeFree() {
    if (freeHead_ != 0) {
      const std::uint32_t ref = freeHead_;
      freeHead_ = nextFree_[ref - 1];
      return ref;
    }
    // Storage never used yet is taken in order, so an idle table touches no page of it.
    if (highWater_ < Capacity) return static_cast<std::uint32_t>(++highWater_);
    return 0;
  }

  void eraseIndex(const SocketId& id) {
    std::size_t hole = home(id);
    for (;; hole = (hole + 1) & kMask) {
      if (index_[hole] == 0) return;
      if (at(index_[hole]).id == id) break;
    }
    // Backward shift: an entry further along the run moves into the hole unless its home lies
    // cyclically within (hole, position].
    for (std::size_t j = (hole + 1) & kMask; index_[j] != 0; j = (j + 1) & kMask) {
      const std::size_t h = home(at(index_[j]).id);
      const bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
      if (stays) continue;
      index_[hole] = index_[j];
      hole = j;
    }
    index_[hole] = 0;
  }

  std::size_t size_ = 0;
  std::size_t highWater_ = 0;
  std::size_t cursor_ = 0;
  std::uint32_t freeHead_ = 0;
  std::uint32_t nextFree_[Capacity] = {};
  std::uint32_t index_[kSlots] = {};
  std::atomic<std::uint32_t> byFd_[kFdSlots] = {};
  alignas(Entry) std::byte storage_[sizeof(Entry) * Capacity] = {};
};

}  // namespace fwgate::client::preload
