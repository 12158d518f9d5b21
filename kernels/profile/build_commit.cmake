# Writes OUT (a header defining MOECAST_BUILD_COMMIT) from `git describe` of SRC, at every build,
# and only when the text changes: profiles record the commit of the binaries that measured them,
# not the one CMake was configured at.
execute_process(COMMAND git -C ${SRC} describe --always --dirty=+dirty --abbrev=12
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT commit)
    set(commit "unknown")
endif()
set(text "#define MOECAST_BUILD_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS ${OUT})
    file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
    file(WRITE ${OUT} "${text}")
endif()
