// The relay over real loopback sockets, in the manner of a TCP proxy integration test:
// upstream writes first, half-close in both directions, a large transfer, a reset.
#include "gateway/relay.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <thread>

#include "gateway/net.hpp"

namespace fwgate::gateway {
namespace {

using asio::ip::tcp;

// Four sockets: app <-> client_ ... server_ <-> upstream; the relay joins client_ and server_.
struct Pairs {
  asio::io_context io;
  tcp::socket app{io}, client{io}, server{io}, upstream{io};

  Pairs() {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    app.connect(acceptor.local_endpoint());
    client = acceptor.accept();
    server.connect(acceptor.local_endpoint());
    upstream = acceptor.accept();
  }
};

// Every test runs with each relay mode: copying, splice(2), and copy-then-splice (auto).
class Relay : public ::testing::TestWithParam<config::RelayMode> {
 protected:
  PipePool pipes_{65536};
  RelayPaths paths(BufferPool& pool) { return {pool, pipes_, GetParam()}; }
};

RelayResult runRelay(Pairs& p, RelayPaths paths, std::chrono::milliseconds idle,
                     std::function<void()> peers, std::span<const std::uint8_t> firstUp = {}) {
  RelayResult result;
  bool done = false;
  asio::co_spawn(p.io, relay(p.client, p.server, paths, idle, firstUp),
                 [&](std::exception_ptr e, RelayResult r) {
                   ASSERT_FALSE(e);
                   result = r;
                   done = true;
                 });
  std::thread t(peers);
  p.io.run_for(std::chrono::seconds(20));
  t.join();
  EXPECT_TRUE(done) << "relay did not finish";
  return result;
}

std::string readAll(tcp::socket& s) {
  std::string out;
  std::error_code ec;
  asio::read(s, asio::dynamic_buffer(out), ec);
  EXPECT_EQ(ec, asio::error::eof);
  return out;
}

TEST_P(Relay, UpstreamWritesFirstThenBothHalfClose) {
  Pairs p;
  BufferPool pool(4096);
  auto r = runRelay(p, paths(pool), std::chrono::seconds(10), [&] {
    asio::write(p.upstream, asio::buffer(std::string("220 hello\r\n")));
    std::string greet(11, '\0');
    asio::read(p.app, asio::buffer(greet));
    EXPECT_EQ(greet, "220 hello\r\n");
    // The app half-closes: upstream sees EOF but can still answer.
    asio::write(p.app, asio::buffer(std::string("QUIT\r\n")));
    p.app.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(readAll(p.upstream), "QUIT\r\n");
    asio::write(p.upstream, asio::buffer(std::string("221 bye\r\n")));
    p.upstream.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(readAll(p.app), "221 bye\r\n");
  });
  EXPECT_EQ(r.bytesUp, 6u);
  EXPECT_EQ(r.bytesDown, 20u);
  EXPECT_FALSE(r.idleTimeout);
  EXPECT_TRUE(r.error.empty()) << r.error;
  // A small exchange takes a pipe only when splicing is forced: auto copies it.
  if (GetParam() == config::RelayMode::Splice) {
    EXPECT_GE(pipes_.idleCount(), 1u);
  } else {
    EXPECT_EQ(pipes_.idleCount(), 0u);
  }
}

TEST_P(Relay, BytesTheClientSentAheadGoFirstAndCount) {
  Pairs p;
  BufferPool pool(4096);
  const std::string ahead = "pipelined behind the request|";
  const std::span<const std::uint8_t> firstUp{reinterpret_cast<const std::uint8_t*>(ahead.data()),
                                              ahead.size()};
  auto r = runRelay(
      p, paths(pool), std::chrono::seconds(10),
      [&] {
        asio::write(p.app, asio::buffer(std::string("then the stream")));
        p.app.shutdown(tcp::socket::shutdown_send);
        EXPECT_EQ(readAll(p.upstream), ahead + "then the stream");
        p.upstream.shutdown(tcp::socket::shutdown_send);
        readAll(p.app);
      },
      firstUp);
  EXPECT_EQ(r.bytesUp, ahead.size() + 15);
}

TEST_P(Relay, ServerHalfClosesFirstAndClientKeepsSending) {
  Pairs p;
  BufferPool pool(4096);
  auto r = runRelay(p, paths(pool), std::chrono::seconds(10), [&] {
    asio::write(p.upstream, asio::buffer(std::string("done")));
    p.upstream.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(readAll(p.app), "done");
    asio::write(p.app, asio::buffer(std::string("still talking")));
    p.app.shutdown(tcp::socket::shutdown_send);
    EXPECT_EQ(readAll(p.upstream), "still talking");
  });
  EXPECT_EQ(r.bytesUp, 13u);
  EXPECT_EQ(r.bytesDown, 4u);
}

TEST_P(Relay, LargeTransferArrivesWholeAndInOrderWithSmallBuffers) {
  Pairs p;
  BufferPool pool(1000);  // odd size: chunk boundaries fall everywhere
  constexpr std::size_t kSize = 32 * 1024 * 1024;
  std::vector<std::uint8_t> data(kSize);
  for (std::size_t i = 0; i < kSize; ++i) data[i] = static_cast<std::uint8_t>((i * 7919) >> 3);
  std::vector<std::uint8_t> received;
  auto r = runRelay(p, paths(pool), std::chrono::seconds(10), [&] {
    std::thread writer([&] {
      asio::write(p.app, asio::buffer(data));
      p.app.shutdown(tcp::socket::shutdown_send);
    });
    std::error_code ec;
    asio::read(p.upstream, asio::dynamic_buffer(received), ec);
    writer.join();
    p.upstream.shutdown(tcp::socket::shutdown_send);
    readAll(p.app);
  });
  EXPECT_EQ(r.bytesUp, kSize);
  EXPECT_TRUE(received == data);
  EXPECT_LE(pool.idleCount(), 2u);
  // Past kSpliceAfter, auto splices like splice mode; copy mode never touches a pipe.
  if (GetParam() == config::RelayMode::Copy) {
    EXPECT_EQ(pipes_.idleCount(), 0u);
  } else {
    EXPECT_GE(pipes_.idleCount(), 1u);
  }
}

TEST_P(Relay, ResetOnOneSideEndsBoth) {
  Pairs p;
  BufferPool pool(4096);
  auto r = runRelay(p, paths(pool), std::chrono::seconds(10), [&] {
    asio::write(p.app, asio::buffer(std::string("x")));
    std::string one(1, '\0');
    asio::read(p.upstream, asio::buffer(one));
    // SO_LINGER 0 then close: the kernel sends RST.
    p.upstream.set_option(asio::socket_base::linger(true, 0));
    p.upstream.close();
  });
  EXPECT_FALSE(r.error.empty());
}

TEST_P(Relay, IdleTimeoutEndsASilentRelay) {
  Pairs p;
  BufferPool pool(4096);
  auto r = runRelay(p, paths(pool), std::chrono::milliseconds(200), [] {});
  EXPECT_TRUE(r.idleTimeout);
}

INSTANTIATE_TEST_SUITE_P(Modes, Relay,
                         ::testing::Values(config::RelayMode::Copy, config::RelayMode::Splice,
                                           config::RelayMode::Auto),
                         [](const auto& info) {
                           for (const auto& m : config::kRelayModes) {
                             if (m.mode == info.param) return std::string(m.name);
                           }
                           return std::string("unknown");
                         });

TEST(PipePool, LendsEmptyPipesAndKeepsAtMostMaxIdle) {
  PipePool pool(1 << 20, 1);
  auto a = pool.acquire();
  auto b = pool.acquire();
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(b.valid());
  EXPECT_GE(a.capacity(), 65536u);
  const int fd = a.readEnd();
  pool.release(std::move(a));
  pool.release(std::move(b));
  EXPECT_EQ(pool.idleCount(), 1u);  // the second was closed
  auto c = pool.acquire();
  EXPECT_EQ(c.readEnd(), fd);
}

}  // namespace
}  // namespace fwgate::gateway
