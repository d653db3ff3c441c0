#include "http_wire.hpp"

#include <algorithm>
#include <cstring>

namespace fwgate::bench::http {

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxLine = 4096;  // a chunk-size or trailer line

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A comma-separated list (Connection, Transfer-Encoding) holds this token, case-insensitively.
bool listHas(std::string_view list, std::string_view token) {
  for (int guard = 0; guard < 64 && !list.empty(); ++guard) {
    auto comma = list.find(',');
    if (iequals(trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool parseDecimal(std::string_view s, std::uint64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

// The fields of a head, after its first line: calls onField(name, value) for each.
template <class OnField>
bool forEachField(std::string_view fields, OnField&& onField) {
  for (int guard = 0; guard < 1000 && !fields.empty(); ++guard) {
    auto eol = fields.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::string_view line = fields.substr(0, eol);
    fields.remove_prefix(eol + 2);
    if (line.empty()) return true;  // the blank line
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    onField(line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  return false;
}

// "HTTP/1.x" at the front; the minor version, or -1.
int versionMinor(std::string_view s) {
  if (s.size() < 8 || s.substr(0, 7) != "HTTP/1.") return -1;
  if (s[7] == '0') return 0;
  if (s[7] == '1') return 1;
  return -1;
}

char patternByte(std::size_t i) {
  return static_cast<char>('a' + i % 26);
}

}  // namespace

std::string buildGet(std::string_view hostPort, std::string_view path, bool throughProxy,
                     bool closeAfter) {
  std::string out = "GET ";
  if (throughProxy) (out += "http://") += hostPort;
  out += path;
  out += " HTTP/1.1\r\nHost: ";
  out += hostPort;
  out += "\r\nUser-Agent: fwgate-bench\r\nAccept: */*\r\n";
  if (closeAfter) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string buildConnect(std::string_view hostPort) {
  std::string out = "CONNECT ";
  out += hostPort;
  out += " HTTP/1.1\r\nHost: ";
  out += hostPort;
  out += "\r\nUser-Agent: fwgate-bench\r\n\r\n";
  return out;
}

void ResponseReader::reset(bool toConnect) {
  toConnect_ = toConnect;
  stage_ = Stage::Head;
  head_.clear();
  headBytes_ = 0;
  status_ = 0;
  keepAlive_ = true;
  remaining_ = 0;
  bodyBytes_ = 0;
  error_ = "";
}

Parse ResponseReader::invalid(const char* why) {
  error_ = why;
  stage_ = Stage::Done;
  return Parse::Invalid;
}

Parse ResponseReader::parseHead() {
  std::string_view head(head_);
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  int minor = versionMinor(line);
  if (minor < 0 || line.size() < 12 || line[8] != ' ') return invalid("bad_status_line");
  std::uint64_t code = 0;
  if (!parseDecimal(line.substr(9, 3), code) || code < 100 || code > 999) {
    return invalid("bad_status_line");
  }
  status_ = static_cast<int>(code);
  bool chunked = false, closeToken = false, keepAliveToken = false;
  std::uint64_t length = 0;
  bool hasLength = false, badLength = false;
  bool ok = forEachField(head.substr(eol + 2), [&](std::string_view name, std::string_view value) {
    if (iequals(name, "Content-Length")) {
      std::uint64_t v = 0;
      if (!parseDecimal(value, v) || (hasLength && v != length)) badLength = true;
      length = v;
      hasLength = true;
    } else if (iequals(name, "Transfer-Encoding")) {
      chunked = chunked || listHas(value, "chunked");
    } else if (iequals(name, "Connection") || iequals(name, "Proxy-Connection")) {
      closeToken = closeToken || listHas(value, "close");
      keepAliveToken = keepAliveToken || listHas(value, "keep-alive");
    }
  });
  if (!ok) return invalid("bad_field_line");
  if (badLength) return invalid("bad_content_length");
  headBytes_ = head_.size();
  if (status_ >= 100 && status_ < 200 && status_ != 101) {  // interim: the real one follows
    head_.clear();
    status_ = 0;
    return Parse::NeedMore;
  }
  keepAlive_ = minor == 1 ? !closeToken : keepAliveToken;
  if (toConnect_ && status_ >= 200 && status_ < 300) {
    stage_ = Stage::Done;
    return Parse::Complete;
  }
  if (status_ == 204 || status_ == 304) {
    stage_ = Stage::Done;
    return Parse::Complete;
  }
  head_.clear();
  if (chunked) {
    stage_ = Stage::ChunkSize;
  } else if (hasLength) {
    remaining_ = length;
    stage_ = Stage::Length;
    if (length == 0) {
      stage_ = Stage::Done;
      return Parse::Complete;
    }
  } else {
    keepAlive_ = false;
    stage_ = Stage::UntilClose;
  }
  return Parse::NeedMore;
}

Parse ResponseReader::feedChunked(const char* data, std::size_t n, std::size_t& i) {
  for (int guard = 0; guard < 1'000'000 && i < n; ++guard) {
    switch (stage_) {
      case Stage::ChunkSize:
      case Stage::Trailer: {
        const char* nl = static_cast<const char*>(std::memchr(data + i, '\n', n - i));
        std::size_t take = nl ? static_cast<std::size_t>(nl - (data + i)) + 1 : n - i;
        head_.append(data + i, take);
        i += take;
        if (head_.size() > kMaxLine) return invalid("bad_chunk");
        if (!nl) return Parse::NeedMore;
        if (head_.size() < 2 || head_[head_.size() - 2] != '\r') return invalid("bad_chunk");
        std::string_view line(head_.data(), head_.size() - 2);
        if (stage_ == Stage::Trailer) {
          bool end = line.empty();
          head_.clear();
          if (end) {
            stage_ = Stage::Done;
            return Parse::Complete;
          }
          continue;
        }
        line = line.substr(0, line.find(';'));
        std::uint64_t size = 0;
        if (line.empty() || line.size() > 15) return invalid("bad_chunk");
        for (char c : line) {
          int d = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
          if (d < 0) return invalid("bad_chunk");
          size = size * 16 + static_cast<std::uint64_t>(d);
        }
        head_.clear();
        remaining_ = size;
        stage_ = size == 0 ? Stage::Trailer : Stage::ChunkData;
        break;
      }
      case Stage::ChunkData: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
        i += take;
        remaining_ -= take;
        bodyBytes_ += take;
        if (remaining_ == 0) stage_ = Stage::ChunkDataEnd;
        break;
      }
      case Stage::ChunkDataEnd: {
        head_.push_back(data[i++]);
        if (head_.size() < 2) break;
        if (head_ != "\r\n") return invalid("bad_chunk");
        head_.clear();
        stage_ = Stage::ChunkSize;
        break;
      }
      default:
        return invalid("internal");
    }
  }
  return Parse::NeedMore;
}

Parse ResponseReader::feed(const char* data, std::size_t n, std::size_t& used) {
  std::size_t i = 0;
  used = 0;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    switch (stage_) {
      case Stage::Head: {
        if (i >= n) return Parse::NeedMore;
        // Append up to the end of the head; look for the blank line across the pieces.
        std::size_t before = head_.size();
        head_.append(data + i, std::min(n - i, kMaxHead + 4 - before));
        std::size_t from = before >= 3 ? before - 3 : 0;
        auto end = std::string_view(head_).find("\r\n\r\n", from);
        if (end == std::string_view::npos) {
          i = n;
          used = i;
          if (head_.size() > kMaxHead) return invalid("head_too_large");
          return Parse::NeedMore;
        }
        head_.resize(end + 4);
        i += head_.size() - before;
        used = i;
        Parse p = parseHead();
        if (p != Parse::NeedMore) return p;
        break;
      }
      case Stage::Length: {
        std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
        i += take;
        used = i;
        remaining_ -= take;
        bodyBytes_ += take;
        if (remaining_ > 0) return Parse::NeedMore;
        stage_ = Stage::Done;
        return Parse::Complete;
      }
      case Stage::ChunkSize:
      case Stage::ChunkData:
      case Stage::ChunkDataEnd:
      case Stage::Trailer: {
        Parse p = feedChunked(data, n, i);
        used = i;
        return p;
      }
      case Stage::UntilClose:
        bodyBytes_ += n - i;
        used = n;
        return Parse::NeedMore;
      case Stage::Done:
        return invalid("bytes_after_response");
    }
  }
  return invalid("internal");
}

Parse ResponseReader::finishAtEof() {
  if (stage_ == Stage::UntilClose) {
    stage_ = Stage::Done;
    return Parse::Complete;
  }
  return invalid(stage_ == Stage::Head && head_.empty() ? "eof_before_response"
                                                        : "eof_in_response");
}

Parse scanRequest(std::string_view buffer, RequestHead& out) {
  auto end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return buffer.size() > kMaxHead ? Parse::Invalid : Parse::NeedMore;
  }
  std::string_view head = buffer.substr(0, end + 4);
  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  auto lastSpace = line.rfind(' ');
  if (lastSpace == std::string_view::npos) return Parse::Invalid;
  int minor = versionMinor(line.substr(lastSpace + 1));
  if (minor < 0) return Parse::Invalid;
  bool closeToken = false, keepAliveToken = false, chunked = false, badLength = false;
  out = RequestHead{};
  bool ok = forEachField(head.substr(eol + 2), [&](std::string_view name, std::string_view value) {
    if (iequals(name, "Content-Length")) {
      badLength = badLength || !parseDecimal(value, out.contentLength);
    } else if (iequals(name, "Transfer-Encoding")) {
      chunked = true;
    } else if (iequals(name, "Connection")) {
      closeToken = closeToken || listHas(value, "close");
      keepAliveToken = keepAliveToken || listHas(value, "keep-alive");
    }
  });
  if (!ok || chunked || badLength) return Parse::Invalid;
  out.headBytes = head.size();
  out.keepAlive = minor == 1 ? !closeToken : keepAliveToken;
  return Parse::Complete;
}

std::string buildResponse(std::size_t bodyBytes, bool closing) {
  std::string out = "HTTP/1.1 200 OK\r\nServer: fwgate-bench\r\nContent-Type: text/plain\r\n";
  out += "Content-Length: " + std::to_string(bodyBytes) + "\r\n";
  if (closing) out += "Connection: close\r\n";
  out += "\r\n";
  for (std::size_t i = 0; i < bodyBytes; ++i) out.push_back(patternByte(i));
  return out;
}

}  // namespace fwgate::bench::http
