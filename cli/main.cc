// meshkv: entry point. The subcommand table lives in commands.cc.
#include "commands.h"

int main(int argc, char** argv) { return meshkv::cli::run(argc, argv); }
