#include "filters/nft.hpp"

#include <nftables/libnftables.h>

#include <stdexcept>
#include <string>

#include "filters/ruleset.hpp"

namespace fwgate::filters {
namespace {

std::string text(const char* buffer) {
  return buffer == nullptr ? std::string() : std::string(buffer);
}

}  // namespace

Nft::Nft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  if (ctx_ == nullptr) throw std::runtime_error("libnftables: cannot create a context");
  if (nft_ctx_buffer_output(ctx_) != 0 || nft_ctx_buffer_error(ctx_) != 0) {
    nft_ctx_free(ctx_);
    ctx_ = nullptr;
    throw std::runtime_error("libnftables: cannot buffer the output");
  }
}

Nft::~Nft() {
  if (ctx_ != nullptr) nft_ctx_free(ctx_);
}

std::string Nft::run(std::string_view script) {
  const std::string command(script);  // nft_run_cmd_from_buffer wants a NUL-terminated string
  const int rc = nft_run_cmd_from_buffer(ctx_, command.c_str());
  // Reading a buffer resets it: the next command starts clean either way.
  nft_ctx_get_output_buffer(ctx_);
  std::string error = text(nft_ctx_get_error_buffer(ctx_));
  if (rc == 0) return {};
  return error.empty() ? "nft failed (no error text)" : error;
}

std::string Nft::listTableJson(std::string& json) {
  const unsigned int flags = nft_ctx_output_get_flags(ctx_);
  nft_ctx_output_set_flags(ctx_, flags | NFT_CTX_OUTPUT_JSON);
  const std::string command = "list table " + std::string(kFamily) + " " + std::string(kTable);
  const int rc = nft_run_cmd_from_buffer(ctx_, command.c_str());
  json = text(nft_ctx_get_output_buffer(ctx_));
  std::string error = text(nft_ctx_get_error_buffer(ctx_));
  nft_ctx_output_set_flags(ctx_, flags);
  if (rc == 0) return {};
  json.clear();
  return error.empty() ? "nft failed (no error text)" : error;
}

}  // namespace fwgate::filters
