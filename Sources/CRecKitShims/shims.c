// Intentionally empty: SwiftPM needs one source file per C target; all shims are static inline in the header.
#include "CRecKitShims.h"
