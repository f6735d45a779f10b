/* The one macOS SDK header that ring's C code includes, for the clippy
 * checks of scripts/macos-check.sh (no macOS SDK here; nothing is linked).
 * The values are the SDK's for macOS itself. */
#ifndef MEMLINK_STUB_TARGET_CONDITIONALS_H
#define MEMLINK_STUB_TARGET_CONDITIONALS_H
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#endif
