#ifndef ANCRE_CZSTD_SHIM_H
#define ANCRE_CZSTD_SHIM_H
// ZSTD_STATIC_LINKING_ONLY is not needed: prefix dictionaries (patch-from) are in the stable API.
#include <zstd.h>
#endif
