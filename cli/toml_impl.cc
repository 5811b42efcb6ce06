// The one translation unit that compiles toml++ (its non-header-only mode):
// every other file includes toml++ with TOML_HEADER_ONLY=0 and sees
// declarations only, which keeps builds fast.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
