/* Stand-in for Windows' bcryptprimitives.dll, which Wine 8.0 lacks.
 *
 * Rust's std (since 1.78) imports ProcessPrng from it to seed its hash maps;
 * without the DLL a Windows test binary exits under Wine with status 53 and
 * no message. This implements ProcessPrng with RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Built by scripts/windows-test.sh. */
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
