// Relay buffers lent only while data is in flight, so an idle relayed connection holds none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace fwgate::gateway {

// One pool per event loop (not thread-safe by design: one loop, one pool).
class BufferPool {
 public:
  explicit BufferPool(std::size_t bufferSize, std::size_t maxIdle = 32)
      : size_(bufferSize), maxIdle_(maxIdle) {}

  class Lease {
   public:
    Lease(BufferPool& pool, std::unique_ptr<std::uint8_t[]> data, std::size_t size)
        : pool_(&pool), data_(std::move(data)), size_(size) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), data_(std::move(o.data_)), size_(o.size_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (data_) pool_->release(std::move(data_), size_);
    }
    std::uint8_t* data() const { return data_.get(); }
    std::size_t size() const { return size_; }

   private:
    BufferPool* pool_;
    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_;
  };

  Lease acquire() {
    if (!idle_.empty()) {
      auto data = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(data), size_);
    }
    return Lease(*this, std::make_unique_for_overwrite<std::uint8_t[]>(size_), size_);
  }

  // New leases use the new size; buffers of the old size are freed as they come back.
  void setBufferSize(std::size_t size) {
    if (size == size_) return;
    size_ = size;
    idle_.clear();
  }
  std::size_t bufferSize() const { return size_; }
  std::size_t idleCount() const { return idle_.size(); }

 private:
  void release(std::unique_ptr<std::uint8_t[]> data, std::size_t size) {
    if (size == size_ && idle_.size() < maxIdle_) idle_.push_back(std::move(data));
  }

  std::size_t size_;
  std::size_t maxIdle_;
  std::vector<std::unique_ptr<std::uint8_t[]>> idle_;
};

}  // namespace fwgate::gateway
