// Typed, path-aware reading of TOML values for the configuration parser (private to config/).
#pragma once

#include <fmt/format.h>

#include <toml++/toml.h>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace fwgate::config::detail {

// "text" with '"', '\\' and control characters escaped, for messages.
std::string quote(std::string_view s);
// "parent.key", quoting a key that is not a bare TOML key: networks."a.b".
std::string keyPath(std::string_view parent, std::string_view key);
// "parent[index]".
std::string indexPath(std::string_view parent, std::size_t index);
// "a string", "an integer", ... for "expected X, got Y".
std::string_view typeName(const toml::node& n);
std::size_t editDistance(std::string_view a, std::string_view b);
// 'A'..'Z' to 'a'..'z'; every other byte as it is.
char lowerAscii(char c);
// Network, group and packet filter names: [A-Za-z0-9_.-]+, at most 128 bytes.
bool isValidSetName(std::string_view name);

// " (did you mean \"sources\"?)" when one candidate is close to `word`, else "".
template <class Names>
std::string suggestion(std::string_view word, const Names& candidates) {
  std::string_view best;
  std::size_t bestDistance = 3;
  for (const auto& candidate : candidates) {
    const std::size_t d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean {}?)", quote(best));
}

// Typed access to TOML values: every wrong type or range is reported with its key path and
// yields null, so callers only ever see values they can use.
class Reader {
 public:
  explicit Reader(std::vector<Diagnostic>& errors) : errors_(errors) {}

  void error(std::string path, std::uint32_t line, std::string message);
  void error(std::string path, const toml::node& where, std::string message);
  // How many errors have been reported so far (a parser compares before and after a part).
  std::size_t errorCount() const { return errors_.size(); }

  // Reports every key of `table` not in `known`, suggesting the closest known key.
  void rejectUnknownKeys(const toml::table& table, std::string_view path,
                         std::initializer_list<std::string_view> known);

  // The sub-table parent[key]; null when absent or (reported) not a table.
  const toml::table* table(const toml::table& parent, std::string_view key,
                           std::string_view parentPath);

  // Scalars: set `out` and return the node, or return null when absent or (reported) invalid.
  const toml::node* string(const toml::table& t, std::string_view key, std::string_view path,
                           std::string& out);

  const toml::node* boolean(const toml::table& t, std::string_view key, std::string_view path,
                            bool& out);

  const toml::node* integer(const toml::table& t, std::string_view key, std::string_view path,
                            std::int64_t min, std::int64_t max, std::int64_t& out);

  // A duration: a string parseDuration accepts, or integer seconds; always > 0.
  void duration(const toml::table& t, std::string_view key, std::string_view path, Duration& out);

  // Calls visit(text, elementPath, elementNode) for each string of the array `n` at `path`;
  // returns the array, or null (reported) when `n` is not an array.
  template <class Visit>
  const toml::array* strings(const toml::node& n, const std::string& path, Visit&& visit) {
    const auto* array = n.as_array();
    if (array == nullptr) {
      error(path, n, fmt::format("expected an array of strings, got {}", typeName(n)));
      return nullptr;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      if (const auto* s = element.as_string()) {
        visit(s->get(), indexPath(path, i), element);
      } else {
        error(indexPath(path, i), element,
              fmt::format("expected a string, got {}", typeName(element)));
      }
    }
    return array;
  }

  template <class Visit>
  const toml::array* strings(const toml::table& t, std::string_view key, std::string_view path,
                             Visit&& visit) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    return strings(*n, keyPath(path, key), std::forward<Visit>(visit));
  }

  // Calls visit(table, path, index) for each table of the array of tables at root[key].
  template <class Visit>
  void tables(const toml::table& root, std::string_view key, Visit&& visit) {
    tables(root, key, "", std::forward<Visit>(visit));
  }

  // The same for parent[key], where `parentPath` is the path of `parent`.
  template <class Visit>
  void tables(const toml::table& parent, std::string_view key, std::string_view parentPath,
              Visit&& visit) {
    const toml::node* n = parent.get(key);
    if (n == nullptr) return;
    const std::string path = keyPath(parentPath, key);
    const auto* array = n->as_array();
    if (array == nullptr) {
      error(path, *n,
            fmt::format("expected an array of tables ([[{}]]), got {}", path, typeName(*n)));
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      if (const auto* t = element.as_table()) {
        visit(*t, indexPath(path, i), i);
      } else {
        error(indexPath(path, i), element,
              fmt::format("expected a table, got {}", typeName(element)));
      }
    }
  }

 private:
  std::vector<Diagnostic>& errors_;
};

}  // namespace fwgate::config::detail
