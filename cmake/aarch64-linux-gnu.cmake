# Cross-compiling the Lambda package for arm64 (Graviton) on a Debian x86_64 host:
#   scripts/package.sh --arch arm64 passes -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake.
# The compiler is Debian's crossbuild-essential-arm64 (aarch64-linux-gnu-gcc, glibc 2.36 headers
# like the native one); the libraries are Debian's arm64 multiarch -dev packages under
# /usr/lib/aarch64-linux-gnu (scripts/deps.sh --arm64 installs both). pkg-config reads only the
# arm64 .pc files, so nothing of the host's x86_64 libraries can be picked up.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# Libraries and headers of the target only; programs (pkg-config itself) of the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
