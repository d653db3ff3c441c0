// Typed, path-aware reading of TOML values for the configuration parser.
#include "config/toml_reader.hpp"

#include <algorithm>
#include <limits>

namespace fwgate::config::detail {
namespace {

bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool isBareKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return isAsciiAlnum(c) || c == '_' || c == '-';
  });
}

}  // namespace

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string keyPath(std::string_view parent, std::string_view key) {
  const std::string k = isBareKey(key) ? std::string(key) : quote(key);
  return parent.empty() ? k : fmt::format("{}.{}", parent, k);
}

std::string indexPath(std::string_view parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string_view typeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool isValidSetName(std::string_view name) {
  return !name.empty() && name.size() <= 128 && std::all_of(name.begin(), name.end(), [](char c) {
    return isAsciiAlnum(c) || c == '_' || c == '.' || c == '-';
  });
}

void Reader::error(std::string path, std::uint32_t line, std::string message) {
  errors_.push_back(Diagnostic{std::move(path), std::move(message), line});
}

void Reader::error(std::string path, const toml::node& where, std::string message) {
  error(std::move(path), where.source().begin.line, std::move(message));
}

void Reader::rejectUnknownKeys(const toml::table& table, std::string_view path,
                               std::initializer_list<std::string_view> known) {
  for (const auto& [key, node] : table) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    error(keyPath(path, key.str()), key.source().begin.line,
          "unknown key" + suggestion(key.str(), known));
  }
}

const toml::table* Reader::table(const toml::table& parent, std::string_view key,
                                 std::string_view parentPath) {
  const toml::node* n = parent.get(key);
  if (n == nullptr) return nullptr;
  if (const auto* t = n->as_table()) return t;
  error(keyPath(parentPath, key), *n, fmt::format("expected a table, got {}", typeName(*n)));
  return nullptr;
}

const toml::node* Reader::string(const toml::table& t, std::string_view key, std::string_view path,
                                 std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return nullptr;
  if (const auto* v = n->as_string()) {
    out = v->get();
    return n;
  }
  error(keyPath(path, key), *n, fmt::format("expected a string, got {}", typeName(*n)));
  return nullptr;
}

const toml::node* Reader::boolean(const toml::table& t, std::string_view key, std::string_view path,
                                  bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return nullptr;
  if (const auto* v = n->as_boolean()) {
    out = v->get();
    return n;
  }
  error(keyPath(path, key), *n, fmt::format("expected true or false, got {}", typeName(*n)));
  return nullptr;
}

const toml::node* Reader::integer(const toml::table& t, std::string_view key, std::string_view path,
                                  std::int64_t min, std::int64_t max, std::int64_t& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return nullptr;
  const auto* v = n->as_integer();
  if (v == nullptr) {
    error(keyPath(path, key), *n, fmt::format("expected an integer, got {}", typeName(*n)));
    return nullptr;
  }
  if (v->get() < min || v->get() > max) {
    error(keyPath(path, key), *n,
          fmt::format("{} is out of range (must be {}..{})", v->get(), min, max));
    return nullptr;
  }
  out = v->get();
  return n;
}

void Reader::duration(const toml::table& t, std::string_view key, std::string_view path,
                      Duration& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  Duration value{};
  if (const auto* i = n->as_integer()) {
    if (i->get() > 0 && i->get() <= std::numeric_limits<std::int64_t>::max() / 1000) {
      value = std::chrono::seconds(i->get());
    } else if (i->get() > 0) {
      error(keyPath(path, key), *n, "duration is too large");
      return;
    }
  } else if (const auto* s = n->as_string()) {
    if (!parseDuration(s->get(), value)) {
      error(keyPath(path, key), *n,
            fmt::format("invalid duration {} (expected e.g. \"250ms\", \"10s\", \"5m\", \"2h\" "
                        "or integer seconds)",
                        quote(s->get())));
      return;
    }
  } else {
    error(keyPath(path, key), *n,
          fmt::format("expected a duration such as \"10s\" or integer seconds, got {}",
                      typeName(*n)));
    return;
  }
  if (value.count() <= 0) {
    error(keyPath(path, key), *n, "duration must be greater than zero");
    return;
  }
  out = value;
}

}  // namespace fwgate::config::detail
