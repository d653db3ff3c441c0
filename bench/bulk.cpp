// bulk: N streams write as fast as they can; the rate is what the sink received in the window.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "load.hpp"
#include "opener.hpp"
#include "procstat.hpp"

namespace fwgate::bench {

namespace {

struct SinkCounters {
  bool ok = false;
  std::uint64_t bytes = 0;
  std::int64_t tNs = 0;
  std::uint64_t active = 0;
};

SinkCounters readSink(const Endpoint& stats) {
  SinkCounters out;
  auto line = fetchLine(stats, std::chrono::milliseconds(2000));
  if (!line) return out;
  auto j = nlohmann::json::parse(*line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  out.ok = true;
  out.bytes = j.value("bytes", std::uint64_t{0});
  out.tNs = j.value("t_ns", std::int64_t{0});
  out.active = j.value("active", std::uint64_t{0});
  return out;
}

// One blocking connect() per stream, as a program under LD_PRELOAD makes it; each connected
// socket is then made non-blocking and registered like openConnections' ready ones.
OpenResult openBlocking(const CommonLoadOptions& common, int streams, int epfd,
                        std::uint32_t readyEvents, ConnectPath path, PathCounts& paths) {
  OpenResult result;
  auto begin = Clock::now();
  for (int i = 0; i < streams && !stopRequested(); ++i) {
    const Endpoint* source =
        common.sources.empty()
            ? nullptr
            : &common.sources[static_cast<std::size_t>(i) % common.sources.size()];
    int fd = connectBlocking(common.target, source, 10);
    if (fd < 0) {
      ++result.failed;
      result.errors.add("connect_" + errnoName(-fd));
      continue;
    }
    if (std::string why = checkPath(fd, common.target, path, paths); !why.empty()) {
      ::close(fd);
      ++result.failed;
      result.errors.add(why);
      continue;
    }
    setNonBlocking(fd);
    epoll_event ev{};
    ev.events = readyEvents | EPOLLET;
    ev.data.u64 = kReadyTag | result.ready.size();
    ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    result.ready.emplace_back();
    result.ready.back().adopt(fd);
  }
  result.seconds = secondsSince(begin);
  return result;
}

struct Stream {
  Dial dial;
  bool writable = true;
  bool alive = true;
};

}  // namespace

int runBulk(const BulkOptions& options) {
  installStopSignals();
  const auto& common = options.common;
  DialPlan plan = dialPlanFor(common, 0);
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  OpenRequest request;
  request.count = options.streams;
  request.parallel = options.streams;
  request.connTimeoutSeconds = 10;
  request.overallTimeoutSeconds = 30;
  request.readyEvents = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
  OpenResult opened;
  PathCounts paths;
  if (options.blockingConnect) {
    opened = openBlocking(common, options.streams, epoll.get(), request.readyEvents, options.path,
                          paths);
  } else {
    opened = openConnections(plan, request, epoll.get());
  }
  ErrorCounts errors = opened.errors;

  std::vector<Stream> streams;
  for (auto& dial : opened.ready) streams.push_back(Stream{std::move(dial)});
  std::vector<char> block(options.writeBytes, 'x');

  auto begin = Clock::now();
  auto toDuration = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  auto windowStart = begin + toDuration(options.warmupSeconds);
  auto windowEnd = windowStart + toDuration(options.seconds);
  SinkCounters sink0, sink1;
  WindowCpu cpu(common.watchPid, common.farPid);
  std::uint64_t sent = 0, sent0 = 0, sent1 = 0;
  bool inWindow = false;
  epoll_event events[64];

  for (std::uint64_t loop = 0; loop < 10'000'000'000ULL && !streams.empty(); ++loop) {
    auto now = Clock::now();
    if (stopRequested()) break;
    if (!inWindow && now >= windowStart) {
      inWindow = true;
      sink0 = readSink(options.sinkStats);
      cpu.start();
      sent0 = sent;
    }
    if (inWindow && now >= windowEnd) {
      cpu.stop();
      sink1 = readSink(options.sinkStats);
      sent1 = sent;
      break;
    }
    bool anyWritable = false;
    for (auto& s : streams) {
      // A few large writes per stream per turn, so that streams share the sender fairly.
      for (int w = 0; w < 4 && s.alive && s.writable; ++w) {
        ssize_t n = ::send(s.dial.fd(), block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          sent += static_cast<std::uint64_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          s.writable = false;
        } else {
          errors.add("send_" + (n < 0 ? errnoName(errno) : std::string("zero")));
          s.alive = false;
          s.dial.close();
        }
      }
      anyWritable = anyWritable || (s.alive && s.writable);
    }
    int n = ::epoll_wait(epoll.get(), events, 64, anyWritable ? 0 : 10);
    for (int i = 0; i < n; ++i) {
      auto index = static_cast<std::size_t>(events[i].data.u64 & ~kReadyTag);
      if (index >= streams.size() || !streams[index].alive) continue;
      Stream& s = streams[index];
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        errors.add("stream_closed_by_peer");  // the sink never writes, so this is a close
        s.alive = false;
        s.dial.close();
        continue;
      }
      if (events[i].events & EPOLLOUT) s.writable = true;
    }
  }

  std::size_t alive = 0;
  for (auto& s : streams) alive += s.alive ? 1 : 0;
  nlohmann::json out{{"mode", "bulk"},
                     {"tags", tagsToJson(common.tags)},
                     {"proxy", common.proxy ? common.proxy->text : "none"},
                     {"protocol", options.blockingConnect ? "blocking-connect"
                                                          : proxyProtocolName(common.protocol)},
                     {"target", common.target.text},
                     {"streams", options.streams},
                     {"streams_opened", opened.ready.size()},
                     {"streams_alive_at_end", alive},
                     {"write_bytes", options.writeBytes},
                     {"warmup_s", options.warmupSeconds},
                     {"errors", errors.total()},
                     {"error_reasons", errors.toJson()}};
  if (options.blockingConnect) out["paths"] = paths.toJson();
  bool measured = sink0.ok && sink1.ok && sink1.tNs > sink0.tNs;
  if (!measured && !streams.empty() && !stopRequested()) {
    // No rate without the sink's counter: a failure of the run, counted as one.
    errors.add(sink0.ok ? "sink_counter_unreadable_at_end" : "sink_counter_unreadable");
    out["errors"] = errors.total();
    out["error_reasons"] = errors.toJson();
  }
  out["measured"] = measured;
  if (measured) {
    double window = static_cast<double>(sink1.tNs - sink0.tNs) / 1e9;
    std::uint64_t bytes = sink1.bytes - sink0.bytes;
    out["window_s"] = window;
    out["bytes"] = bytes;  // received by the sink between its two counter reads
    out["bytes_per_s"] = static_cast<double>(bytes) / window;
    out["gbytes_per_s"] = static_cast<double>(bytes) / window / 1e9;
    out["sent_bytes"] = sent1 - sent0;  // accepted by write() in the window, for comparison only
    out["sink_active_at_end"] = sink1.active;
    cpu.addTo(out, window);
  }
  emit(out);
  return measured && errors.total() == 0 ? 0 : 1;
}

}  // namespace fwgate::bench
