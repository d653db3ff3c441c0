// The few HTTP/1.1 bytes the load generator and the origin server need, sans-I/O: requests built
// once per run, a tri-state response reader (head, then a Content-Length, chunked or until-close
// body), and a request-head scanner for the origin. Written here, not taken from fwgate, so the
// benchmark never depends on the code under test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fwgate::bench::http {

enum class Parse : std::uint8_t { NeedMore, Complete, Invalid };

// "GET http://HOST:PORT/PATH HTTP/1.1" through a proxy (absolute form), "GET /PATH HTTP/1.1"
// directly (origin form); with closeAfter, "Connection: close".
std::string buildGet(std::string_view hostPort, std::string_view path, bool throughProxy,
                     bool closeAfter);

// "CONNECT HOST:PORT HTTP/1.1" with its Host field.
std::string buildConnect(std::string_view hostPort);

// Reads one response from the bytes of a connection, fed in pieces as they arrive.
class ResponseReader {
 public:
  // toConnect: the response to a CONNECT; a 2xx then ends at its head (the tunnel follows).
  void reset(bool toConnect = false);

  // Consumes from data[0..n); `used` says how many bytes belong to this response (the rest, if
  // any, came after it). Complete once the whole response is in.
  Parse feed(const char* data, std::size_t n, std::size_t& used);
  // The connection reached EOF: Complete if the body runs until close, else Invalid.
  Parse finishAtEof();

  int status() const { return status_; }
  // The connection may carry another request after this response (HTTP/1.1 without
  // "Connection: close", or HTTP/1.0 with "keep-alive").
  bool keepAlive() const { return keepAlive_; }
  std::uint64_t bodyBytes() const { return bodyBytes_; }
  std::size_t headBytes() const { return headBytes_; }
  // Why the response was Invalid: "bad_status_line", "bad_chunk", ...
  const char* error() const { return error_; }
  bool started() const { return headBytes_ > 0 || !head_.empty(); }

 private:
  enum class Stage : std::uint8_t {
    Head,
    Length,
    ChunkSize,
    ChunkData,
    ChunkDataEnd,
    Trailer,
    UntilClose,
    Done
  };
  Parse invalid(const char* why);
  Parse parseHead();
  Parse feedChunked(const char* data, std::size_t n, std::size_t& i);

  bool toConnect_ = false;
  Stage stage_ = Stage::Head;
  std::string head_;  // the head so far (also reused for a chunk-size or trailer line)
  std::size_t headBytes_ = 0;
  int status_ = 0;
  bool keepAlive_ = true;
  std::uint64_t remaining_ = 0;  // of the Content-Length body or of the current chunk
  std::uint64_t bodyBytes_ = 0;
  const char* error_ = "";
};

// A request head at the front of an origin server's buffer.
struct RequestHead {
  std::size_t headBytes = 0;  // including the blank line
  std::uint64_t contentLength = 0;
  bool keepAlive = true;  // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
};

// Complete: `out` is filled; NeedMore: no blank line yet; Invalid: not an HTTP/1.x request, a
// chunked body (the origin never expects one), or a head over 64 KiB.
Parse scanRequest(std::string_view buffer, RequestHead& out);

// The origin's answer: 200 with bodyBytes of a fixed pattern; closing adds "Connection: close".
std::string buildResponse(std::size_t bodyBytes, bool closing);

}  // namespace fwgate::bench::http
