// Helpers shared by unit tests that touch real files.
#pragma once

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <stdlib.h>

namespace meshkv::testing {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  explicit TempDir(const char* tag = "meshkv-test") {
    std::string tmpl = std::string("/tmp/") + tag + ".XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Replaces a file's contents, keeping its mode.
inline void spit(const std::string& p, const std::string& data) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
}

}  // namespace meshkv::testing
