#include "store/env.h"

namespace meshkv::store {

Result<std::string> read_file(Env& env, const std::string& path) {
  auto f = env.open_readable(path);
  if (!f.ok()) return f.status();
  std::string data;
  // One allocation for the whole file (a snapshot of a million keys is tens
  // of MB: growing by doubling copied and faulted in every page twice).
  if (auto info = (*f)->stat(); info.ok() && info->size > 0) data.reserve(info->size);
  char chunk[1 << 16];
  for (;;) {
    auto n = (*f)->read(chunk, sizeof chunk);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    data.append(chunk, *n);
  }
  return data;
}

std::string parent_dir(const std::string& path) {
  const auto end = path.find_last_not_of('/');  // "a/b/" is in "a" too
  if (end == std::string::npos) return path.empty() ? "." : "/";
  const auto slash = path.rfind('/', end);
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace meshkv::store
