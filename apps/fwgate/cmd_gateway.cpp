// `fwgate gateway`: load the configuration (or the embedded default), apply --listen, run.
#include <spdlog/spdlog.h>

#include "commands.hpp"
#include "config/config.hpp"
#include "gateway/gateway.hpp"

namespace fwgate::app {

int runGateway(const GatewayOptions& options) {
  spdlog::set_default_logger(spdlog::default_logger()->clone("fwgate"));
  auto loaded = options.configPath.empty()
                    ? config::parseConfig(config::embeddedDefaultConfig(), "<embedded>")
                    : config::loadConfigFile(options.configPath);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) spdlog::error("config: {}", e.toString());
    spdlog::error("{} errors in {}; not starting", loaded.errors.size(),
                  options.configPath.empty() ? "<embedded>" : options.configPath);
    return 1;
  }
  spdlog::set_level(spdlog::level::from_str(loaded.config->log.level));

  gateway::GatewayOptions gatewayOptions;
  gatewayOptions.configPath = options.configPath;
  gatewayOptions.workersOverride = options.workers;
  gatewayOptions.stateDir = options.stateDir;
  for (const auto& text : options.listen) {
    config::Listener listener;
    // --listen keeps the authentication methods of the first configured listener.
    if (!loaded.config->listeners.empty()) listener.methods = loaded.config->listeners[0].methods;
    if (!gateway::parseListenAddress(text, listener.address, listener.port)) {
      spdlog::error("--listen {}: expected ADDR:PORT, e.g. 127.0.0.1:1080 or [::1]:1080", text);
      return 2;
    }
    gatewayOptions.listenOverride.push_back(listener);
  }

  for (const auto& text : options.controlListen) {
    config::Listener listener;
    if (!gateway::parseListenAddress(text, listener.address, listener.port)) {
      spdlog::error("--control-listen {}: expected ADDR:PORT, e.g. 10.0.0.1:1745", text);
      return 2;
    }
    gatewayOptions.controlListenOverride.push_back(listener);
  }

  for (const auto& text : options.webListen) {
    config::Listener listener;
    if (!gateway::parseListenAddress(text, listener.address, listener.port)) {
      spdlog::error("--web-listen {}: expected ADDR:PORT, e.g. 10.0.0.1:8080", text);
      return 2;
    }
    gatewayOptions.webListenOverride.push_back(listener);
  }

  // Warnings (the open-proxy one above all) judge the listeners that will really be opened.
  auto effective = std::make_shared<config::Config>(*loaded.config);
  if (!gatewayOptions.listenOverride.empty()) effective->listeners = gatewayOptions.listenOverride;
  if (!gatewayOptions.controlListenOverride.empty()) {
    effective->controlListeners = gatewayOptions.controlListenOverride;
  }
  if (!gatewayOptions.webListenOverride.empty()) {
    effective->webProxy.listeners = gatewayOptions.webListenOverride;
  }
  for (const auto& w : config::checkWarnings(*effective)) {
    spdlog::warn("config: {}", w.toString());
  }

  std::vector<std::string> errors;
  auto snapshot = gateway::makeSnapshot(effective, errors);
  if (!snapshot) {
    for (const auto& e : errors) spdlog::error("config: {}", e);
    return 1;
  }
  try {
    gateway::Gateway gateway(std::move(gatewayOptions), std::move(snapshot));
    return gateway.run();
  } catch (const std::exception& e) {
    spdlog::error("gateway: {}", e.what());
    return 1;
  }
}

}  // namespace fwgate::app
