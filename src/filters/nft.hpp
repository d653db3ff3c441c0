// libnftables, the library under the `nft` command: one context per object, every script run as
// one transaction (all of it or nothing), errors returned as nft's own text.
#pragma once

#include <string>
#include <string_view>

struct nft_ctx;

namespace fwgate::filters {

class Nft {
 public:
  Nft();  // throws std::runtime_error when libnftables cannot make a context
  ~Nft();
  Nft(const Nft&) = delete;
  Nft& operator=(const Nft&) = delete;

  // Runs `script`; returns "" on success, else nft's error output (or a short reason).
  std::string run(std::string_view script);
  // `list table inet fwgate` as JSON into `json`; returns "" or the error text (e.g. when the
  // table does not exist).
  std::string listTableJson(std::string& json);

 private:
  nft_ctx* ctx_ = nullptr;
};

}  // namespace fwgate::filters
