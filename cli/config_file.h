// Node configuration from a TOML file and from flags, with errors that say
// where the bad setting came from (file:line and key, or the flag).
//
// TOML keys equal the node::Config field names (see scripts/meshkv.example.toml);
// unknown keys are errors so that a typo never passes silently.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/endpoint.h"
#include "common/status.h"
#include "node/config.h"

namespace meshkv::cli {

// An address as operators type it: "1.2.3.4:5", "[::1]:5", "localhost:5",
// or a bare port "5" meaning 127.0.0.1:5. Names are not resolved otherwise.
std::optional<Endpoint> parse_address(std::string_view text);

// parse_address for a command-line value (port 0 refused); on failure tells
// stderr which flag was wrong and what it accepts ("meshkv: --node:
// expected IP:PORT, ..."), so callers just return kExitUsage.
std::optional<Endpoint> parse_flag_address(const std::string& text, const char* flag = "--node");

// Where each Config field was set, for error messages.
struct ConfigSources {
  std::string file;                          // as given on the command line
  std::map<std::string, unsigned> file_line;  // field -> line in `file`
  std::map<std::string, std::string> flag;    // field -> flag that set it last
};

// Reads `path` into `cfg`; only keys present in the file change. Setting
// `listen` marks it explicit. Errors (kInvalidArgument) read
//   "meshkv.toml: cannot open: No such file or directory"
//   "meshkv.toml:3:5: parse error: ..."
//   "meshkv.toml:7: key 'mtu': expected an integer"
//   "meshkv.toml:9: unknown key 'gosip_interval_ms'"
// `cfg` may be partly updated on error.
Status load_config_file(const std::string& path, node::Config& cfg, ConfigSources& sources);

// cfg.validate(), with the failing field traced to the flag or file line
// that set it: "--mtu: must be ..." or "meshkv.toml:4: key 'mtu': must be ...".
Status check_config(const node::Config& cfg, const ConfigSources& sources);

}  // namespace meshkv::cli
