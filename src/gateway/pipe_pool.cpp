#include "gateway/pipe_pool.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace fwgate::gateway {

Pipe::~Pipe() {
  if (read_ >= 0) ::close(read_);
  if (write_ >= 0) ::close(write_);
}

void Pipe::swap(Pipe& o) noexcept {
  std::swap(read_, o.read_);
  std::swap(write_, o.write_);
  std::swap(capacity_, o.capacity_);
}

Pipe PipePool::acquire() {
  if (!idle_.empty()) {
    Pipe p = std::move(idle_.back());
    idle_.pop_back();
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return {};
  // A larger pipe moves more per splice; the kernel may refuse (pipe-max-size), then 64 KiB.
  int size = ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(capacity_));
  if (size < 0) size = ::fcntl(fds[1], F_GETPIPE_SZ);
  return Pipe(fds[0], fds[1], size > 0 ? static_cast<std::size_t>(size) : 65536);
}

void PipePool::release(Pipe pipe) {
  if (pipe.valid() && idle_.size() < maxIdle_) idle_.push_back(std::move(pipe));
}

void PipePool::setCapacity(std::size_t capacity) {
  if (capacity == capacity_) return;
  capacity_ = capacity;
  idle_.clear();
}

}  // namespace fwgate::gateway
