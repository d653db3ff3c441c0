// Kernel pipes for splice(2) relaying, lent only while bytes are in flight (an idle relayed
// connection holds none) and returned only when empty.
#pragma once

#include <cstddef>
#include <vector>

namespace fwgate::gateway {

class Pipe {
 public:
  Pipe() = default;
  Pipe(int readEnd, int writeEnd, std::size_t capacity)
      : read_(readEnd), write_(writeEnd), capacity_(capacity) {}
  Pipe(Pipe&& o) noexcept { swap(o); }
  Pipe& operator=(Pipe&& o) noexcept {
    Pipe tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~Pipe();
  bool valid() const { return read_ >= 0; }
  int readEnd() const { return read_; }
  int writeEnd() const { return write_; }
  std::size_t capacity() const { return capacity_; }

 private:
  void swap(Pipe& o) noexcept;
  int read_ = -1;
  int write_ = -1;
  std::size_t capacity_ = 0;
};

// One pool per event loop (not thread-safe by design).
class PipePool {
 public:
  explicit PipePool(std::size_t capacity, std::size_t maxIdle = 64)
      : capacity_(capacity), maxIdle_(maxIdle) {}
  // An empty pipe, or an invalid one when the process is out of descriptors.
  Pipe acquire();
  // Give back a pipe that holds no data.
  void release(Pipe pipe);
  void setCapacity(std::size_t capacity);
  std::size_t idleCount() const { return idle_.size(); }

 private:
  std::size_t capacity_;
  std::size_t maxIdle_;
  std::vector<Pipe> idle_;
};

}  // namespace fwgate::gateway
