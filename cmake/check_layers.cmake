# Fails when a source includes a header from a layer it may not depend on (docs/design.md):
#   sim/<layer>: only its own layer and the layers below it in LAYERS;
#   kernels: sim only;  train: kernels and sim;  python: sim only;  app: everything.
# Run by the build (target moecast_check_layers): cmake -DROOT=<repo> -P cmake/check_layers.cmake
set(LAYERS core model laws cost calib study report)
set(errors "")

function(check_file file allowed_regex)
    file(STRINGS "${file}" includes REGEX "^#include \"")
    foreach(line IN LISTS includes)
        string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
        if(NOT header MATCHES "${allowed_regex}")
            file(RELATIVE_PATH rel "${ROOT}" "${file}")
            set(errors "${errors}\n  ${rel}: includes ${header}" PARENT_SCOPE)
        endif()
    endforeach()
endfunction()

set(below "")
foreach(layer IN LISTS LAYERS)
    list(APPEND below ${layer})
    list(JOIN below "|" alt)
    file(GLOB sources "${ROOT}/sim/${layer}/*.h" "${ROOT}/sim/${layer}/*.cpp")
    foreach(f IN LISTS sources)
        check_file("${f}" "^sim/(${alt})/")
    endforeach()
endforeach()
file(GLOB_RECURSE kernel_sources "${ROOT}/kernels/*.h" "${ROOT}/kernels/*.cpp" "${ROOT}/kernels/*.cu"
     "${ROOT}/kernels/*.cuh")
foreach(f IN LISTS kernel_sources)
    check_file("${f}" "^(sim|kernels)/|^[a-z_]+\\.(h|cuh)$")
endforeach()
file(GLOB_RECURSE train_sources "${ROOT}/train/*.h" "${ROOT}/train/*.cpp")
foreach(f IN LISTS train_sources)
    check_file("${f}" "^(sim|kernels|train)/")
endforeach()

file(GLOB_RECURSE python_sources "${ROOT}/python/*.h" "${ROOT}/python/*.cpp")
foreach(f IN LISTS python_sources)
    check_file("${f}" "^sim/")
endforeach()

if(errors)
    message(FATAL_ERROR "includes against the layers (sim: ${LAYERS}, then kernels, train, app; python on sim):${errors}")
endif()
